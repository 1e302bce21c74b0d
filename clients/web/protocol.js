// The session with the server over `/ws` (docs/protocol.md): join, welcome/resumed, commands with
// `ref` answered by `ack` or `error`, the app-level heartbeat, and reconnect-and-resume.
//
// Connection knows frames, not classrooms: it hands every decoded frame to `onFrame` and reports
// its own state through `onStatus`. It needs no DOM, only a WebSocket constructor and timers, both
// injectable so it can run under Node.

import { decodeFrame, encodeFrame } from "./codec.js";

/** Close codes after which the client stays closed (docs/protocol.md, "Close codes"); after any
 * other it reconnects and resumes. */
const FINAL_CLOSE_CODES = new Set([1000, 1002, 1007, 1009, 4401, 4403, 4409, 4410, 4423]);
/** Join refusals that mean "not now" (a join storm, a store failing over): the client sends the
 * same join again on the same socket after the server's `retry_after_ms` plus jitter. */
const RETRY_JOIN_CODES = new Set(["rate_limited", "unavailable"]);

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
/** How long a new socket may take to open and be welcomed before it counts as dead. */
const JOIN_TIMEOUT_MS = 10_000;
/** How long a command may wait for its ack or error (a rate-limited frame gets neither). */
const COMMAND_TIMEOUT_MS = 15_000;

/**
 * Delay before reconnect attempt `attempt` (0-based): full jitter over an exponential backoff
 * capped at 10 s, after the server's `retry_after_ms` hint when it gave one.
 * @param {number} attempt
 * @param {number} hintMs
 * @param {() => number} random
 * @returns {number} milliseconds
 */
export function reconnectDelay(attempt, hintMs = 0, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.round(hintMs + random() * ceiling);
}

/**
 * An error answered to a command, or the reason a command got no answer.
 * `code` is a protocol error code, or `not_connected`, `disconnected`, `timeout` (client side).
 */
export class CommandError extends Error {
  /**
   * @param {{code: string, message: string, field?: string|null, retry_after_ms?: number|null}} frame
   * @param {string} label     what the user tried ("Send message")
   * @param {string} command   the command type that failed ("chat.send"), to word the error
   */
  constructor(frame, label = "", command = "") {
    super(frame.message || frame.code);
    this.name = "CommandError";
    this.code = frame.code;
    this.field = frame.field ?? null;
    this.retryAfterMs = frame.retry_after_ms ?? null;
    this.label = label;
    this.command = command;
  }
}

/**
 * @typedef {(
 *   {state: "connecting", attempt: number} |
 *   {state: "live"} |
 *   {state: "waiting", position: number} |
 *   {state: "reconnecting", retryAt: number, attempt: number} |
 *   {state: "closed", code: number, kind: "left"|"ended"|"removed"|"unauthorized"|"locked"|"replaced"|"closed",
 *    error: {code: string, message: string} | null}
 * )} ConnectionStatus
 */

export class Connection {
  /** The access token: private, so nothing on the page can read it back from the object. */
  #token;

  /**
   * @param {object} options
   * @param {string} options.url            ws(s)://host/ws
   * @param {string} options.token          the access token (JWT)
   * @param {string} options.room           the room to join (the token's grants.room)
   * @param {(frame: object, info?: {replay: boolean}) => void} options.onFrame   welcome, resumed,
   *   event (with `replay` true for the missed events after `resumed`), presence, tally,
   *   media.offer, and error frames that answer no pending command
   * @param {(status: ConnectionStatus) => void} options.onStatus
   * @param {typeof WebSocket} [options.WebSocket]
   * @param {{setTimeout: Function, clearTimeout: Function, now: () => number, random: () => number}} [options.env]
   */
  constructor({ url, token, room, onFrame, onStatus, WebSocket = globalThis.WebSocket, env = {} }) {
    this.url = url;
    this.#token = token;
    this.room = room;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.WebSocket = WebSocket;
    this.env = {
      setTimeout: env.setTimeout ?? globalThis.setTimeout.bind(globalThis),
      clearTimeout: env.clearTimeout ?? globalThis.clearTimeout.bind(globalThis),
      now: env.now ?? Date.now,
      random: env.random ?? Math.random,
    };

    /** The last event id received in this room; sent as `last_id` to resume. */
    this.lastId = null;
    this.nextRef = 1;
    /** @type {Map<number, {type: string, label: string, resolve: Function, reject: Function, timer: any}>} */
    this.pending = new Map();

    this.socket = null;
    this.joined = false;
    this.attempt = 0;
    this.retryHintMs = 0;
    this.lastError = null;
    this.leaving = false;
    this.finished = false;
    this.heartbeatMs = 0;
    /** While resuming: how many missed events are still due, and the id they end at. */
    this.resume = null;
    this.timers = { retry: null, join: null, rejoin: null, ping: null, watchdog: null };
  }

  /** Open the first connection. */
  start() {
    this.connect();
  }

  /** Skip the wait and reconnect now (e.g. the browser came back online). */
  retryNow() {
    if (this.timers.retry !== null) {
      this.clearTimer("retry");
      this.connect();
    }
  }

  /**
   * Send a command. Resolves with the ack's event ids; rejects with a CommandError.
   * @param {string} type      a command type, e.g. "chat.send"
   * @param {object} fields    the command's fields (nil fields given as null)
   * @param {string} label     what the user tried, for error messages
   * @returns {Promise<number[]>}
   */
  send(type, fields = {}, label = type) {
    return this.request(type, fields, label).then((ack) => ack.ids ?? []);
  }

  /**
   * Send a command whose `ack` carries more than event ids (e.g. `media.publish`'s answer `sdp`).
   * Resolves with the whole `ack` frame; rejects with a CommandError.
   * @param {string} type
   * @param {object} fields
   * @param {string} label
   * @returns {Promise<object>}
   */
  request(type, fields = {}, label = type) {
    if (!this.joined) {
      const state = this.finished ? "the session is over" : "not connected; try again in a moment";
      return Promise.reject(new CommandError({ code: "not_connected", message: state }, label, type));
    }
    const ref = this.nextRef++;
    return new Promise((resolve, reject) => {
      const timer = this.env.setTimeout(() => {
        if (this.pending.delete(ref)) {
          reject(new CommandError({ code: "timeout", message: "the server did not answer" }, label, type));
        }
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(ref, { type, label, resolve, reject, timer });
      this.write({ ...fields, t: type, ref });
    });
  }

  /** Leave the room for good: the server lowers our hand and closes with 1000. */
  leave() {
    this.leaving = true;
    if (this.joined) {
      this.write({ t: "leave", ref: this.nextRef++ });
      return;
    }
    const socket = this.socket;
    this.detach();
    socket?.close(1000);
    this.finish(1000, null);
  }

  // -- socket lifecycle ---------------------------------------------------------------------------

  connect() {
    this.clearTimer("retry");
    this.joined = false;
    this.lastError = null;
    this.onStatus({ state: "connecting", attempt: this.attempt });
    let socket;
    try {
      socket = new this.WebSocket(this.url);
    } catch (err) {
      this.lastError = { code: "connect_failed", message: String(err?.message ?? err) };
      this.scheduleReconnect();
      return;
    }
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => {
      this.write({ t: "join", token: this.#token, room: this.room, last_id: this.lastId });
    };
    socket.onmessage = (ev) => this.receive(ev.data);
    socket.onclose = (ev) => this.closed(ev.code);
    socket.onerror = () => {}; // a close event always follows
    this.setTimer("join", JOIN_TIMEOUT_MS, () => this.dead());
  }

  write(message) {
    if (this.socket && this.socket.readyState === 1) {
      this.socket.send(encodeFrame(message));
    }
  }

  receive(data) {
    if (typeof data === "string") return; // the protocol is binary; the server sends no text
    let frame;
    try {
      frame = decodeFrame(data);
    } catch (err) {
      console.warn("liveclass: undecodable frame", err);
      return;
    }
    this.feedWatchdog();
    switch (frame.t) {
      case "welcome":
        this.lastId = frame.last_id;
        this.resume = null;
        this.becameLive(frame);
        break;
      case "resumed":
        // Missed events follow; last_id advances as they arrive, so a drop mid-replay resumes
        // from the last one actually received.
        this.resume = frame.missed > 0 ? { remaining: frame.missed, endId: frame.last_id } : null;
        if (!this.resume) this.lastId = Math.max(this.lastId ?? 0, frame.last_id);
        this.becameLive(frame);
        break;
      case "event": {
        const seen = this.lastId !== null && frame.id <= this.lastId; // already applied
        if (!seen) this.lastId = frame.id;
        const replay = this.resume !== null;
        // A replayed event counts toward the replay's end even when it was a repeat.
        if (this.resume && --this.resume.remaining <= 0) {
          this.lastId = Math.max(this.lastId, this.resume.endId);
          this.resume = null;
        }
        if (!seen) this.onFrame(frame, { replay });
        return;
      }
      case "view":
        // My place changed (docs/protocol.md, "Breakout rooms"): the snapshot replaces the
        // room's state as of `last_id`, as a welcome's does; the events after it follow.
        this.lastId = frame.last_id;
        break;
      case "tally":
        // Every event up to `through` that this participant may see came before the tally
        // (docs/protocol.md, "Vote tallies"); a resume's tally follows its missed events.
        if (this.resume === null) this.lastId = Math.max(this.lastId ?? 0, frame.through);
        break;
      case "ack":
        this.settle(frame.ref, (p) => p.resolve(frame));
        return;
      case "pong":
        return;
      case "error":
        this.lastError = frame;
        if (!this.joined && frame.ref == null && RETRY_JOIN_CODES.has(frame.code)) {
          this.joinAgainLater(frame.retry_after_ms ?? 0);
          return;
        }
        if (frame.ref != null && this.pending.has(frame.ref)) {
          this.settle(frame.ref, (p) => p.reject(new CommandError(frame, p.label, p.type)));
          return; // the caller reports it against the action
        }
        break;
      case "reconnect":
        this.retryHintMs = frame.retry_after_ms ?? 0;
        return; // the server closes next (1012 or 4008)
      case "waiting":
        // The join waits for staff to admit it (docs/protocol.md, "Waiting room"): the socket
        // stays open and the welcome arrives on it; keep it alive meanwhile.
        this.attempt = 0;
        this.clearTimer("join");
        this.heartbeatMs = frame.heartbeat_ms > 0 ? frame.heartbeat_ms : 20_000;
        this.schedulePing();
        this.feedWatchdog();
        this.onStatus({ state: "waiting", position: frame.position ?? 0 });
        break;
      default:
        break;
    }
    this.onFrame(frame);
  }

  becameLive(frame) {
    this.joined = true;
    this.attempt = 0;
    this.retryHintMs = 0;
    this.clearTimer("join");
    this.heartbeatMs = frame.heartbeat_ms > 0 ? frame.heartbeat_ms : 20_000;
    this.schedulePing();
    this.feedWatchdog();
    this.onStatus({ state: "live" });
  }

  settle(ref, fn) {
    const entry = this.pending.get(ref);
    if (!entry) return;
    this.pending.delete(ref);
    this.env.clearTimeout(entry.timer);
    fn(entry);
  }

  // -- heartbeat: a ping every heartbeat_ms; no frame for two intervals means the socket is dead --

  schedulePing() {
    this.setTimer("ping", this.heartbeatMs, () => {
      this.write({ t: "ping", ref: this.nextRef++ });
      this.schedulePing();
    });
  }

  feedWatchdog() {
    if (this.heartbeatMs > 0) this.setTimer("watchdog", 2 * this.heartbeatMs, () => this.dead());
  }

  /** The socket went silent: drop it without waiting for a closing handshake, and reconnect. */
  dead() {
    const socket = this.socket;
    this.detach();
    if (socket) {
      try {
        socket.close(4000, "heartbeat timeout");
      } catch {
        // already closing
      }
    }
    this.scheduleReconnect();
  }

  // -- closing ------------------------------------------------------------------------------------

  closed(code) {
    this.detach();
    if (this.leaving || FINAL_CLOSE_CODES.has(code)) {
      this.finish(code, this.lastError);
    } else {
      this.scheduleReconnect();
    }
  }

  /** Forget the current socket: timers off, handlers off, unanswered commands rejected. */
  detach() {
    for (const name of ["join", "rejoin", "ping", "watchdog"]) this.clearTimer(name);
    if (this.socket) {
      this.socket.onopen = this.socket.onmessage = this.socket.onclose = this.socket.onerror = null;
      this.socket = null;
    }
    this.joined = false;
    this.heartbeatMs = 0;
    for (const [ref, entry] of this.pending) {
      this.env.clearTimeout(entry.timer);
      entry.reject(new CommandError({ code: "disconnected", message: "connection lost before the server answered" }, entry.label, entry.type));
      this.pending.delete(ref);
    }
  }

  /** The server cannot take the join now: send it again on this socket after `hintMs` + jitter. */
  joinAgainLater(hintMs) {
    this.clearTimer("join");
    const delay = reconnectDelay(this.attempt, hintMs, this.env.random);
    this.attempt += 1;
    this.onStatus({ state: "reconnecting", retryAt: this.env.now() + delay, attempt: this.attempt });
    this.setTimer("rejoin", delay, () => {
      this.timers.rejoin = null;
      this.onStatus({ state: "connecting", attempt: this.attempt });
      this.write({ t: "join", token: this.#token, room: this.room, last_id: this.lastId });
      this.setTimer("join", JOIN_TIMEOUT_MS, () => this.dead());
    });
  }

  scheduleReconnect() {
    const delay = reconnectDelay(this.attempt, this.retryHintMs, this.env.random);
    this.attempt += 1;
    this.retryHintMs = 0;
    this.onStatus({ state: "reconnecting", retryAt: this.env.now() + delay, attempt: this.attempt });
    this.setTimer("retry", delay, () => {
      this.timers.retry = null;
      this.connect();
    });
  }

  finish(code, error) {
    this.finished = true;
    this.clearTimer("retry");
    const kind =
      code === 1000 ? (this.leaving ? "left" : "closed")
      : code === 4401 ? "unauthorized"
      : code === 4403 ? (error?.code === "token_wrong_room" ? "unauthorized" : error?.code === "join_denied" ? "denied" : "removed")
      : code === 4409 ? "ended"
      : code === 4410 ? "replaced"
      : code === 4423 ? "locked"
      : "closed";
    this.onStatus({ state: "closed", code, kind, error: error ? { code: error.code, message: error.message } : null });
  }

  setTimer(name, ms, fn) {
    this.clearTimer(name);
    this.timers[name] = this.env.setTimeout(fn, ms);
  }

  clearTimer(name) {
    if (this.timers[name] !== null) {
      this.env.clearTimeout(this.timers[name]);
      this.timers[name] = null;
    }
  }
}
