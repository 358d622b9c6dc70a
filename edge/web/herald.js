// Herald's browser client: one ES module, no dependencies, no build step.
// The edge serves it at GET /v1/herald.js; its types are in herald.d.ts.
//
//   import { connect } from "https://push.example.com/v1/herald.js";
//   const client = connect({
//     device: "laptop",
//     token: () => fetch("/herald-token").then((r) => r.text()),
//     onMessage: (msg) => show(msg),
//   });
//
// What it does (SPEC §6, §7, §11):
// - WebSocket first (/v1/ws); when a WebSocket cannot connect at all (a
//   proxy that refuses upgrades), server-sent events (/v1/sse) with acks by
//   POST /v1/ack.
// - Reconnects with capped exponential backoff and jitter, and resumes from
//   the last seq the application marked processed, kept in localStorage per
//   edge, user and device. Duplicates (delivery is at least once) are
//   dropped by seq; a gap reported by the welcome frame is passed on.
// - Acks are cumulative and debounced (ackDelay, default 100 ms, or
//   ackBatch, default 64, processed messages, whichever comes first).
// - read(seq) marks the user's messages read up to seq on every device of
//   the user (SPEC §10): a read frame, or POST /v1/read over SSE. The other
//   devices get a read frame (onFrame); the welcome carries the position.
// - A token function is called again when the edge closes with 4001 and
//   shortly before the token's exp.
// - One connection per device per browser: the tab that holds a Web Lock
//   named after the edge, user and device connects and shares what it
//   receives with the other tabs over a BroadcastChannel of the same name;
//   when it closes, another tab takes the lock and connects.

/** WebSocket close codes of the protocol (SPEC §6). */
export const CloseCode = Object.freeze({
  normal: 1000,
  goingAway: 1001, // the edge is shutting down: reconnect, to any edge
  abnormal: 1006, // no close frame: the connection failed or was cut
  tooBig: 1009,
  internal: 1011,
  unauthorized: 4001, // bad token, or the token expired
  slowConsumer: 4008,
  tooMany: 4009,
});

// The SSE error event's code names the close reason; these are the
// WebSocket codes of the same reasons.
const sseCloseCodes = {
  shutting_down: CloseCode.goingAway,
  token_expired: CloseCode.unauthorized,
  slow_consumer: CloseCode.slowConsumer,
  too_many_connections: CloseCode.tooMany,
  frame_too_large: CloseCode.tooBig,
  internal: CloseCode.internal,
};

/** Opens a client; it starts connecting at once. */
export function connect(options) {
  return new Client(options);
}

/**
 * Returns the claims of a JWT (sub, exp, dev, …) without verifying it, or
 * an empty object when the token is not a JWT.
 */
export function decodeToken(token) {
  try {
    const part = String(token).split(".")[1];
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
    return claims && typeof claims === "object" ? claims : {};
  } catch {
    return {};
  }
}

const noop = () => {};

export class Client {
  constructor(options) {
    const o = options || {};
    if (!o.device) throw new TypeError("herald: device is required");
    if (!o.token) throw new TypeError("herald: token is required");
    this.device = String(o.device);
    this.user = o.user ? String(o.user) : "";
    this._base = baseURL(o.url);
    this._tokenSource = o.token;
    this._since = o.since;
    this._autoAck = o.autoAck !== false;
    this._ackDelay = o.ackDelay ?? 100;
    this._ackBatch = o.ackBatch ?? 64;
    this._backoffInitial = o.backoff?.initial ?? 500;
    this._backoffMax = o.backoff?.max ?? 30000;
    this._transports = (o.transports || ["ws", "sse"]).filter((t) =>
      t === "ws" ? typeof WebSocket !== "undefined" : t === "sse" ? typeof EventSource !== "undefined" : false,
    );
    this._share = o.shareTabs !== false;
    this._storage = o.storage !== undefined ? o.storage : defaultStorage();
    this._on = {
      message: o.onMessage || noop,
      state: o.onState || noop,
      welcome: o.onWelcome || noop,
      frame: o.onFrame || noop,
      error: o.onError || ((err) => console.error("herald:", err)),
    };

    this._closed = false;
    this._leader = false;
    this._token = null; // the token in use
    this._tokenStale = true; // fetch a new one before the next connect
    this._tokenTimer = 0;
    this._pos = 0; // last seq the application marked processed
    this._seen = 0; // highest seq handed to the application in this tab
    this._ackSent = 0; // position the edge was last told
    this._ackCount = 0; // messages processed since then
    this._ackTimer = 0;
    this._read = 0; // highest read position asked for (read())
    this._readSent = 0; // highest read position the current connection sent or was welcomed with
    this._conn = null; // the current connection: { transport, open, ack(seq), read(seq), close() }
    this._queue = [];
    this._draining = false;
    this._state = { state: "connecting", leader: false };
    this._welcome = null;
    this._wake = null; // ends the current backoff wait early
    this._abort = typeof AbortController !== "undefined" ? new AbortController() : null;
    this._onPageHide = () => this._flushAck();
    globalThis.addEventListener?.("pagehide", this._onPageHide);
    this._start().catch((err) => this._fail(err));
  }

  /** The current connection state, as last passed to onState. */
  get state() {
    return this._state;
  }

  /** The last seq marked processed (0: none yet). */
  get position() {
    return this._pos;
  }

  /** Whether this tab holds the connection (false: another tab does). */
  get leader() {
    return this._leader;
  }

  /**
   * Marks seq, and every earlier message, processed: stored as the
   * position to resume from and acked to the edge (debounced). With autoAck
   * (the default) this happens when onMessage returns.
   */
  ack(seq) {
    seq = Number(seq);
    if (!(seq > 0) || this._closed) return;
    if (this._leader) {
      this._processed(seq);
    } else {
      this._post({ t: "ack", seq });
    }
  }

  /**
   * Marks the user's messages read up to seq, for every device of the user:
   * the edge keeps one read position per user (never moving back) and tells
   * the other devices. Sent now, or once connected.
   */
  read(seq) {
    seq = Number(seq);
    if (!(seq > 0) || this._closed) return;
    if (!this._leader) {
      this._post({ t: "read", seq });
      return;
    }
    if (seq > this._read) this._read = seq;
    this._flushRead();
  }

  _flushRead() {
    const conn = this._conn;
    if (!this._leader || !conn?.open || !this._welcome || this._read <= this._readSent) return;
    this._readSent = this._read;
    conn.read(this._read);
  }

  /** Closes the connection for good and lets another tab take over. */
  close() {
    this._stop({ state: "closed", code: CloseCode.normal, reason: "closed by the application", final: true });
  }

  // _stop ends the client for good, with st as its last state.
  _stop(st) {
    if (this._closed) return;
    this._flushAck();
    this._closed = true;
    clearTimeout(this._ackTimer);
    clearTimeout(this._tokenTimer);
    globalThis.removeEventListener?.("pagehide", this._onPageHide);
    this._abort?.abort();
    this._conn?.close();
    this._wake?.();
    this._bc?.close();
    this._bc = null;
    this._setState(st);
  }

  async _start() {
    for (let attempt = 0; !this.user; attempt++) {
      let token;
      try {
        token = await this._freshToken();
      } catch (err) {
        this._on.error(err);
        const delay = this._backoff(attempt);
        this._setState({ state: "closed", code: CloseCode.abnormal, reason: "token: " + (err?.message || err), retryIn: Math.round(delay) });
        await this._sleep(delay);
        if (this._closed) return;
        continue;
      }
      this.user = String(decodeToken(token).sub || "");
      if (!this.user) throw new Error("herald: the token has no sub claim; pass the user option");
    }
    const name = `herald:${this._base}:${this.user}:${this.device}`;
    this._posKey = name + ":seq";
    if (this._closed) return;
    if (!this._share || !globalThis.navigator?.locks || typeof BroadcastChannel === "undefined") {
      // Without the Web Locks API (an insecure context, an old browser)
      // every tab connects on its own.
      await this._lead();
      return;
    }
    this._bc = new BroadcastChannel(name);
    this._bc.onmessage = (e) => this._onChannel(e.data);
    this._setState({ state: "connecting", leader: false });
    this._post({ t: "hello" });
    try {
      await navigator.locks.request(name, { signal: this._abort.signal }, () => this._lead());
    } catch (err) {
      if (err?.name !== "AbortError") throw err;
    }
  }

  // _lead runs while this tab holds the lock: it connects, and reconnects
  // until close().
  async _lead() {
    if (this._closed) return;
    this._leader = true;
    this._pos = this._loadPos();
    this._seen = Math.max(this._seen, this._pos);
    let attempt = 0;
    while (!this._closed) {
      let result;
      try {
        result = await this._connectOnce();
      } catch (err) {
        this._on.error(err);
        result = { opened: false, welcomed: false, code: CloseCode.abnormal, reason: String(err?.message || err) };
      }
      if (this._closed) break;
      if (result.welcomed) attempt = 0;
      let delay = this._backoff(attempt++);
      if (result.code === CloseCode.goingAway) {
        delay = Math.random() * this._backoffInitial; // reconnect elsewhere soon
      } else if (result.code === CloseCode.unauthorized) {
        if (typeof this._tokenSource !== "function") {
          this._stop({ state: "closed", code: result.code, reason: result.reason, final: true });
          return;
        }
        // The token expired: connect again with a new one (unless it was
        // fetched meanwhile), at once when it expired during a session.
        if (this._token === result.token) this._tokenStale = true;
        if (result.welcomed) delay = 0;
      }
      this._setState({ state: "closed", code: result.code, reason: result.reason, retryIn: Math.round(delay) });
      await this._sleep(delay);
    }
  }

  // _connectOnce connects with each transport in turn until one opens, and
  // resolves when that connection has ended.
  async _connectOnce() {
    const token = await this._freshToken();
    let result = { opened: false, welcomed: false, code: CloseCode.abnormal, reason: "no transport available" };
    for (const transport of this._transports) {
      if (this._closed) break;
      this._setState({ state: "connecting", transport });
      try {
        result = transport === "ws" ? await this._runWS(token) : await this._runSSE(token);
      } catch (err) {
        // For example a URL that the page's Content-Security-Policy refuses.
        result = { opened: false, welcomed: false, code: CloseCode.abnormal, reason: String(err?.message || err) };
      }
      if (result.opened) break;
    }
    if (!result.opened && expiresWithin(token, 0)) {
      // Refused, most likely for the expired token (a browser does not
      // show the 401): handled as the edge's 4001.
      result.code = CloseCode.unauthorized;
      result.reason = "token_expired";
    }
    result.token = token;
    return result;
  }

  // _query is a connection's query; since (undefined: none) is also what
  // the connection acknowledges from the start.
  _query(token) {
    const q = new URLSearchParams({ device: this.device });
    const since = this._pos > 0 ? this._pos : (this._since ?? undefined);
    if (since !== undefined) q.set("since", String(since));
    q.set("token", token);
    return { q, since };
  }

  _runWS(token) {
    return new Promise((resolve) => {
      const u = new URL("v1/ws", this._base);
      u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
      const { q, since } = this._query(token);
      u.search = q.toString();
      const ws = new WebSocket(u);
      const r = { opened: false, welcomed: false, code: CloseCode.abnormal, reason: "" };
      const conn = {
        transport: "ws",
        open: false,
        since,
        ack: (seq) => ws.readyState === WebSocket.OPEN && ws.send(`{"type":"ack","seq":${seq}}`),
        read: (seq) => ws.readyState === WebSocket.OPEN && ws.send(`{"type":"read","seq":${seq}}`),
        close: () => ws.close(CloseCode.normal),
      };
      this._conn = conn; // so that close() can end it while it connects
      ws.onopen = () => {
        r.opened = true;
        this._opened(conn);
      };
      ws.onmessage = (e) => {
        const f = parseFrame(e.data);
        if (!f) return;
        if (f.type === "welcome") r.welcomed = true;
        if (f.type === "error") r.reason = f.code;
        this._frame(f, "ws");
      };
      ws.onclose = (e) => {
        if (this._conn === conn) this._conn = null;
        r.code = e.code || CloseCode.abnormal;
        r.reason = e.reason || r.reason;
        resolve(r);
      };
    });
  }

  _runSSE(token) {
    return new Promise((resolve) => {
      const u = new URL("v1/sse", this._base);
      const { q, since } = this._query(token);
      u.search = q.toString();
      const es = new EventSource(u);
      const r = { opened: false, welcomed: false, code: CloseCode.abnormal, reason: "" };
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        es.close();
        if (this._conn === conn) this._conn = null;
        resolve(r);
      };
      const conn = {
        transport: "sse",
        open: false,
        since,
        ack: (seq) => this._postAck(this._token || token, seq), // a renewed token once there is one
        read: (seq) => this._postRead(this._token || token, seq),
        close: () => {
          r.code = CloseCode.normal;
          end();
        },
      };
      this._conn = conn;
      es.onopen = () => {
        r.opened = true;
        this._opened(conn);
      };
      const onFrame = (e) => {
        const f = parseFrame(e.data);
        if (!f) return;
        if (f.type === "welcome") r.welcomed = true;
        this._frame(f, "sse");
      };
      es.addEventListener("welcome", onFrame);
      es.addEventListener("synced", onFrame);
      es.addEventListener("read", onFrame);
      es.onmessage = onFrame;
      es.addEventListener("error", (e) => {
        // The edge's error event (with data) names why it ends the
        // stream; the browser's own (without) means the stream is gone.
        if (e.data) {
          const f = parseFrame(e.data);
          if (f) {
            r.code = sseCloseCodes[f.code] || CloseCode.abnormal;
            r.reason = f.code;
            this._frame(f, "sse");
          }
          return;
        }
        end(); // no EventSource reconnect: the client picks position and backoff
      });
    });
  }

  async _postAck(token, seq) {
    try {
      await fetch(new URL("v1/ack", this._base), {
        method: "POST",
        headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
        body: JSON.stringify({ device: this.device, seq }),
        keepalive: true,
      });
    } catch {
      // The next connect's since carries the position.
    }
  }

  async _postRead(token, seq) {
    try {
      await fetch(new URL("v1/read", this._base), {
        method: "POST",
        headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
        body: JSON.stringify({ device: this.device, seq }),
        keepalive: true,
      });
    } catch {
      // Sent again on the next connection.
      if (this._readSent === seq) this._readSent = 0;
    }
  }

  _opened(conn) {
    conn.open = true;
    // since acknowledges everything up to it; what was processed after the
    // connection started is acked now.
    this._ackSent = conn.since ?? 0;
    this._ackCount = 0;
    if (this._pos > this._ackSent) this._scheduleAck();
  }

  _frame(f, transport) {
    if (this._closed) return; // frames still in flight after close()
    switch (f.type) {
      case "welcome":
        this._welcome = f;
        this._readSent = Number(f.read) || 0;
        this._post({ t: "welcome", f });
        this._safe(this._on.welcome, f);
        this._setState({ state: "open", transport, user: f.user, from: f.from ?? null, gap: !!f.gap });
        this._flushRead(); // a read() made while disconnected
        return;
      case "message":
        if (!(f.seq > this._seen)) {
          // A duplicate. One already processed is sent again because the
          // edge did not get its ack: ack it again.
          if (f.seq <= this._pos) {
            this._ackSent = Math.min(this._ackSent, f.seq - 1);
            this._scheduleAck();
          }
          return;
        }
        this._seen = f.seq;
        this._post({ t: "message", f });
        this._deliver(f);
        return;
      case "synced":
        this._setState({ ...this._state, state: "synced", seq: f.seq });
        return;
      default:
        // error, read, and frame types this client does not know
        if (f.type === "read" && Number(f.seq) > this._readSent) this._readSent = Number(f.seq);
        this._post({ t: "frame", f });
        this._safe(this._on.frame, f);
    }
  }

  _deliver(msg) {
    this._queue.push(msg);
    if (!this._draining) this._drain();
  }

  // _drain hands messages to onMessage one at a time, in seq order, waiting
  // for a promise it returns.
  async _drain() {
    this._draining = true;
    while (this._queue.length > 0 && !this._closed) {
      const msg = this._queue.shift();
      try {
        await this._on.message(msg);
      } catch (err) {
        this._on.error(err);
      }
      if (this._autoAck) this.ack(msg.seq);
    }
    this._draining = false;
  }

  _processed(seq) {
    if (seq <= this._pos) return;
    this._pos = seq;
    try {
      this._storage?.setItem(this._posKey, String(seq));
    } catch {
      // Storage full or denied: the position lives in memory only.
    }
    this._ackCount++;
    this._scheduleAck();
  }

  // _scheduleAck sends the ack after ackDelay, or now once ackBatch
  // messages were processed since the last one.
  _scheduleAck() {
    if (this._ackCount >= this._ackBatch) {
      this._flushAck();
    } else if (!this._ackTimer) {
      this._ackTimer = setTimeout(() => this._flushAck(), this._ackDelay);
    }
  }

  _flushAck() {
    clearTimeout(this._ackTimer);
    this._ackTimer = 0;
    if (!this._leader || !this._conn?.open || this._pos <= this._ackSent) return;
    this._conn.ack(this._pos);
    this._ackSent = this._pos;
    this._ackCount = 0;
  }

  _loadPos() {
    try {
      const n = Number(this._storage?.getItem(this._posKey));
      return Number.isSafeInteger(n) && n > 0 ? n : 0;
    } catch {
      return 0;
    }
  }

  // _freshToken returns the token to connect with, calling the token
  // function when there is none yet, after a 4001, or when the token
  // expires within 5 s. Each fetched token schedules the next fetch a
  // little before its exp.
  async _freshToken() {
    const src = this._tokenSource;
    if (typeof src !== "function") return String(src);
    if (this._token && !this._tokenStale && !expiresWithin(this._token, 5000)) return this._token;
    const token = String(await src());
    this._token = token;
    this._tokenStale = false;
    clearTimeout(this._tokenTimer);
    const exp = decodeToken(token).exp;
    if (typeof exp === "number") {
      const left = exp * 1000 - Date.now();
      const margin = Math.min(60000, left / 10);
      if (left - margin > 0 && left - margin < 2 ** 31 - 1) {
        this._tokenTimer = setTimeout(() => {
          this._tokenStale = true;
          if (this._leader && !this._closed) this._freshToken().catch((err) => this._on.error(err));
        }, left - margin);
      }
    }
    return token;
  }

  _backoff(attempt) {
    const d = Math.min(this._backoffMax, this._backoffInitial * 2 ** Math.min(attempt, 30));
    return d / 2 + (Math.random() * d) / 2;
  }

  _sleep(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        self._wake = null;
        resolve();
      }
      this._wake = done;
    });
  }

  _setState(s) {
    const st = { ...s, leader: this._leader };
    if (st.state !== "synced") delete st.seq;
    this._state = st;
    if (this._leader) this._post({ t: "state", s: st });
    this._safe(this._on.state, st);
  }

  _safe(f, arg) {
    try {
      f(arg);
    } catch (err) {
      this._on.error(err);
    }
  }

  _post(m) {
    try {
      this._bc?.postMessage(m);
    } catch {
      // The channel closed meanwhile.
    }
  }

  // _onChannel handles what another tab of this browser posted: a leader
  // takes hellos and acks; a follower takes what the leader received.
  _onChannel(m) {
    if (this._closed || !m || typeof m !== "object") return;
    if (this._leader) {
      if (m.t === "ack") this._processed(Number(m.seq));
      if (m.t === "read") this.read(m.seq);
      if (m.t === "hello") {
        if (this._welcome) this._post({ t: "welcome", f: this._welcome });
        this._post({ t: "state", s: this._state });
      }
      return;
    }
    switch (m.t) {
      case "message":
        if (m.f.seq > this._seen) {
          this._seen = m.f.seq;
          this._deliver(m.f);
        }
        return;
      case "welcome":
        this._welcome = m.f;
        this._safe(this._on.welcome, m.f);
        return;
      case "state":
        this._state = { ...m.s, leader: false };
        this._safe(this._on.state, this._state);
        return;
      case "frame":
        this._safe(this._on.frame, m.f);
    }
  }

  _fail(err) {
    this._on.error(err);
    if (!this._closed) {
      this._setState({ state: "closed", code: CloseCode.abnormal, reason: String(err?.message || err), final: true });
      this.close();
    }
  }
}

function baseURL(url) {
  const u = new URL(url ?? new URL("../", import.meta.url), globalThis.location?.href);
  if (!u.pathname.endsWith("/")) u.pathname += "/";
  u.search = "";
  u.hash = "";
  return u.toString();
}

function defaultStorage() {
  try {
    return globalThis.localStorage ?? null; // the getter throws where storage is denied
  } catch {
    return null;
  }
}

function parseFrame(data) {
  try {
    const f = JSON.parse(data);
    return f && typeof f === "object" && typeof f.type === "string" ? f : null;
  } catch {
    return null;
  }
}

function expiresWithin(token, ms) {
  const exp = decodeToken(token).exp;
  return typeof exp === "number" && exp * 1000 - Date.now() <= ms;
}
