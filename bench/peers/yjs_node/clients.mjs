// The Yjs client workload of bench/whiteboard.py: N real Yjs clients (yjs 13.6 documents, each
// with y-websocket 3.1's WebsocketProvider over `ws`) on one board.
//
//   node clients.mjs '<json config>'
//
// Config: base (the provider's serverUrl, e.g. ws://127.0.0.1:PORT/whiteboard/ROOM), board (the
// provider's roomname), n (clients), writers (the first `writers` clients write), procs (Node
// processes hosting the clients), tokens (null, or one per client, sent as ?token=), seed,
// awareness, connect_timeout_s, deadline_s.
//
// Every client is a provider with BroadcastChannel off (`disableBc`: in Node 20 the global
// BroadcastChannel would sync clients of one process without the server) and, with `awareness`,
// an awareness state like a whiteboard user's, which the provider sends on connect and renews
// every 15 s (y-websocket also re-sends every awareness change it receives from others; a server
// that relays those copies multiplies them by the board's size). Without it the state is null. A write is one shape record pushed to the board's `records` Y.Array
// as a y-utility YKeyValue entry, `{key, val: {x, y, t}}` (x, y from a seeded PRNG; t = the
// writer's CLOCK_MONOTONIC in µs, process.hrtime). It reaches the server as one sync update of
// about 50 bytes. Every other client observes `records`, and its relay latency is its own
// process.hrtime in its `records` observer (the update decoded and applied) minus the record's
// t: the clock is system-wide, so the number needs nothing but what came over the wire.
//
// Processes: this one (the main process) hosts the writers and its share of the listeners and
// forks procs - 1 helpers (the same file, config role "helper") for the others, clients split in
// contiguous blocks. A helper sends its deliveries to the main process over the IPC channel, one
// message per event-loop turn ([key, receive µs, latency µs] triples); the main process counts
// them against its writes, so the closed loop below sees every listener wherever it runs.
//
// JSON lines between the main process and the harness: events on stdout, commands on stdin.
//   -> {"ev": "connected", ok, synced_ms, close_codes}   once every client synced (or timeout)
//   <- {"cmd": "steady", phase, rate, count, timeout_s}
//        `count` writes at `rate` per second, the writers taking turns; then waits (up to
//        timeout_s) until every listener observed every write.
//   <- {"cmd": "saturate", phase, seconds, window, timeout_s}
//        closed loop: at most `window` writes not yet observed by every listener; each time one
//        completes, the next is written, for `seconds`; then waits for the last ones.
//   -> {"ev": "phase", phase, writes, completed, expected, received, lat_us, first_us, all_us,
//       span_us, update_bytes}
//        lat_us: every delivery's latency; first_us / all_us: per write, the latency to its first
//        listener and to its last (every listener observed it); span_us: first write to last
//        completion; update_bytes: mean size of the writers' updates.
//   <- {"cmd": "status"}   -> {"ev": "status", open, synced, close_codes, errors, stray}
//   <- {"cmd": "quit"}     (also stdin closed, or deadline_s) destroys every provider and exits.
'use strict'

import { fork } from 'node:child_process'
import process from 'node:process'
import readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const cfg = JSON.parse(process.argv[2])
const N = cfg.n
const WRITERS = Math.min(cfg.writers, N)
const HELPER = cfg.role === 'helper'
process.setMaxListeners(0) // every provider adds an exit handler

const nowUs = () => Number(process.hrtime.bigint() / 1000n)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Which clients each process hosts: contiguous blocks, the writers in the main process's.
const PROCS = Math.max(1, Math.min(cfg.procs || 1, Math.floor(N / WRITERS)))
const block = (p) => [Math.floor((p * N) / PROCS), Math.floor(((p + 1) * N) / PROCS)]
const [FIRST, END] = HELPER ? cfg.range : block(0)

// mulberry32: the same coordinates in every run for a seed
let rngState = (cfg.seed >>> 0) || 1
const rand = () => {
  rngState = (rngState + 0x6d2b79f5) >>> 0
  let t = rngState
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

// -- this process's clients --------------------------------------------------------------------

const clients = []
const closeCodes = {}
let errors = 0

// Set below: what to do with one delivery (main: count it; helper: forward it).
let deliver = null

// The entries a remote transaction inserted into `records`: per client, the structs from its clock
// before the transaction on (Yjs's own cleanup walks them the same way). Not event.changes: that
// walks the whole array, so the clients' cost would grow with the board, not with the traffic.
function observed (doc, records, tr, now) {
  tr.afterState.forEach((clock, client) => {
    const before = tr.beforeState.get(client) || 0
    if (clock === before) return
    const structs = doc.store.clients.get(client)
    for (let k = Y.findIndexSS(structs, before); k < structs.length; k++) {
      const item = structs[k]
      if (item instanceof Y.Item && item.parent === records && !item.deleted) {
        for (const entry of item.content.getContent()) deliver(entry.key, now, now - entry.val.t)
      }
    }
  })
}

for (let i = FIRST; i < END; i++) {
  const doc = new Y.Doc()
  doc.clientID = 1000 + i // fixed ids: the same document structure in every run
  const records = doc.getArray('records')
  const provider = new WebsocketProvider(cfg.base, cfg.board, doc, {
    WebSocketPolyfill: WebSocket,
    params: cfg.tokens ? { token: cfg.tokens[i] } : {},
    disableBc: true
  })
  if (cfg.awareness) {
    provider.awareness.setLocalState({
      user: { name: `Client ${i}`, identity: `c${i}`, color: `#${(0x203040 + i * 0x050301).toString(16).slice(-6)}` },
      cursor: null,
      tool: 'rect'
    })
  } else {
    provider.awareness.setLocalState(null) // no presence at all: nothing sent, nothing renewed
  }
  const client = { i, doc, records, provider, synced: false, updateBytes: 0, updates: 0 }
  provider.on('sync', (s) => { client.synced = s })
  provider.on('connection-close', (ev) => {
    const code = ev ? String(ev.code) : 'local'
    closeCodes[code] = (closeCodes[code] || 0) + 1
  })
  provider.on('connection-error', () => { errors++ })
  records.observe((_event, tr) => {
    if (!tr.local) observed(doc, records, tr, nowUs())
  })
  if (i < WRITERS) {
    doc.on('update', (update, origin) => {
      if (origin !== provider) {
        client.updateBytes += update.length
        client.updates++
      }
    })
  }
  clients.push(client)
}

const localStatus = () => ({
  open: clients.filter((c) => c.provider.wsconnected).length,
  synced: clients.filter((c) => c.synced).length,
  close_codes: closeCodes,
  errors
})

let quitting = false
function quit () {
  if (quitting) return
  quitting = true
  for (const c of clients) c.provider.destroy()
  for (const h of helpers) {
    try { h.send({ cmd: 'quit' }) } catch {} // a helper that is gone already
  }
  setTimeout(() => process.exit(0), 300).unref()
}
const helpers = []
setTimeout(quit, cfg.deadline_s * 1000).unref()

// -- a helper process --------------------------------------------------------------------------

if (HELPER) {
  let batch = []
  let flushing = false
  const flush = () => {
    flushing = false
    process.send({ r: batch })
    batch = []
  }
  deliver = (key, now, lat) => {
    batch.push(key, now, lat)
    if (!flushing) {
      flushing = true
      setImmediate(flush) // after every socket this turn has read
    }
  }
  let lastSynced = -1
  const report = setInterval(() => { // until every client here synced; then on request
    const s = localStatus()
    if (s.synced !== lastSynced) {
      lastSynced = s.synced
      process.send({ status: s })
    }
    if (s.synced === END - FIRST) clearInterval(report)
  }, 5)
  process.on('message', (m) => {
    if (m.cmd === 'status') process.send({ status: localStatus(), reply: true })
    else if (m.cmd === 'quit') {
      clearInterval(report)
      quit()
    }
  })
  process.on('disconnect', quit)
}

// -- the main process: helpers, writes, deliveries, phases -------------------------------------

if (!HELPER) {
  const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
  const helperStatus = []
  let statusWaiters = []
  for (let p = 1; p < PROCS; p++) {
    const h = fork(new URL(import.meta.url).pathname, [JSON.stringify({ ...cfg, role: 'helper', range: block(p) })], {
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc']
    })
    const k = helpers.length
    helperStatus.push({ open: 0, synced: 0, close_codes: {}, errors: 0 })
    h.on('message', (m) => {
      if (m.r) {
        const r = m.r
        for (let j = 0; j < r.length; j += 3) deliver(r[j], r[j + 1], r[j + 2])
      } else if (m.status) {
        helperStatus[k] = m.status
        if (m.reply) {
          const waiters = statusWaiters
          statusWaiters = []
          for (const w of waiters) w()
        }
      }
    })
    h.on('exit', (code) => {
      if (!quitting) {
        process.stderr.write(`clients: helper ${p} exited (${code})\n`)
        process.exit(1)
      }
    })
    helpers.push(h)
  }

  const allStatus = () => {
    const out = { ...localStatus(), close_codes: { ...closeCodes } }
    for (const s of helperStatus) {
      out.open += s.open
      out.synced += s.synced
      out.errors += s.errors
      for (const [code, count] of Object.entries(s.close_codes)) {
        out.close_codes[code] = (out.close_codes[code] || 0) + count
      }
    }
    return out
  }

  let phase = null // the running phase's counters
  const pending = new Map() // key -> {remaining, min}
  let written = 0
  let stray = 0

  const newPhase = (name) => {
    phase = {
      name,
      writes: 0,
      completed: 0,
      expected: 0,
      received: 0,
      lat: [],
      first: [],
      all: [],
      firstSendUs: 0,
      lastDoneUs: 0,
      onComplete: null,
      bytes0: clients.reduce((s, c) => s + c.updateBytes, 0),
      updates0: clients.reduce((s, c) => s + c.updates, 0)
    }
    pending.clear()
  }

  const write = () => {
    const writer = clients[written % WRITERS]
    written++
    const key = `${writer.i}.${written.toString(36)}`
    pending.set(key, { remaining: N - 1, min: Infinity })
    phase.writes++
    phase.expected += N - 1
    const t = nowUs()
    if (!phase.firstSendUs) phase.firstSendUs = t
    const val = { x: Math.round(rand() * 1600), y: Math.round(rand() * 900), t }
    writer.records.push([{ key, val }])
  }

  deliver = (key, now, lat) => {
    const p = pending.get(key)
    if (p === undefined) {
      stray++ // a write of an earlier phase that completed late, or not ours
      return
    }
    phase.received++
    phase.lat.push(lat)
    if (lat < p.min) p.min = lat
    if (--p.remaining === 0) {
      pending.delete(key)
      phase.completed++
      phase.first.push(p.min)
      phase.all.push(lat)
      if (now > phase.lastDoneUs) phase.lastDoneUs = now
      if (phase.onComplete) phase.onComplete()
    }
  }

  const waitDone = async (timeoutS) => {
    const deadline = Date.now() + timeoutS * 1000
    while (phase.completed < phase.writes && Date.now() < deadline) await sleep(5)
  }

  const report = () => {
    const bytes = clients.reduce((s, c) => s + c.updateBytes, 0) - phase.bytes0
    const updates = clients.reduce((s, c) => s + c.updates, 0) - phase.updates0
    const round = (a) => a.map((x) => Math.round(x))
    emit({
      ev: 'phase',
      phase: phase.name,
      writes: phase.writes,
      completed: phase.completed,
      expected: phase.expected,
      received: phase.received,
      lat_us: round(phase.lat),
      first_us: round(phase.first),
      all_us: round(phase.all),
      span_us: phase.lastDoneUs ? phase.lastDoneUs - phase.firstSendUs : 0,
      update_bytes: updates ? bytes / updates : 0
    })
    phase = null
    pending.clear()
  }

  const steady = async ({ phase: name, rate, count, timeout_s: timeoutS }) => {
    newPhase(name)
    const t0 = performance.now()
    for (let k = 0; k < count; k++) {
      const delay = t0 + (k * 1000) / rate - performance.now()
      if (delay > 0) await sleep(delay)
      write()
    }
    await waitDone(timeoutS)
    report()
  }

  const saturate = async ({ phase: name, seconds, window, timeout_s: timeoutS }) => {
    newPhase(name)
    const stopAt = performance.now() + seconds * 1000
    let scheduled = false
    // Writes go out from a microtask, never from inside the observer: a write made in the
    // transaction that applies a remote update would carry the provider as its origin, and the
    // provider does not send updates of its own origin.
    const pump = () => {
      scheduled = false
      while (performance.now() < stopAt && phase.writes - phase.completed < window) write()
    }
    phase.onComplete = () => {
      if (!scheduled) {
        scheduled = true
        queueMicrotask(pump)
      }
    }
    pump()
    while (performance.now() < stopAt) await sleep(20)
    phase.onComplete = null
    await waitDone(timeoutS)
    report()
  }

  const status = async () => {
    const replied = new Promise((resolve) => {
      let left = helpers.length
      if (left === 0) return resolve()
      statusWaiters.push(...helpers.map(() => () => { if (--left === 0) resolve() }))
      for (const h of helpers) h.send({ cmd: 'status' })
    })
    await Promise.race([replied, sleep(2000)])
    emit({ ev: 'status', ...allStatus(), stray })
  }

  const t0 = performance.now()
  const connectDeadline = t0 + cfg.connect_timeout_s * 1000
  while (allStatus().synced < N && performance.now() < connectDeadline) await sleep(5)
  const s = allStatus()
  emit({
    ev: 'connected',
    ok: s.synced,
    synced_ms: Math.round(performance.now() - t0),
    close_codes: s.close_codes,
    procs: PROCS
  })

  let queue = Promise.resolve()
  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const cmd = JSON.parse(line)
    queue = queue.then(async () => {
      if (cmd.cmd === 'steady') await steady(cmd)
      else if (cmd.cmd === 'saturate') await saturate(cmd)
      else if (cmd.cmd === 'status') await status()
      else if (cmd.cmd === 'quit') quit()
    }).catch((err) => {
      process.stderr.write(`clients: ${err.stack || err}\n`)
      process.exit(1)
    })
  })
  rl.on('close', quit)
}
