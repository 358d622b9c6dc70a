// Types of Herald's browser client, herald.js (served at GET /v1/herald.js,
// these at GET /v1/herald.d.ts).

/** WebSocket close codes of the protocol. */
export declare const CloseCode: Readonly<{
  normal: 1000;
  /** The edge is shutting down: the client reconnects, to any edge. */
  goingAway: 1001;
  /** No close frame: the connection failed or was cut. */
  abnormal: 1006;
  tooBig: 1009;
  internal: 1011;
  /** A bad token, or the token expired. */
  unauthorized: 4001;
  slowConsumer: 4008;
  tooMany: 4009;
}>;

/** A message as the edge delivers it: the stored envelope plus its seq. */
export interface Message {
  type: "message";
  /** The stream sequence: the order of the user's messages, and their dedup key. */
  seq: number;
  /** The producer's idempotency key, or a server-generated id. */
  id?: string;
  user?: string;
  /** RFC 3339, set by ingest. */
  time?: string;
  title?: string;
  body?: string;
  /** 0–10, default 5. */
  priority?: number;
  tags?: string[];
  data?: Record<string, unknown>;
  /** Names the id of an earlier message that this one updates or deletes (op). */
  ref?: string;
  op?: "update" | "delete" | string;
  /** RFC 3339: when the message expires (its ttl); it is never delivered after that. */
  expires?: string;
  [field: string]: unknown;
}

/** The first frame of every connection. */
export interface Welcome {
  type: "welcome";
  user: string;
  device: string;
  /** The first seq the edge will deliver, or null when it does not know yet. */
  from: number | null;
  /**
   * True when messages after the requested position were already removed by
   * retention: refresh what you show from your backend.
   */
  gap: boolean;
  /** The user's read position (0 or absent: none). */
  read?: number;
  [field: string]: unknown;
}

/** The user's read position moved: {"type":"read","seq":N,"device":D}, D being the device that read. */
export interface ReadFrame {
  type: "read";
  seq: number;
  device?: string;
}

/** Any frame other than welcome, message and synced: error, read, and types a later edge adds. */
export interface Frame {
  type: string;
  [field: string]: unknown;
}

export type Transport = "ws" | "sse";

export interface State {
  /**
   * connecting: a connection attempt is under way (or, in a tab that does not
   * hold the connection, none was reported yet); open: the welcome arrived;
   * synced: the backlog at connect time has been delivered; closed: the
   * connection ended (retryIn says when the next attempt starts; final: no
   * more attempts).
   */
  state: "connecting" | "open" | "synced" | "closed";
  /** Whether this tab holds the connection; other tabs mirror its state. */
  leader: boolean;
  transport?: Transport;
  /** open and synced: from the welcome. */
  user?: string;
  from?: number | null;
  gap?: boolean;
  /** synced: the last seq of the backlog. */
  seq?: number;
  /** closed: the WebSocket close code (SSE reasons mapped to the same codes). */
  code?: number;
  reason?: string;
  /** closed: milliseconds until the next attempt. */
  retryIn?: number;
  /** closed: the client has stopped (close(), or a static token that expired). */
  final?: boolean;
}

/** Where a position is kept; localStorage by default. */
export interface PositionStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface Options {
  /** The edge's base URL; default: the origin (and path prefix) herald.js was loaded from. */
  url?: string | URL;
  /** The device id: 1–128 of [A-Za-z0-9_.:-]. */
  device: string;
  /**
   * A client token (JWT), or a function returning one. A function is called
   * again when the edge closes with 4001 and shortly before the token's exp;
   * a static token that expires stops the client.
   */
  token: string | (() => string | Promise<string>);
  /** The user id; default: the token's sub claim. */
  user?: string;
  /**
   * Where to start when nothing is stored for this user and device (0: every
   * retained message). Default: the edge's choice (after the device's last
   * ack, or new messages only for a new device).
   */
  since?: number;
  /**
   * Mark each message processed once onMessage returns (or the promise it
   * returns settles). Default true; with false, call ack(seq).
   */
  autoAck?: boolean;
  /** Ack debounce: milliseconds (default 100) or processed messages (default 64). */
  ackDelay?: number;
  ackBatch?: number;
  /** Reconnect backoff in milliseconds: initial 500, doubling to max 30000, with jitter. */
  backoff?: { initial?: number; max?: number };
  /** Transports in the order tried; default ["ws", "sse"]. */
  transports?: Transport[];
  /** One connection per device across the browser's tabs (Web Locks); default true. */
  shareTabs?: boolean;
  /** Where the position is kept; default localStorage (null: memory only). */
  storage?: PositionStorage | null;
  /** Each message once, in seq order, one at a time (a returned promise is awaited). */
  onMessage?: (msg: Message) => void | Promise<void>;
  onState?: (state: State) => void;
  onWelcome?: (welcome: Welcome) => void;
  /** error frames, read frames (ReadFrame) and frame types this client does not know. */
  onFrame?: (frame: Frame) => void;
  /** Errors thrown by callbacks or the token function; default console.error. */
  onError?: (err: unknown) => void;
}

export declare class Client {
  constructor(options: Options);
  readonly device: string;
  /** The user id (the token's sub once known). */
  readonly user: string;
  readonly state: State;
  /** The last seq marked processed (0: none yet). */
  readonly position: number;
  /** Whether this tab holds the connection. */
  readonly leader: boolean;
  /** Marks seq and every earlier message processed: stored, and acked to the edge (debounced). */
  ack(seq: number): void;
  /**
   * Marks the user's messages read up to seq on every device of the user
   * (one read position per user, never moving back): a read frame, or POST
   * /v1/read over SSE; sent once connected. The other devices get a read frame.
   */
  read(seq: number): void;
  /** Closes the connection for good; another tab, if any, takes over. */
  close(): void;
}

/** Opens a client; it starts connecting at once. */
export declare function connect(options: Options): Client;

/** The claims of a JWT (sub, exp, dev, …), not verified; {} when it is not a JWT. */
export declare function decodeToken(token: string): Record<string, unknown>;
