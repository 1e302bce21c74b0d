// Light liveclass clients for bench/storm.py: one Node process drives many WebSocket clients of
// one room. Written from docs/protocol.md alone (MessagePack maps in binary frames on /ws; join ->
// welcome; commands carry `ref` and are answered `ack{ref, ids}` or `error{ref, code, ...}`; room
// changes arrive as `event{id, type, data}`; in large rooms students may receive upvotes as a
// coalesced `tally` frame instead: settle.mjs counts both).
//
//     node students.mjs <config.json>
//
// config: {room, concurrency, clients: [{identity, token, port, role, index}]}; `index` is the
// student's global index (the teacher has -1). The orchestrator talks to this process with JSON
// lines: commands on stdin, one answer line (`ev`) per command on stdout. Every wait is bounded by
// the command's `timeout_s`. Times are process.hrtime (CLOCK_MONOTONIC on Linux), the same clock
// as Python's time.monotonic_ns(), so the orchestrator's t0 and these times compare directly.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Packr, Unpackr } from "msgpackr";
import WebSocket from "ws";
import { applyVote } from "./settle.mjs";

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });
const now = () => Number(process.hrtime.bigint());
const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -- one client --------------------------------------------------------------------------------

class Client {
  constructor(spec) {
    Object.assign(this, spec); // identity, token, port, role, index
    this.ws = null;
    this.joined = false;
    this.closed = null; // close code once closed after joining
    this.nextRef = 1;
    this.pending = new Map(); // ref -> {sent, resolve}
    this.frames = 0;
    this.events = new Map(); // teacher only: recent events by id
    this.resetScenario(null);
  }

  resetScenario(sc) {
    this.sc = sc;
    this.frames = 0;
    this.vote = { votes: 0, through: 0 };
    this.value = null; // the scenario's observed value: votes, voters of the closed poll, lines
    this.changedAt = 0; // hrtime ns of the last change of `value`
    this.answers = new Set(); // staff: identities whose poll.answered was seen
    this.answersAt = 0;
    this.ackMs = null;
    this.error = null;
    this.seen = false;
  }

  connect(timeoutMs) {
    return new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${this.port}/ws`, {
        perMessageDeflate: false,
        handshakeTimeout: timeoutMs,
      });
      this.ws = ws;
      ws.binaryType = "nodebuffer";
      const timer = setTimeout(() => done("timeout"), timeoutMs);
      const done = (err) => {
        clearTimeout(timer);
        this.onJoin = null;
        if (err && ws.readyState !== WebSocket.CLOSED) ws.terminate();
        resolve(err);
      };
      this.onJoin = done;
      ws.on("open", () => this.send({ t: "join", token: this.token, room: cfg.room, last_id: null }));
      ws.on("message", (data) => this.onMessage(data));
      ws.on("error", () => {});
      ws.on("close", (code) => {
        if (this.onJoin) this.onJoin(`close ${code}`);
        if (this.joined && this.closed === null) this.closed = code;
        for (const p of this.pending.values()) p.resolve({ t: "error", code: "closed" });
        this.pending.clear();
      });
    });
  }

  send(obj) {
    this.ws.send(packr.pack(obj));
  }

  command(obj) {
    const ref = this.nextRef++;
    const sent = now();
    return new Promise((resolve) => {
      this.pending.set(ref, { sent, resolve });
      this.send({ ...obj, ref });
    });
  }

  onMessage(data) {
    const f = unpackr.unpack(data);
    this.frames++;
    switch (f.t) {
      case "event":
        return this.onEvent(f);
      case "tally":
        if (this.sc?.kind === "upvote" && applyVote(this.vote, f, this.sc.question_id)) {
          this.changed(this.vote.votes);
        }
        return;
      case "ack":
      case "error": {
        const p = this.pending.get(f.ref);
        if (p) {
          this.pending.delete(f.ref);
          const at = now();
          p.resolve({ ...f, ms: (at - p.sent) / 1e6, at });
        } else if (f.t === "error" && this.onJoin) {
          if (f.code === "rate_limited" || f.code === "unavailable") {
            const wait = (f.retry_after_ms || 100) + Math.random() * 200;
            setTimeout(() => this.rejoin(), wait);
          } else {
            this.onJoin(`join ${f.code}`);
          }
        }
        return;
      }
      case "welcome":
      case "resumed":
        this.joined = true;
        if (this.onJoin) this.onJoin(null);
        return;
      default:
        return; // presence, pong, reconnect, ...
    }
  }

  rejoin() {
    if (this.ws.readyState === WebSocket.OPEN) {
      this.send({ t: "join", token: this.token, room: cfg.room, last_id: null });
    }
  }

  onEvent(f) {
    if (watchFor && f.type === watchFor.type && f.data?.[watchFor.key] === watchFor.value) {
      this.seen = true;
    }
    if (this.role !== "student") {
      this.events.set(f.id, f);
      if (this.events.size > 256) this.events.delete(this.events.keys().next().value);
    }
    const sc = this.sc;
    if (sc === null) return;
    if (sc.kind === "upvote") {
      if (applyVote(this.vote, f, sc.question_id)) this.changed(this.vote.votes);
    } else if (sc.kind === "poll") {
      const d = f.data;
      if (d?.poll_id !== sc.poll_id) return;
      if (f.type === "poll.closed") this.changed(d.voters);
      else if (f.type === "poll.answered" && !this.answers.has(d.identity)) {
        this.answers.add(d.identity);
        this.answersAt = now();
      }
    } else if (sc.kind === "chat") {
      if (f.type === "chat.message" && f.data?.text?.startsWith(sc.tag)) {
        this.changed((this.value ?? 0) + 1);
      }
    }
  }

  changed(value) {
    this.value = value;
    this.changedAt = now();
  }
}

// -- this process's share ----------------------------------------------------------------------

const clients = cfg.clients.map((spec) => new Client(spec));
const byIdentity = new Map(clients.map((c) => [c.identity, c]));
const students = clients.filter((c) => c.role === "student");

async function connectAll(cmd) {
  const errors = {};
  let next = 0;
  const deadline = now() + cmd.timeout_s * 1e9;
  const worker = async () => {
    while (next < clients.length) {
      const c = clients[next++];
      for (let attempt = 0; attempt < 3; attempt++) {
        const left = Math.max(1000, (deadline - now()) / 1e6);
        const err = await c.connect(Math.min(left, 20000));
        if (!err) break;
        errors[err] = (errors[err] || 0) + 1;
        if (now() > deadline) break;
        await sleep(100 + Math.random() * 200);
      }
    }
  };
  await Promise.all(Array.from({ length: cfg.concurrency }, worker));
  out({ ev: "connected", ok: clients.filter((c) => c.joined).length, errors });
}

/** The teacher (or any client) sends one command and, when it appended events, waits for the
 *  first of them (to learn a question_id or poll_id). */
async function send(cmd) {
  const c = byIdentity.get(cmd.identity);
  const answer = await withTimeout(c.command(cmd.frame), cmd.timeout_s);
  let event = null;
  if (answer?.t === "ack" && answer.ids?.length) {
    const until = now() + cmd.timeout_s * 1e9;
    while (!c.events.has(answer.ids[0]) && now() < until) await sleep(5);
    event = c.events.get(answer.ids[0]) ?? null;
  }
  out({ ev: "sent", answer, event });
}

function withTimeout(promise, seconds) {
  return Promise.race([promise, sleep(seconds * 1000).then(() => ({ t: "timeout" }))]);
}

/** `watch`, sent before the teacher's command: note which clients see the event that opens the
 *  next scenario (`type` with `data[key] === value`, e.g. question.asked with this text). `arm`:
 *  wait until every live student here has seen it. */
function watch(cmd) {
  watchFor = cmd;
  for (const c of clients) c.seen = false;
  out({ ev: "watching" });
  return Promise.resolve();
}
let watchFor = null;

async function arm(cmd) {
  const until = now() + cmd.timeout_s * 1e9;
  const missing = () => students.filter((c) => c.joined && c.closed === null && !c.seen).length;
  while (missing() > 0 && now() < until) await sleep(10);
  out({ ev: "armed", missing: missing() });
}

/** Start a scenario: reset every client's counters; the senders send at t0 + their offset. */
async function go(cmd) {
  watchFor = null;
  const sc = cmd.scenario;
  for (const c of clients) c.resetScenario(sc);
  const senders = students.filter((c) => c.index < cmd.senders && c.joined && c.closed === null);
  const answers = await Promise.all(
    senders.map(async (c) => {
      const delay = (cmd.t0_ns + (cmd.window_ms * 1e6 * c.index) / cmd.senders - now()) / 1e6;
      await sleep(Math.max(0, delay));
      const a = await withTimeout(c.command(frameFor(sc, c)), cmd.timeout_s);
      if (a.t === "ack") c.ackMs = a.ms;
      else c.error = a.code ?? a.t;
      return [c, a];
    }),
  );
  const errors = {};
  for (const [, a] of answers) if (a.t !== "ack") errors[a.code ?? a.t] = (errors[a.code ?? a.t] || 0) + 1;
  out({
    ev: "acked",
    sent: senders.length,
    acks: answers.filter(([, a]) => a.t === "ack").length,
    ack_ms: answers.filter(([, a]) => a.t === "ack").map(([, a]) => a.ms),
    last_answer_ns: Math.max(0, ...answers.map(([, a]) => a.at ?? 0)),
    errors,
  });
}

function frameFor(sc, c) {
  if (sc.kind === "upvote") return { t: "question.upvote", question_id: sc.question_id };
  if (sc.kind === "poll") return { t: "poll.answer", poll_id: sc.poll_id, choices: [c.index % sc.options] };
  return { t: "chat.send", text: `${sc.tag}${c.identity}`, to: null };
}

/** Staff: once `target` distinct poll answers were seen, close the poll. */
async function closePoll(cmd) {
  const c = byIdentity.get(cmd.identity);
  const until = now() + cmd.timeout_s * 1e9;
  while (c.answers.size < cmd.target && now() < until) await sleep(2);
  const seenAll = c.answers.size >= cmd.target ? c.answersAt : 0;
  const answer = await withTimeout(c.command({ t: "poll.close", poll_id: cmd.poll_id }), cmd.timeout_s);
  out({ ev: "closed", answers_seen: c.answers.size, seen_all_ns: seenAll, answer });
}

/** Wait (bounded) until every live client here has the final value, then report. */
async function settle(cmd) {
  const until = now() + cmd.timeout_s * 1e9;
  const live = () => clients.filter((c) => c.joined && c.closed === null);
  while (now() < until && live().some((c) => c.value !== cmd.target)) await sleep(10);
  const report = (group) => {
    const done = group.filter((c) => c.value === cmd.target);
    return {
      clients: group.length,
      done: done.length,
      closed: group.filter((c) => c.closed !== null).length,
      over: group.filter((c) => c.value !== null && c.value > cmd.target).length,
      settle_ns: done.map((c) => c.changedAt),
      values: countValues(group.filter((c) => c.value !== cmd.target).map((c) => c.value)),
      frames: group.map((c) => c.frames),
    };
  };
  out({
    ev: "settled",
    students: report(students),
    staff: report(clients.filter((c) => c.role !== "student")),
    close_codes: countValues(clients.filter((c) => c.closed !== null).map((c) => c.closed)),
  });
}

function countValues(values) {
  const counts = {};
  for (const v of values) counts[String(v)] = (counts[String(v)] || 0) + 1;
  return counts;
}

const handlers = { connect: connectAll, send, watch, arm, go, close_poll: closePoll, settle };
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const cmd = JSON.parse(line);
  if (cmd.cmd === "quit") {
    for (const c of clients) c.ws?.terminate();
    process.exit(0);
  }
  handlers[cmd.cmd](cmd).catch((err) => out({ ev: "failed", error: String(err?.stack ?? err) }));
});
rl.on("close", () => process.exit(0));
out({ ev: "ready", clients: clients.length });
