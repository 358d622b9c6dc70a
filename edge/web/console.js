// The Herald console: a device that shows what it receives, built on the
// browser client the edge serves (herald.js). No framework, no inline
// script (the page's Content-Security-Policy allows none); every message
// field is written with textContent, never parsed as HTML.

import { connect, decodeToken } from "../herald.js";

const $ = (id) => document.getElementById(id);
const saved = window.sessionStorage; // this tab only: the token and key are secrets
const keys = { token: "herald-console:token", device: "herald-console:device", key: "herald-console:key" };

let client = null;
let acked = 0; // highest seq acked from this tab
let readPos = 0; // the user's read position, as last known
const items = new Map(); // seq → <li>
const byID = new Map(); // message id → <li>

const connectForm = $("connect");
const publishForm = $("publish");

connectForm.addEventListener("submit", (e) => {
  e.preventDefault();
  start();
});
$("disconnect").addEventListener("click", () => stop());
$("ack-all").addEventListener("click", () => {
  const last = Math.max(0, ...items.keys());
  if (last > 0) ackUpTo(last);
});
$("read-all").addEventListener("click", () => {
  const last = Math.max(0, ...items.keys());
  if (last > 0) readUpTo(last);
});
publishForm.addEventListener("submit", (e) => {
  e.preventDefault();
  publish();
});

restore();

function restore() {
  const f = connectForm.elements;
  f.token.value = saved.getItem(keys.token) || "";
  f.device.value = saved.getItem(keys.device) || f.device.value;
  publishForm.elements.key.value = saved.getItem(keys.key) || "";
  if (f.token.value) start();
}

function start() {
  const f = connectForm.elements;
  const token = f.token.value.trim();
  const device = f.device.value.trim();
  if (!token || !device) return;
  stop();
  saved.setItem(keys.token, token);
  saved.setItem(keys.device, device);
  clearMessages();
  const since = f.since.value === "" ? undefined : Number(f.since.value);
  $("s-user").textContent = String(decodeToken(token).sub ?? "–");
  client = connect({
    device,
    token,
    since,
    autoAck: false, // the Ack buttons mark messages processed
    onMessage: show,
    onState: showState,
    onWelcome: (w) => {
      $("s-user").textContent = w.user;
      showRead(Number(w.read) || 0, "");
      $("s-from").textContent = w.from ?? "none yet";
      const gap = $("s-gap");
      gap.textContent = w.gap ? "yes: messages after the position were removed by retention" : "no";
      gap.classList.toggle("warn", !!w.gap);
      log("welcome", JSON.stringify(w));
    },
    onFrame: (f) => {
      if (f.type === "read") showRead(Number(f.seq), f.device || "");
      log(f.type, JSON.stringify(f));
    },
    onError: (err) => log("error", String(err?.message || err)),
  });
  $("disconnect").disabled = false;
}

function stop() {
  if (!client) return;
  client.close();
  client = null;
  $("disconnect").disabled = true;
  $("ack-all").disabled = true;
  $("read-all").disabled = true;
}

function showState(s) {
  const badge = $("state");
  badge.dataset.state = s.state;
  let text = s.state;
  if (s.transport && s.state !== "closed") text += " · " + s.transport;
  if (s.state === "closed") {
    text += s.code ? ` · ${s.code}` : "";
    if (s.retryIn !== undefined && !s.final) text += ` · retry in ${(s.retryIn / 1000).toFixed(1)} s`;
  }
  badge.textContent = text;
  $("s-transport").textContent = s.transport || "–";
  $("s-role").textContent = s.leader ? "holds the connection" : "shares another tab's connection";
  if (s.state === "synced") $("s-synced").textContent = String(s.seq);
  log("state", JSON.stringify(s));
  if (s.final && s.code !== 1000) $("disconnect").disabled = true;
}

function show(m) {
  const li = document.createElement("li");
  li.className = "msg";
  li.dataset.seq = String(m.seq);
  if (m.id) li.dataset.id = m.id;

  const meta = el("div", "meta");
  meta.append(el("span", "seq", "#" + m.seq));
  if (m.time) {
    const t = el("time", "", new Date(m.time).toLocaleString());
    t.dateTime = m.time;
    meta.append(t);
  }
  const prio = m.priority ?? 5;
  meta.append(el("span", "prio " + (prio >= 8 ? "high" : prio <= 2 ? "low" : "mid"), "P" + prio));
  for (const tag of m.tags || []) meta.append(el("span", "tag", tag));
  const ack = el("button", "ack", "Ack");
  ack.type = "button";
  ack.addEventListener("click", () => ackUpTo(m.seq));
  const read = el("button", "read", "Mark read");
  read.type = "button";
  read.addEventListener("click", () => readUpTo(m.seq));
  meta.append(ack, read);
  li.append(meta);
  fill(li, m);
  if (m.op && m.ref) {
    li.append(el("div", "note", `${m.op} of ${m.ref}`));
    const target = byID.get(m.ref);
    if (target) apply(target, m);
  }

  items.set(m.seq, li);
  if (m.id) byID.set(m.id, li);
  if (m.seq <= acked) markAcked(li);
  if (m.seq <= readPos) li.classList.add("read");
  $("messages").prepend(li);
  $("count").textContent = String(items.size);
  $("empty").hidden = true;
  $("ack-all").disabled = false;
  $("read-all").disabled = false;
}

// fill writes the title, body and data of m into li.
function fill(li, m) {
  for (const old of li.querySelectorAll(".title, .body, .data")) old.remove();
  const parts = [];
  if (m.title) parts.push(el("div", "title", m.title));
  if (m.body) parts.push(el("div", "body", m.body));
  if (m.data !== undefined) {
    const short = JSON.stringify(m.data);
    parts.push(el("pre", "data", short.length <= 72 ? short : JSON.stringify(m.data, null, 2)));
  }
  li.querySelector(".meta").after(...parts);
}

// apply shows an update or delete (SPEC §10) on the message it refers to.
function apply(target, m) {
  if (m.op === "update") {
    fill(target, m);
    target.classList.add("updated");
  } else if (m.op === "delete") {
    target.classList.add("deleted");
  }
  target.querySelector(".op")?.remove();
  target.append(el("div", "note op", `${m.op === "delete" ? "deleted" : "updated"} by #${m.seq}`));
}

function ackUpTo(seq) {
  if (!client) return;
  client.ack(seq);
  acked = Math.max(acked, seq);
  $("s-pos").textContent = String(acked);
  for (const [s, li] of items) if (s <= acked) markAcked(li);
}

// readUpTo marks the user's messages read up to seq, on every device of
// the user (SPEC §10).
function readUpTo(seq) {
  if (!client) return;
  client.read(seq);
  showRead(seq, "this console");
}

// showRead shows the read position seq, set by device ("": as of the
// welcome); it never moves back.
function showRead(seq, device) {
  if (!(seq > readPos)) return;
  readPos = seq;
  $("s-read").textContent = device ? `${readPos} (by ${device})` : String(readPos);
  for (const [s, li] of items) li.classList.toggle("read", s <= readPos);
}

function markAcked(li) {
  li.classList.add("acked");
  const b = li.querySelector("button.ack");
  b.disabled = true;
  b.textContent = "Acked";
}

function clearMessages() {
  items.clear();
  byID.clear();
  acked = 0;
  readPos = 0;
  $("messages").replaceChildren();
  $("count").textContent = "0";
  $("empty").hidden = false;
  for (const id of ["s-transport", "s-role", "s-from", "s-gap", "s-synced", "s-pos", "s-read"]) $(id).textContent = "–";
}

async function publish() {
  const f = publishForm.elements;
  const out = $("publish-result");
  out.className = "result";
  const user = client?.user || String(decodeToken(connectForm.elements.token.value.trim()).sub ?? "");
  if (!user) {
    fail("Paste a client token first: the message goes to its user (sub).");
    return;
  }
  const msg = {};
  if (f.title.value) msg.title = f.title.value;
  if (f.body.value) msg.body = f.body.value;
  if (f.priority.value !== "") msg.priority = Number(f.priority.value);
  const tags = f.tags.value.split(",").map((t) => t.trim()).filter(Boolean);
  if (tags.length) msg.tags = tags;
  if (f.data.value.trim()) {
    try {
      msg.data = JSON.parse(f.data.value);
    } catch (err) {
      fail("Data is not JSON: " + err.message);
      return;
    }
  }
  const key = f.key.value.trim();
  saved.setItem(keys.key, key);
  out.textContent = "Publishing…";
  try {
    const res = await fetch(new URL(`v1/users/${encodeURIComponent(user)}/messages`, document.baseURI), {
      method: "POST",
      headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
      body: JSON.stringify(msg),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      fail(`${res.status} ${body.error?.code ?? ""}: ${body.error?.message ?? res.statusText}`);
      return;
    }
    out.classList.add("ok");
    out.textContent = `Stored for ${user} as seq ${body.seq}` + (body.duplicate ? " (a duplicate)" : "");
    out.dataset.seq = String(body.seq);
  } catch (err) {
    fail("Publish failed: " + err.message);
  }

  function fail(text) {
    out.className = "result err";
    out.textContent = text;
  }
}

function log(kind, text) {
  const li = el("li", "", "");
  li.append(el("time", "", new Date().toLocaleTimeString()), el("b", "", kind), document.createTextNode(" " + text));
  const list = $("log");
  list.prepend(li);
  while (list.children.length > 100) list.lastChild.remove();
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
