// One simulated whiteboard participant for the interop tests: a real Y.Doc synced by the real
// y-websocket WebsocketProvider, driven by tests/integration/yjs.py over stdin/stdout.
//
// Protocol: one JSON object per line. Request {id, op, ...args}; reply {id, ok: true, result} or
// {id, ok: false, error}. Replies come in request order; stdout carries nothing else (console.log
// goes to stderr). The process exits when stdin closes, so a dead test runner leaves no client.
//
// The driver sits between the socket and the provider to (a) count every inbound y-protocols
// message by kind, decoding each relayed update's state vector so that echoes of our own updates
// can be counted, and (b) optionally hold inbound messages back ("hold"/"release"), which makes
// edits made meanwhile truly concurrent with the other clients' edits while staying connected.

import readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'
import * as prng from 'lib0/prng'

console.log = (...args) => console.error(...args)

// The document's roots: `records` and `meta` are the board's data model (docs/whiteboard.md);
// `map`, `list` and `text` take the tests' deliberate conflicts; `rmap`, `rlist` and `rtext` take
// seeded random edits (kept apart so that random deletes cannot remove what a test looks for).
const ROOTS = {
  records: (doc) => doc.getArray('records'),
  meta: (doc) => doc.getMap('meta'),
  map: (doc) => doc.getMap('map'),
  list: (doc) => doc.getArray('list'),
  text: (doc) => doc.getText('text'),
  rmap: (doc) => doc.getMap('rmap'),
  rlist: (doc) => doc.getArray('rlist'),
  rtext: (doc) => doc.getText('rtext')
}

let doc = null
let provider = null
let held = false
const heldMessages = []
const inbound = { sync1: 0, sync2: 0, update: 0, awareness: 0, auth: 0, queryAwareness: 0, other: 0 }
const updates = [] // per relayed update message: the client ids whose structs it carries
const authDenied = []
const awarenessLog = [] // {t: ms since epoch, added, updated, removed}
const statusLog = [] // {t, status}
const closeLog = [] // {t, code, reason}

const toB64 = (bytes) => Buffer.from(bytes).toString('base64')

/** Counts one inbound message (y-protocols framing: varUint type, then payload). */
const countInbound = (data) => {
  const decoder = decoding.createDecoder(new Uint8Array(data))
  const type = decoding.readVarUint(decoder)
  if (type === 0) {
    const sub = decoding.readVarUint(decoder)
    if (sub === 0) inbound.sync1++
    else if (sub === 1) inbound.sync2++
    else if (sub === 2) {
      inbound.update++
      const { from } = Y.parseUpdateMeta(decoding.readVarUint8Array(decoder))
      updates.push([...from.keys()].sort((a, b) => a - b))
    } else inbound.other++
  } else if (type === 1) inbound.awareness++
  else if (type === 2) {
    inbound.auth++
    const sub = decoding.readVarUint(decoder)
    if (sub === 0) authDenied.push(decoding.readVarString(decoder))
  } else if (type === 3) inbound.queryAwareness++
  else inbound.other++
}

/** The provider's socket: counts inbound messages and can hold them back. */
class DriverSocket extends WebSocket {
  constructor (url, protocols, options) {
    super(url, protocols, options)
    this._handler = null
    this.addEventListener('message', (event) => {
      countInbound(event.data)
      if (held) heldMessages.push([this, event])
      else if (this._handler) this._handler(event)
    })
  }

  get onmessage () { return this._handler }
  set onmessage (handler) { this._handler = handler }
}

const release = () => {
  held = false
  const pending = heldMessages.splice(0)
  for (const [socket, event] of pending) {
    if (socket._handler) socket._handler(event)
  }
  return pending.length
}

const root = (name) => {
  const make = ROOTS[name]
  if (!make) throw new Error(`unknown root ${name}`)
  return make(doc)
}

/** Applies one edit: [kind, root, ...args]. */
const applyOp = ([kind, name, ...args]) => {
  const type = root(name)
  switch (kind) {
    case 'map.set': type.set(args[0], args[1]); break
    case 'map.delete': type.delete(args[0]); break
    case 'array.insert': type.insert(args[0], args[1]); break
    case 'array.push': type.push(args[0]); break
    case 'array.delete': type.delete(args[0], args[1]); break
    case 'text.insert': type.insert(args[0], args[1]); break
    case 'text.delete': type.delete(args[0], args[1]); break
    default: throw new Error(`unknown edit ${kind}`)
  }
}

/** `count` seeded random edits, each its own transaction (so its own update). */
const randomEdits = (seed, count, tag) => {
  const gen = prng.create(seed)
  const map = root('rmap')
  const list = root('rlist')
  const text = root('rtext')
  for (let i = 0; i < count; i++) {
    const label = `${tag}.${i}`
    switch (prng.int32(gen, 0, 5)) {
      case 0: map.set(`k${prng.int32(gen, 0, 4)}`, label); break
      case 1: map.delete(`k${prng.int32(gen, 0, 4)}`); break
      case 2: list.insert(prng.int32(gen, 0, list.length), [label]); break
      case 3:
        if (list.length > 0) list.delete(prng.int32(gen, 0, list.length - 1), 1)
        else list.push([label])
        break
      case 4: text.insert(prng.int32(gen, 0, text.length), `<${label}>`); break
      default: {
        if (text.length > 0) {
          const at = prng.int32(gen, 0, text.length - 1)
          text.delete(at, Math.min(prng.int32(gen, 1, 3), text.length - at))
        } else text.insert(0, `<${label}>`)
      }
    }
  }
}

/** `count` whiteboard records pushed to `records`, one update each, as {key, val} entries. */
const pushRecords = (prefix, count, identity) => {
  const records = root('records')
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${i}`
    records.push([{
      key: id,
      val: { id, type: 'rect', x: i % 1600, y: (i * 7) % 900, color: '#1f77b4', width: 2, author: identity, z: i, w: 40, h: 30 }
    }])
  }
}

const state = () => {
  const json = {}
  for (const name of Object.keys(ROOTS)) json[name] = root(name).toJSON()
  const awareness = {}
  for (const [client, s] of provider.awareness.getStates()) awareness[client] = s
  return {
    clientID: doc.clientID,
    connected: provider.wsconnected,
    synced: provider.synced,
    sv: toB64(Y.encodeStateVector(doc)),
    clocks: Object.fromEntries(Y.decodeStateVector(Y.encodeStateVector(doc))),
    snapshot: toB64(Y.encodeSnapshot(Y.snapshot(doc))),
    json,
    awareness,
    inbound: { ...inbound },
    held: heldMessages.length,
    authDenied: [...authDenied]
  }
}

const ops = {
  open ({ serverUrl, board, params, clientID, awareness, localAddress }) {
    if (doc !== null) throw new Error('already open')
    // A source address of its own, so a source-hashing balancer spreads clients over nodes.
    const Socket = localAddress
      ? class extends DriverSocket { constructor (url, protocols) { super(url, protocols, { localAddress }) } }
      : DriverSocket
    doc = new Y.Doc()
    if (clientID != null) doc.clientID = clientID // before the awareness reads it
    for (const name of Object.keys(ROOTS)) root(name)
    provider = new WebsocketProvider(serverUrl, board, doc, {
      params: params || {},
      WebSocketPolyfill: Socket,
      disableBc: true, // clients in one machine must only meet through the server
      maxBackoffTime: 500
    })
    if (awareness !== undefined) provider.awareness.setLocalState(awareness)
    provider.awareness.on('change', ({ added, updated, removed }) => {
      awarenessLog.push({ t: Date.now(), added, updated, removed })
    })
    provider.on('status', ({ status }) => statusLog.push({ t: Date.now(), status }))
    provider.on('connection-close', (event) => {
      closeLog.push({ t: Date.now(), code: event ? event.code : null, reason: event ? String(event.reason) : null })
    })
    return { clientID: doc.clientID }
  },
  state,
  edit ({ ops: edits }) {
    doc.transact(() => { for (const e of edits) applyOp(e) })
    return edits.length
  },
  editEach ({ ops: edits }) {
    for (const e of edits) doc.transact(() => applyOp(e))
    return edits.length
  },
  random ({ seed, count, tag }) { randomEdits(seed, count, tag); return count },
  records ({ prefix, count, identity }) { pushRecords(prefix, count, identity); return count },
  awareness ({ state: s }) { provider.awareness.setLocalState(s); return null },
  hold () { held = true; return null },
  release () { return release() },
  updates () { return { own: doc.clientID, updates } },
  log () { return { awareness: awarenessLog, status: statusLog, close: closeLog } },
  disconnect () { provider.disconnect(); return null },
  connect () { provider.connect(); return null },
  destroy () {
    provider.destroy()
    doc.destroy()
    return null
  }
}

const reply = (message) => process.stdout.write(JSON.stringify(message) + '\n')

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let request
  try {
    request = JSON.parse(line)
    const op = ops[request.op]
    if (!op) throw new Error(`unknown op ${request.op}`)
    reply({ id: request.id, ok: true, result: op(request) })
  } catch (err) {
    reply({ id: request ? request.id : null, ok: false, error: String(err && err.stack ? err.stack : err) })
  }
}).on('close', () => process.exit(0))
