// Whiteboard records (docs/whiteboard.md): what a valid record is, their z-order, geometry for
// hit testing and moving, and building one from a gesture. Plain data in, plain data out: no DOM,
// no Yjs, so it runs under Node as well.
//
// Every coordinate is in the logical board space, BOARD_WIDTH x BOARD_HEIGHT units, origin top left,
// y down; the page scales it to its canvas.

export const BOARD_WIDTH = 1600;
export const BOARD_HEIGHT = 900;

/** @typedef {"stroke"|"line"|"arrow"|"rect"|"ellipse"|"text"} RecordType */
export const RECORD_TYPES = /** @type {const} */ (["stroke", "line", "arrow", "rect", "ellipse", "text"]);

/**
 * @typedef {{id: string, type: RecordType, x: number, y: number, color: string, width: number,
 *   author: string, z: number, points?: number[][], x2?: number, y2?: number, w?: number, h?: number,
 *   text?: string, size?: number}} BoardRecord
 */

const COLOR = /^#[0-9a-fA-F]{6}$/;
const MAX_POINTS = 5000;
const MAX_TEXT = 2000;

const finite = (v) => typeof v === "number" && Number.isFinite(v);

/**
 * Whether a value read from the document is a record this client can draw. Other clients may write
 * anything into the shared array; what fails here is skipped, never thrown on.
 * @param {unknown} r
 * @returns {r is BoardRecord}
 */
export function isValidRecord(r) {
  if (!r || typeof r !== "object") return false;
  const rec = /** @type {any} */ (r);
  if (typeof rec.id !== "string" || !RECORD_TYPES.includes(rec.type)) return false;
  if (!finite(rec.x) || !finite(rec.y) || !finite(rec.width) || rec.width < 0 || !finite(rec.z)) return false;
  if (typeof rec.color !== "string" || !COLOR.test(rec.color)) return false;
  switch (rec.type) {
    case "stroke":
      return Array.isArray(rec.points) && rec.points.length > 0 && rec.points.length <= MAX_POINTS &&
        rec.points.every((p) => Array.isArray(p) && finite(p[0]) && finite(p[1]));
    case "line":
    case "arrow":
      return finite(rec.x2) && finite(rec.y2);
    case "rect":
    case "ellipse":
      return finite(rec.w) && finite(rec.h);
    case "text":
      return typeof rec.text === "string" && rec.text.length <= MAX_TEXT && finite(rec.size) && rec.size > 0;
    default:
      return false;
  }
}

/** Drawing order: lower z first; equal z (concurrent creations) by id, so every client agrees. */
export function compareZ(a, b) {
  return a.z - b.z || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The valid records, in drawing order (bottom first). @param {Iterable<unknown>} values */
export function drawOrder(values) {
  const out = [];
  for (const v of values) if (isValidRecord(v)) out.push(v);
  return out.sort(compareZ);
}

/** The z for a record put on top of `records`. @param {BoardRecord[]} records */
export function nextZ(records) {
  let top = 0;
  for (const r of records) if (r.z > top) top = r.z;
  return Math.floor(top) + 1;
}

/**
 * A fresh record id: 16 random base-36 characters (about 82 bits), unique without coordination.
 * @param {{getRandomValues: (a: Uint8Array) => Uint8Array}} [rng]
 */
export function newRecordId(rng = globalThis.crypto) {
  const bytes = rng.getRandomValues(new Uint8Array(16));
  let id = "";
  for (const b of bytes) id += (b % 36).toString(36);
  return id;
}

/** Round to 0.1 unit: enough for any screen, and it keeps the JSON in the document short. */
export const round = (v) => Math.round(v * 10) / 10;

/** Text lines and their height, shared by rendering and hit testing. */
export const TEXT_LINE_HEIGHT = 1.25;

/**
 * A record's axis-aligned bounds, not counting its stroke width.
 * @param {BoardRecord} r
 * @param {(text: string, size: number) => number} [measure]  text width in board units
 * @returns {{x0: number, y0: number, x1: number, y1: number}}
 */
export function bounds(r, measure = roughTextWidth) {
  switch (r.type) {
    case "stroke": {
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const [dx, dy] of r.points) {
        x0 = Math.min(x0, r.x + dx); y0 = Math.min(y0, r.y + dy);
        x1 = Math.max(x1, r.x + dx); y1 = Math.max(y1, r.y + dy);
      }
      return { x0, y0, x1, y1 };
    }
    case "line":
    case "arrow":
      return { x0: Math.min(r.x, r.x2), y0: Math.min(r.y, r.y2), x1: Math.max(r.x, r.x2), y1: Math.max(r.y, r.y2) };
    case "rect":
    case "ellipse":
      return { x0: Math.min(r.x, r.x + r.w), y0: Math.min(r.y, r.y + r.h), x1: Math.max(r.x, r.x + r.w), y1: Math.max(r.y, r.y + r.h) };
    case "text": {
      const lines = r.text.split("\n");
      const width = Math.max(...lines.map((line) => measure(line, r.size)));
      return { x0: r.x, y0: r.y, x1: r.x + width, y1: r.y + lines.length * r.size * TEXT_LINE_HEIGHT };
    }
    default:
      return { x0: r.x, y0: r.y, x1: r.x, y1: r.y };
  }
}

/** A text width estimate for when no canvas is at hand (0.6 em a character). */
export function roughTextWidth(text, size) {
  return text.length * size * 0.6;
}

function distanceToSegment(p, ax, ay, bx, by) {
  const dx = bx - ax, dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((p.x - ax) * dx + (p.y - ay) * dy) / len2));
  return Math.hypot(p.x - (ax + t * dx), p.y - (ay + t * dy));
}

/**
 * Whether point p (board units) touches record r within `tolerance` units.
 * `interior`: a rectangle, ellipse or text is hit anywhere inside (selecting); otherwise only on its
 * outline (erasing).
 * @param {BoardRecord} r
 * @param {{x: number, y: number}} p
 * @param {number} tolerance
 * @param {{interior?: boolean, measure?: (text: string, size: number) => number}} [options]
 */
export function hitTest(r, p, tolerance, { interior = false, measure = roughTextWidth } = {}) {
  const reach = tolerance + r.width / 2;
  switch (r.type) {
    case "stroke": {
      const pts = r.points;
      if (pts.length === 1) return Math.hypot(p.x - (r.x + pts[0][0]), p.y - (r.y + pts[0][1])) <= reach;
      for (let i = 1; i < pts.length; i++) {
        if (distanceToSegment(p, r.x + pts[i - 1][0], r.y + pts[i - 1][1], r.x + pts[i][0], r.y + pts[i][1]) <= reach) return true;
      }
      return false;
    }
    case "line":
    case "arrow":
      return distanceToSegment(p, r.x, r.y, r.x2, r.y2) <= reach;
    case "rect": {
      const b = bounds(r);
      const inside = p.x >= b.x0 - reach && p.x <= b.x1 + reach && p.y >= b.y0 - reach && p.y <= b.y1 + reach;
      if (!inside) return false;
      if (interior) return true;
      return Math.min(Math.abs(p.x - b.x0), Math.abs(p.x - b.x1), Math.abs(p.y - b.y0), Math.abs(p.y - b.y1)) <= reach;
    }
    case "ellipse": {
      const b = bounds(r);
      const rx = (b.x1 - b.x0) / 2, ry = (b.y1 - b.y0) / 2;
      const cx = b.x0 + rx, cy = b.y0 + ry;
      // Distance from the outline, measured along the ray from the centre (exact for circles).
      const angle = Math.atan2(p.y - cy, p.x - cx);
      const ex = cx + rx * Math.cos(angle), ey = cy + ry * Math.sin(angle);
      const fromCentre = Math.hypot(p.x - cx, p.y - cy), toOutline = Math.hypot(ex - cx, ey - cy);
      if (interior && fromCentre <= toOutline) return true;
      return Math.abs(fromCentre - toOutline) <= reach;
    }
    case "text": {
      const b = bounds(r, measure);
      return p.x >= b.x0 - tolerance && p.x <= b.x1 + tolerance && p.y >= b.y0 - tolerance && p.y <= b.y1 + tolerance;
    }
    default:
      return false;
  }
}

/**
 * The topmost record at p, or null.
 * @param {BoardRecord[]} ordered  records in drawing order
 */
export function topmostAt(ordered, p, tolerance, options) {
  for (let i = ordered.length - 1; i >= 0; i--) {
    if (hitTest(ordered[i], p, tolerance, options)) return ordered[i];
  }
  return null;
}

/**
 * A copy of r moved by (dx, dy): x, y, and for a line or arrow its end point x2, y2 (absolute).
 * @param {BoardRecord} r
 * @returns {BoardRecord}
 */
export function translated(r, dx, dy) {
  const moved = { ...r, x: round(r.x + dx), y: round(r.y + dy) };
  if (r.type === "line" || r.type === "arrow") {
    moved.x2 = round(r.x2 + dx);
    moved.y2 = round(r.y2 + dy);
  }
  return moved;
}

/** Clamp a point to the board. */
export function clampToBoard(p) {
  return { x: Math.max(0, Math.min(BOARD_WIDTH, p.x)), y: Math.max(0, Math.min(BOARD_HEIGHT, p.y)) };
}

/**
 * A line, arrow, rectangle or ellipse spanning a drag from `start` to `end`. Rectangles and ellipses
 * are normalised so w and h are never negative (x, y is the top-left corner).
 * @param {"line"|"arrow"|"rect"|"ellipse"} type
 * @param {{x: number, y: number}} start
 * @param {{x: number, y: number}} end
 * @param {{id: string, color: string, width: number, author: string, z: number}} base
 * @returns {BoardRecord}
 */
export function shapeFromDrag(type, start, end, base) {
  if (type === "line" || type === "arrow") {
    return { ...base, type, x: round(start.x), y: round(start.y), x2: round(end.x), y2: round(end.y) };
  }
  return {
    ...base,
    type,
    x: round(Math.min(start.x, end.x)),
    y: round(Math.min(start.y, end.y)),
    w: round(Math.abs(end.x - start.x)),
    h: round(Math.abs(end.y - start.y)),
  };
}

/**
 * Stroke points are relative to the record's x, y (its first point), so moving a stroke rewrites two
 * numbers, not every point.
 * @param {BoardRecord} stroke
 * @param {{x: number, y: number}} p
 * @param {number} minStep  skip points closer than this to the last one (board units)
 * @returns {boolean} whether the point was added
 */
export function addStrokePoint(stroke, p, minStep) {
  const last = stroke.points[stroke.points.length - 1];
  const dx = round(p.x - stroke.x), dy = round(p.y - stroke.y);
  if (Math.hypot(dx - last[0], dy - last[1]) < minStep || stroke.points.length >= MAX_POINTS) return false;
  stroke.points.push([dx, dy]);
  return true;
}

/** The font size of a text record written with a given pen width. */
export function textSizeForWidth(width) {
  return Math.max(16, width * 6);
}
