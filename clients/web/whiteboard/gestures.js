// What a pointer gesture does to the board, per tool: from pointer-down through moves to pointer-up.
// A gesture writes as it goes (others see a stroke grow), at most every WRITE_INTERVAL_MS, and its
// writes form one undo step. Board units throughout; no DOM.

import {
  addStrokePoint, drawOrder, hitTest, newRecordId, nextZ, round, shapeFromDrag, topmostAt, translated,
} from "./records.js";

/** How often a gesture in progress writes its record to the document (ms). */
export const WRITE_INTERVAL_MS = 50;
/** Pen points closer than this to the previous one are dropped (board units). */
const MIN_STEP = 1.5;
/** A drag shorter than this makes no shape (board units). */
const MIN_DRAG = 2;
/** How near the pointer must come to a record to erase or select it (board units). */
export const HIT_TOLERANCE = 6;

/**
 * @typedef {object} GestureEnv
 * @property {() => unknown[]} values     every record value in the document
 * @property {(id: string) => unknown} get
 * @property {(change: {put?: object[], remove?: string[]}) => void} write   one local transaction
 * @property {() => void} endGesture      close the undo step
 * @property {{color: string, width: number}} style
 * @property {string} author              this user's identity
 * @property {(id: string | null) => void} select
 * @property {(text: string, size: number) => number} measure
 *
 * @typedef {{move: (p: {x: number, y: number}) => void, end: () => void, cancel: () => void}} Gesture
 */

/**
 * Start a gesture at p. Returns null for tools that are not drags (text is typed, not dragged).
 * @param {string} tool
 * @param {{x: number, y: number}} p
 * @param {GestureEnv} env
 * @returns {Gesture | null}
 */
export function startGesture(tool, p, env) {
  switch (tool) {
    case "pen":
      return penGesture(p, env);
    case "line":
    case "arrow":
    case "rect":
    case "ellipse":
      return shapeGesture(tool, p, env);
    case "eraser":
      return eraserGesture(p, env);
    case "select":
      return selectGesture(p, env);
    default:
      return null;
  }
}

function baseRecord(env) {
  return {
    id: newRecordId(),
    color: env.style.color,
    width: env.style.width,
    author: env.author,
    z: nextZ(drawOrder(env.values())),
  };
}

/**
 * Writes the latest version of one record at most every WRITE_INTERVAL_MS; flush() writes now.
 * @param {GestureEnv} env
 */
function throttledWriter(env) {
  let pending = null;
  let timer = null;
  const flush = () => {
    clearTimeout(timer);
    timer = null;
    if (pending) {
      const record = pending;
      pending = null;
      env.write({ put: [structuredClone(record)] });
    }
  };
  return {
    put(record) {
      pending = record;
      if (timer === null) timer = setTimeout(flush, WRITE_INTERVAL_MS);
    },
    flush,
    drop() {
      clearTimeout(timer);
      timer = null;
      pending = null;
    },
  };
}

function penGesture(start, env) {
  const stroke = { ...baseRecord(env), type: "stroke", x: round(start.x), y: round(start.y), points: [[0, 0]] };
  const writer = throttledWriter(env);
  env.write({ put: [structuredClone(stroke)] }); // a click leaves a dot
  return {
    move(p) {
      if (addStrokePoint(stroke, p, MIN_STEP)) writer.put(stroke);
    },
    end() {
      writer.flush();
      env.endGesture();
    },
    cancel() {
      writer.drop();
      env.endGesture();
    },
  };
}

function shapeGesture(type, start, env) {
  const base = baseRecord(env);
  const writer = throttledWriter(env);
  let started = false;
  return {
    move(p) {
      if (!started && Math.hypot(p.x - start.x, p.y - start.y) < MIN_DRAG) return;
      started = true;
      writer.put(shapeFromDrag(type, start, p, base));
    },
    end() {
      writer.flush();
      env.endGesture();
    },
    cancel() {
      writer.drop();
      env.endGesture();
    },
  };
}

function eraserGesture(start, env) {
  const erased = new Set();
  let last = start;
  const eraseAlong = (from, to) => {
    const steps = Math.max(1, Math.ceil(Math.hypot(to.x - from.x, to.y - from.y) / HIT_TOLERANCE));
    const samples = [];
    for (let i = 0; i <= steps; i++) samples.push({ x: from.x + ((to.x - from.x) * i) / steps, y: from.y + ((to.y - from.y) * i) / steps });
    const remove = [];
    for (const r of drawOrder(env.values())) {
      if (erased.has(r.id)) continue;
      if (samples.some((s) => hitTest(r, s, HIT_TOLERANCE, { measure: env.measure }))) {
        erased.add(r.id);
        remove.push(r.id);
      }
    }
    env.write({ remove });
  };
  eraseAlong(start, start);
  return {
    move(p) {
      eraseAlong(last, p);
      last = p;
    },
    end() {
      env.endGesture();
    },
    cancel() {
      env.endGesture();
    },
  };
}

function selectGesture(start, env) {
  const hit = topmostAt(drawOrder(env.values()), start, HIT_TOLERANCE, { interior: true, measure: env.measure });
  env.select(hit ? hit.id : null);
  if (!hit) return { move() {}, end() {}, cancel() {} };
  const origin = structuredClone(hit);
  const writer = throttledWriter(env);
  let moved = false;
  return {
    move(p) {
      const dx = p.x - start.x, dy = p.y - start.y;
      if (!moved && Math.hypot(dx, dy) < 1) return;
      // Someone else deleted it meanwhile: moving must not bring it back.
      if (env.get(origin.id) === undefined) {
        writer.drop();
        return;
      }
      moved = true;
      writer.put(translated(origin, dx, dy));
    },
    end() {
      if (env.get(origin.id) === undefined) writer.drop();
      writer.flush();
      env.endGesture();
    },
    cancel() {
      writer.drop();
      env.endGesture();
    },
  };
}
