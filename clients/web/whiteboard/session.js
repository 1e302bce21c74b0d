// One whiteboard's Yjs document and its connection (docs/whiteboard.md): a Y.Doc synced by
// y-websocket's WebsocketProvider over `/whiteboard/<room>/<board>?token=<jwt>`, the `records`
// key-value store, an undo manager for this page's own edits, and the awareness state (who is here,
// where their cursor is).
//
// When the server refuses a write (y-protocols auth message "permission denied": a student writing
// to a locked board), the refused edit is already in the local document and cannot be taken back
// there. The session then throws the document away and starts over with a fresh Y.Doc and a new
// connection, so the page shows exactly what the server accepted.

import * as Y from "yjs";
import { readAuthMessage } from "y-protocols/auth";
import { YKeyValue } from "y-utility/y-keyvalue";
import { WebsocketProvider, messageAuth } from "y-websocket";

/** The transaction origin of this page's own edits; the undo manager tracks only these. */
export const LOCAL_ORIGIN = Symbol("liveclass.whiteboard.local");

/** Close codes after which a board stays closed (docs/protocol.md, "Whiteboard"): y-websocket's
 * default stops after 4400-4499 only, but a 1009 (a message the server will not read) would be sent
 * again on every reconnect. */
const FINAL_CLOSE_CODES = new Set([1002, 1007, 1009, 4400, 4401, 4403, 4404, 4409, 4410, 4413, 4423]);

/** At most this often a cursor position goes out in an awareness update (20 per second). */
export const CURSOR_INTERVAL_MS = 50;

/**
 * @typedef {{state: "connecting"|"live"|"reconnecting"|"closed", code?: number, reason?: string}} BoardStatus
 * @typedef {{name: string, identity: string, color: string}} BoardUser
 * @typedef {{clientId: number, user: BoardUser, cursor: {x: number, y: number} | null, tool: string}} Peer
 */

export class BoardSession {
  /** The access token, private: y-websocket sends it as the `token` query parameter. */
  #token;

  /**
   * @param {object} options
   * @param {string} options.serverUrl   ws(s)://host/whiteboard/<room>
   * @param {string} options.board       the board name, e.g. "main"
   * @param {string} options.token       the classroom's JWT
   * @param {BoardUser} options.user
   * @param {() => void} options.onRecords    the records changed (any origin)
   * @param {() => void} options.onPeers      someone's awareness state changed
   * @param {(status: BoardStatus) => void} options.onStatus
   * @param {() => void} options.onHistory    the undo/redo stacks changed
   * @param {(reason: string, lostEdits: boolean) => void} options.onRefused  a write was refused; the
   *   document was replaced. `lostEdits`: it held edits made on this page
   * @param {typeof WebSocket} [options.WebSocket]
   */
  constructor({ serverUrl, board, token, user, onRecords, onPeers, onStatus, onHistory, onRefused, WebSocket = globalThis.WebSocket }) {
    this.serverUrl = serverUrl;
    this.board = board;
    this.#token = token;
    this.callbacks = { onRecords, onPeers, onStatus, onHistory, onRefused };
    // y-websocket answers a sync message with a bare send(); when the server closes the board right
    // after it (a student moved to another room: 4404), that send would hit a closing socket and
    // log an error. What a closing socket would have sent is moot, so it is dropped.
    this.WebSocket = class extends WebSocket {
      send(data) {
        if (this.readyState === 1) super.send(data);
      }
    };
    /** @type {{user: BoardUser, cursor: {x: number, y: number} | null, tool: string}} */
    this.local = { user, cursor: null, tool: "pen" };
    /** How many times a refused write made the session start over with a fresh document. */
    this.resets = 0;
    /** @type {BoardStatus} */
    this.status = { state: "connecting" };
    this.everLive = false;
    this.stopped = false;
    this.cursorTimer = null;
    this.cursorSentAt = 0;
    this.resetPending = false;
    this.open();
  }

  // -- the document and its connection --------------------------------------------------------------

  open() {
    const doc = new Y.Doc();
    const records = doc.getArray("records");
    const kv = new YKeyValue(records);
    const undo = new Y.UndoManager(records, {
      trackedOrigins: new Set([LOCAL_ORIGIN]),
      // One undo step per gesture: the view calls endGesture(), never a timer.
      captureTimeout: 2 ** 31 - 1,
    });
    const provider = new WebsocketProvider(this.serverUrl, this.board, doc, {
      params: { token: this.#token },
      WebSocketPolyfill: this.WebSocket,
      // Tabs of one browser must not sync behind the server's back: it decides who may write.
      disableBc: true,
      connect: false,
      shouldReconnect: (event) => !FINAL_CLOSE_CODES.has(event.code) && !(event.code >= 4400 && event.code < 4500),
    });
    provider.messageHandlers[messageAuth] = (_encoder, decoder) => {
      readAuthMessage(decoder, doc, (_doc, reason) => this.refused(reason));
    };
    provider.on("status", ({ status }) => this.providerStatus(status));
    provider.on("sync", (synced) => {
      if (synced) this.setStatus({ state: "live" });
    });
    provider.on("closed", ({ code, reason }) => this.setStatus({ state: "closed", code, reason }));
    // Whether this document holds edits of this page's own; a refusal without any is no news to the
    // user (a reconnect's sync step 2 carries the known deletions, which a locked board refuses).
    this.localEdits = false;
    doc.on("afterTransaction", (tr) => {
      if (tr.local && tr.origin !== provider && (tr.changed.size > 0 || tr.deleteSet.clients.size > 0)) this.localEdits = true;
    });
    kv.on("change", () => this.callbacks.onRecords());
    const history = () => this.callbacks.onHistory();
    for (const event of ["stack-item-added", "stack-item-popped", "stack-cleared"]) undo.on(event, history);
    provider.awareness.on("change", () => this.callbacks.onPeers());
    provider.awareness.setLocalState({ ...this.local });

    Object.assign(this, { doc, records, kv, undo, provider, awareness: provider.awareness });
    provider.connect();
  }

  /** Tear the current document and connection down (its awareness removal goes out first). */
  close() {
    clearTimeout(this.cursorTimer);
    this.cursorTimer = null;
    this.provider.awareness.setLocalState(null);
    this.provider.destroy();
    this.provider.awareness.destroy();
    this.undo.destroy();
    this.doc.destroy();
  }

  refused(reason) {
    if (this.resetPending || this.stopped) return;
    this.resetPending = true;
    // Not from inside the provider's message handler: let it finish with the old socket first.
    setTimeout(() => {
      this.resetPending = false;
      if (this.stopped) return;
      const lostEdits = this.localEdits;
      this.resets += 1;
      this.close();
      this.status = { state: "connecting" };
      this.open();
      this.callbacks.onRefused(reason, lostEdits);
      this.callbacks.onRecords();
      this.callbacks.onHistory();
      this.callbacks.onPeers();
    }, 0);
  }

  /** Stop for good (the classroom session is over). */
  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.close();
    this.setStatus({ state: "closed", code: 1000, reason: "left" });
  }

  providerStatus(status) {
    if (status === "connected") {
      this.setStatus({ state: this.provider.synced ? "live" : this.everLive ? "reconnecting" : "connecting" });
    } else if (this.status.state !== "closed") {
      this.setStatus({ state: this.everLive ? "reconnecting" : "connecting" });
    }
  }

  /** @param {BoardStatus} status */
  setStatus(status) {
    if (status.state === "live") this.everLive = true;
    this.status = status;
    this.callbacks.onStatus(status);
  }

  // -- records ------------------------------------------------------------------------------------------

  /** Every record value in the document (unvalidated). */
  values() {
    return [...this.kv.map.values()].map((entry) => entry.val);
  }

  /** @param {string} id */
  get(id) {
    return this.kv.get(id);
  }

  /** Write records (new or changed) and delete ids, as one local transaction. */
  write({ put = [], remove = [] }) {
    if (put.length === 0 && remove.length === 0) return;
    this.doc.transact(() => {
      for (const id of remove) if (this.kv.has(id)) this.kv.delete(id);
      for (const record of put) this.kv.set(record.id, record);
    }, LOCAL_ORIGIN);
  }

  /** Close the current undo step: the next edit starts a new one. */
  endGesture() {
    this.undo.stopCapturing();
  }

  undoLast() {
    this.undo.stopCapturing();
    this.undo.undo();
  }

  redoLast() {
    this.undo.redo();
  }

  get canUndo() {
    return this.undo.undoStack.length > 0;
  }

  get canRedo() {
    return this.undo.redoStack.length > 0;
  }

  /** Forget this page's undo history (after the board was cleared, nothing comes back by undo). */
  clearHistory() {
    this.undo.clear();
  }

  // -- awareness ----------------------------------------------------------------------------------------

  /** @param {BoardUser} user */
  setUser(user) {
    if (JSON.stringify(user) === JSON.stringify(this.local.user)) return;
    this.local.user = user;
    this.awareness.setLocalStateField("user", user);
  }

  /** @param {string} tool */
  setTool(tool) {
    if (tool === this.local.tool) return;
    this.local.tool = tool;
    this.awareness.setLocalStateField("tool", tool);
  }

  /**
   * Where this user's pointer is (board units), or null when it left the board. Sent at most every
   * CURSOR_INTERVAL_MS; the last position always goes out.
   * @param {{x: number, y: number} | null} cursor
   */
  setCursor(cursor) {
    this.local.cursor = cursor;
    if (this.cursorTimer !== null) return;
    const wait = this.cursorSentAt + CURSOR_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      this.sendCursor();
      return;
    }
    this.cursorTimer = setTimeout(() => {
      this.cursorTimer = null;
      this.sendCursor();
    }, wait);
  }

  sendCursor() {
    this.cursorSentAt = Date.now();
    this.awareness.setLocalStateField("cursor", this.local.cursor);
  }

  /** Other connected clients with a user (this page's own state excluded). @returns {Peer[]} */
  peers() {
    const out = [];
    for (const [clientId, state] of this.awareness.getStates()) {
      if (clientId === this.doc.clientID || !state?.user || typeof state.user.name !== "string") continue;
      const c = state.cursor;
      const cursor = c && Number.isFinite(c.x) && Number.isFinite(c.y) ? { x: c.x, y: c.y } : null;
      out.push({ clientId, user: state.user, cursor, tool: typeof state.tool === "string" ? state.tool : "" });
    }
    return out;
  }
}
