// Drawing records on a 2D canvas context whose transform maps board units to pixels. Used for the
// live board and for the PNG export, so both look the same.

import { BOARD_HEIGHT, BOARD_WIDTH, TEXT_LINE_HEIGHT, bounds } from "./records.js";

export const TEXT_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
export const PAPER = "#ffffff";

/** Arrow head: the length of its two barbs (board units) and their angle to the shaft. */
const HEAD_MIN = 12;
const HEAD_PER_WIDTH = 4;
const HEAD_ANGLE = Math.PI / 7;

/**
 * Draw records, bottom first.
 * @param {CanvasRenderingContext2D} ctx  transform already maps board units to pixels
 * @param {import("./records.js").BoardRecord[]} ordered  in drawing order
 */
export function drawRecords(ctx, ordered) {
  for (const r of ordered) {
    ctx.save();
    drawRecord(ctx, r);
    ctx.restore();
  }
}

/** @param {CanvasRenderingContext2D} ctx @param {import("./records.js").BoardRecord} r */
export function drawRecord(ctx, r) {
  ctx.strokeStyle = r.color;
  ctx.fillStyle = r.color;
  ctx.lineWidth = Math.max(0.5, r.width);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  switch (r.type) {
    case "stroke": {
      const [first, ...rest] = r.points;
      if (rest.length === 0) {
        ctx.beginPath();
        ctx.arc(r.x + first[0], r.y + first[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
        ctx.fill();
        return;
      }
      ctx.beginPath();
      ctx.moveTo(r.x + first[0], r.y + first[1]);
      for (const [dx, dy] of rest) ctx.lineTo(r.x + dx, r.y + dy);
      ctx.stroke();
      return;
    }
    case "line":
    case "arrow": {
      ctx.beginPath();
      ctx.moveTo(r.x, r.y);
      ctx.lineTo(r.x2, r.y2);
      if (r.type === "arrow") {
        const angle = Math.atan2(r.y2 - r.y, r.x2 - r.x);
        const head = Math.max(HEAD_MIN, r.width * HEAD_PER_WIDTH);
        for (const side of [-1, 1]) {
          ctx.moveTo(r.x2, r.y2);
          ctx.lineTo(r.x2 - head * Math.cos(angle + side * HEAD_ANGLE), r.y2 - head * Math.sin(angle + side * HEAD_ANGLE));
        }
      }
      ctx.stroke();
      return;
    }
    case "rect": {
      const b = bounds(r);
      ctx.strokeRect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
      return;
    }
    case "ellipse": {
      const b = bounds(r);
      ctx.beginPath();
      ctx.ellipse((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2, (b.x1 - b.x0) / 2, (b.y1 - b.y0) / 2, 0, 0, 2 * Math.PI);
      ctx.stroke();
      return;
    }
    case "text": {
      ctx.font = `${r.size}px ${TEXT_FONT}`;
      ctx.textBaseline = "top";
      r.text.split("\n").forEach((line, i) => ctx.fillText(line, r.x, r.y + i * r.size * TEXT_LINE_HEIGHT));
      return;
    }
    default:
  }
}

/**
 * A text width measurer in board units, for hit testing and selection outlines.
 * @param {CanvasRenderingContext2D} ctx
 */
export function textMeasurer(ctx) {
  return (text, size) => {
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.font = `${size}px ${TEXT_FONT}`;
    const width = ctx.measureText(text).width;
    ctx.restore();
    return width;
  };
}

/**
 * A dashed box around a record (the selection).
 * @param {CanvasRenderingContext2D} ctx
 * @param {import("./records.js").BoardRecord} r
 * @param {number} unitsPerPixel  so the outline stays one pixel wide at any scale
 */
export function drawSelection(ctx, r, unitsPerPixel, measure) {
  const b = bounds(r, measure);
  const pad = r.width / 2 + 4 * unitsPerPixel;
  ctx.save();
  ctx.strokeStyle = "#2f5bd3";
  ctx.lineWidth = unitsPerPixel;
  ctx.setLineDash([6 * unitsPerPixel, 4 * unitsPerPixel]);
  ctx.strokeRect(b.x0 - pad, b.y0 - pad, b.x1 - b.x0 + 2 * pad, b.y1 - b.y0 + 2 * pad);
  ctx.restore();
}

/**
 * The whole board as a PNG at its logical size (1600 x 900 px), on white paper, without cursors or
 * selection.
 * @param {import("./records.js").BoardRecord[]} ordered
 * @returns {Promise<Blob>}
 */
export function exportPng(ordered) {
  const canvas = document.createElement("canvas");
  canvas.width = BOARD_WIDTH;
  canvas.height = BOARD_HEIGHT;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, BOARD_WIDTH, BOARD_HEIGHT);
  drawRecords(ctx, ordered);
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("the browser could not encode the PNG"))), "image/png"));
}
