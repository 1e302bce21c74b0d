// The whiteboard panel: a shared board (docs/whiteboard.md) drawn on a canvas, with tools (pen, line,
// arrow, rectangle, ellipse, text, eraser, select and move), colours and widths, undo/redo of one's
// own edits, the others' cursors, PNG export, and for staff the lock, clear and snapshot controls
// that ride the classroom protocol. Students cannot draw while the board is locked.

import { el, reconcile, replaceChildren } from "../dom.js";
import { startGesture } from "../whiteboard/gestures.js";
import {
  BOARD_HEIGHT, BOARD_WIDTH, clampToBoard, drawOrder, newRecordId, nextZ, round, textSizeForWidth,
} from "../whiteboard/records.js";
import { PAPER, TEXT_FONT, drawRecords, drawSelection, exportPng, textMeasurer } from "../whiteboard/render.js";
import { BoardSession } from "../whiteboard/session.js";
import { restoreWrite } from "../whiteboard/snapshots.js";
import { mountBoardSnapshots } from "./board_snapshots.js";

export const MAIN_BOARD = "main";

const TOOLS = [
  ["select", "Select", "Select and move (V)"],
  ["pen", "Pen", "Freehand pen (P)"],
  ["line", "Line", "Straight line (L)"],
  ["arrow", "Arrow", "Arrow (A)"],
  ["rect", "Rectangle", "Rectangle (R)"],
  ["ellipse", "Ellipse", "Ellipse (O)"],
  ["text", "Text", "Text (T)"],
  ["eraser", "Eraser", "Eraser (E)"],
];
const TOOL_KEYS = { v: "select", p: "pen", l: "line", a: "arrow", r: "rect", o: "ellipse", t: "text", e: "eraser" };
const COLORS = [
  ["#1d2330", "Black"],
  ["#c0392b", "Red"],
  ["#2f5bd3", "Blue"],
  ["#1e8a4c", "Green"],
  ["#e67e22", "Orange"],
  ["#8e44ad", "Purple"],
];
const WIDTHS = [2, 4, 8, 16];
/** Cursor colours for people, picked by a hash of their identity. */
const PEOPLE_COLORS = ["#d35400", "#16a085", "#8e44ad", "#2980b9", "#c0392b", "#27ae60", "#b7950b", "#7f8c8d"];
const CLEAR_CONFIRM_MS = 4000;
/** A cursor that has not moved for this long fades and drops its name, so it covers nothing. */
export const CURSOR_IDLE_MS = 3000;
/** Past these shares of the board a cursor's name goes to its left (or above it), never cut off. */
const CURSOR_FLIP_X = 0.8;
const CURSOR_FLIP_Y = 0.9;

const STATUS_TEXT = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", closed: "Disconnected" };

/** @param {string} identity */
export function colorFor(identity) {
  let h = 0;
  for (const ch of identity) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return PEOPLE_COLORS[h % PEOPLE_COLORS.length];
}

/**
 * @param {HTMLElement} root  the whiteboard panel
 * @param {{model: import("../state.js").RoomModel, commands: ReturnType<import("../commands.js").createCommands>,
 *          run: (p: Promise<unknown>) => Promise<boolean>, toasts: ReturnType<import("./toasts.js").mountToasts>,
 *          board?: string}} ctx
 */
export function mountWhiteboard(root, { model, commands, run, toasts, board: firstBoard = MAIN_BOARD }) {
  // -- elements -------------------------------------------------------------------------------------

  const toolButtons = new Map(TOOLS.map(([tool, label, title]) => [tool,
    el("button", { type: "button", class: "btn btn-small wb-tool", testid: `wb-tool-${tool}`, "data-tool": tool, title,
      "aria-pressed": "false", text: label, onclick: () => setTool(tool) })]));
  const colorButtons = COLORS.map(([color, name]) =>
    el("button", { type: "button", class: "wb-swatch", testid: "wb-color", "data-color": color, title: name,
      "aria-label": name, "aria-pressed": "false", style: `--swatch: ${color}`, onclick: () => setStyle({ color }) }));
  const widthButtons = WIDTHS.map((width) =>
    el("button", { type: "button", class: "wb-width", testid: "wb-width", "data-width": width, title: `Width ${width}`,
      "aria-label": `Width ${width}`, "aria-pressed": "false", style: `--dot: ${Math.min(16, width + 2)}px`,
      onclick: () => setStyle({ width }) }));
  const undoButton = el("button", { type: "button", class: "btn btn-small", testid: "wb-undo", text: "Undo", title: "Undo your last change (Ctrl+Z)",
    onclick: () => undo() });
  const redoButton = el("button", { type: "button", class: "btn btn-small", testid: "wb-redo", text: "Redo", title: "Redo (Ctrl+Shift+Z)",
    onclick: () => redo() });
  const exportButton = el("button", { type: "button", class: "btn btn-small", testid: "wb-export", text: "Export PNG",
    onclick: () => exportBoard() });
  const lockButton = el("button", { type: "button", class: "btn btn-small toggle", testid: "wb-lock", "aria-pressed": "false",
    onclick: () => run(commands.lockBoard(board, !model.lockedBoards.has(board))) });
  const clearButton = el("button", { type: "button", class: "btn btn-small btn-danger", testid: "wb-clear", "data-armed": "false",
    text: "Clear", onclick: () => clearBoard() });
  const snapshotButton = el("button", { type: "button", class: "btn btn-small", testid: "wb-snapshot", text: "Save snapshot",
    onclick: () => run(commands.snapshotBoard(board)) });
  // Clear saves a snapshot first and can be undone by the one who cleared (see clearBoard).
  const undoClearButton = el("button", { type: "button", class: "btn btn-small", testid: "wb-undo-clear", text: "Undo clear",
    hidden: true, title: "Put back what the board held before Clear", onclick: () => undoClear() });
  const staffControls = el("div", { class: "wb-group wb-staff", hidden: true }, lockButton, clearButton, undoClearButton, snapshotButton);

  const status = el("span", { class: "wb-status", testid: "wb-status", role: "status", "data-state": "connecting",
    "data-locked": "false", "data-resets": "0", text: STATUS_TEXT.connecting });
  const lockedBadge = el("span", { class: "badge badge-warn", testid: "wb-locked", hidden: true });
  const boardSelect = el("select", { class: "wb-board", testid: "wb-board", "aria-label": "Board", hidden: true,
    onchange: () => show(boardSelect.value) });

  const canvas = el("canvas", { class: "wb-canvas", testid: "whiteboard-canvas", "data-records": "0",
    "aria-label": "Whiteboard", role: "img" });
  const overlay = el("canvas", { class: "wb-overlay", "aria-hidden": "true" });
  const cursors = el("div", { class: "wb-cursors", "aria-hidden": "true" });
  const textInput = el("input", { type: "text", class: "wb-text-input", testid: "wb-text-input", hidden: true, maxLength: 500,
    "aria-label": "Text on the whiteboard" });
  const stage = el("div", { class: "wb-stage", testid: "wb-stage", "data-tool": "pen", "data-readonly": "true", tabIndex: 0 },
    canvas, overlay, cursors, textInput);
  const snapshots = mountBoardSnapshots({ model, commands, toasts }, {
    board: () => board,
    canWrite: () => canWrite(),
    records: () => (session ? drawOrder(session.values()) : []),
    write: (change) => {
      session?.write(change);
      session?.endGesture();
      render();
    },
  });

  root.append(
    el("div", { class: "wb-head" }, el("h2", {}, "Whiteboard"), boardSelect, status, lockedBadge),
    el("div", { class: "wb-toolbar", role: "toolbar", "aria-label": "Whiteboard tools" },
      el("div", { class: "wb-group" }, ...toolButtons.values()),
      el("div", { class: "wb-group" }, ...colorButtons),
      el("div", { class: "wb-group" }, ...widthButtons),
      el("div", { class: "wb-group" }, undoButton, redoButton, exportButton),
      staffControls),
    stage,
    snapshots.node,
  );

  const ctx2d = canvas.getContext("2d");
  const overlayCtx = overlay.getContext("2d");
  const measure = textMeasurer(ctx2d);

  // -- state ------------------------------------------------------------------------------------------

  /** @type {BoardSession | null} */
  let session = null;
  let link = { serverUrl: "", token: "", room: "", identity: "", name: "" };
  /** The board shown: a student's follows the room they are in (`main` or their breakout room's). */
  let board = firstBoard;
  /** @type {string|null} a board picked by hand, else null: the board of the room one is in */
  let picked = null;
  let lastPlaceBoard = firstBoard;
  let tool = "pen";
  let style = { color: COLORS[0][0], width: WIDTHS[1] };
  /** @type {import("../whiteboard/gestures.js").Gesture | null} */
  let gesture = null;
  let selected = null;
  /** @type {{x: number, y: number} | null} where the open text input writes */
  let textAt = null;
  let lastClear = undefined;
  /** @type {{board: string, records: object[]} | null} what this page cleared, to put back */
  let undoable = null;

  let clearArmTimer = null;
  let frame = null;
  let ordered = [];

  // -- connection -------------------------------------------------------------------------------------

  /**
   * Open the board's connection.
   * @param {{serverUrl: string, token: string, room: string, identity: string, name: string}} options
   */
  function connect({ serverUrl, token, room, identity, name }) {
    link = { serverUrl, token, room, identity, name };
    open();
  }

  function open() {
    const { serverUrl, token, identity, name } = link;
    session = new BoardSession({
      serverUrl,
      board,
      token,
      user: { name, identity, color: colorFor(identity) },
      onRecords: scheduleDraw,
      onPeers: renderCursors,
      onStatus: render,
      onHistory: render,
      onRefused: (reason, lostEdits) => {
        cancelGesture();
        closeTextInput(false);
        selected = null;
        if (lostEdits) toasts.info(`Your last whiteboard change was not saved: ${reason || "not allowed"}`, "wb-refused");
        render();
      },
    });
    session.setTool(tool);
    render();
    scheduleDraw();
  }

  /**
   * The board follows the room this participant is in (docs/whiteboard.md): when staff move them
   * (or a staff member visits a room), the page closes the old board (the server closes a
   * student's with 4404 anyway) and opens the new room's. A board picked by hand (staff: any open
   * room's; everyone: the gallery's when shown) stays until the place changes or it may no longer
   * be opened.
   */
  function followRoom() {
    if (!session || session.stopped || !model.me) return;
    const placeBoard = model.boardOf(model.place);
    if (placeBoard !== lastPlaceBoard) {
      lastPlaceBoard = placeBoard;
      picked = null;
    }
    if (picked !== null && !boardChoices().some((c) => c.board === picked)) picked = null;
    switchTo(picked ?? placeBoard);
  }

  function switchTo(wanted) {
    if (wanted === board) return;
    cancelGesture();
    closeTextInput(false);
    selected = null;
    lastClear = undefined;
    session.stop();
    board = wanted;
    open();
  }

  /**
   * The boards this page may show: the room one is in; `main` (read-only for a student in a breakout
   * room); staff: every open room's; the last round's boards once staff show them (read-only).
   * @returns {{board: string, label: string}[]}
   */
  function boardChoices() {
    const choices = [{ board: MAIN_BOARD, label: "Main room" }];
    const place = model.place;
    model.breakouts.forEach((room, i) => {
      if (model.isStaff || room === place) choices.push({ board: model.breakoutBoards[i] ?? room, label: room });
    });
    if (model.galleryVisible) {
      for (const g of model.gallery) choices.push({ board: g.board, label: `${g.room} (round ${g.round}, read-only)` });
    }
    return choices;
  }

  /** Show a board this page may open (the breakout gallery's "View board"). */
  function show(wanted) {
    if (!boardChoices().some((c) => c.board === wanted)) return;
    picked = wanted === model.boardOf(model.place) ? null : wanted;
    if (session && !session.stopped) switchTo(wanted);
    render();
    root.scrollIntoView?.({ block: "start" });
  }

  /** Open the board again (it was refused while this page waited in the waiting room). */
  function reopen() {
    if (!link.serverUrl) return;
    session?.stop();
    open();
  }

  /** Close the board's connection for good (the class is over for this page). */
  function stop() {
    if (!session || session.stopped) return;
    cancelGesture();
    session.stop();
    render();
  }

  /** A closed round's board, kept read-only in the gallery. */
  function inGallery() {
    return model.gallery.some((g) => g.board === board) && !model.breakoutBoards.includes(board);
  }

  function canWrite() {
    if (!session || !model.me || session.status.state === "closed" || session.stopped || inGallery()) return false;
    return model.isStaff || (!model.lockedBoards.has(board) && !inOtherRoom());
  }

  /** A student writes only the board of the room they are in (docs/whiteboard.md): `main` is
   * read-only for them while they are in a breakout room. */
  function inOtherRoom() {
    return model.boardOf(model.place) !== board;
  }

  // -- tools ------------------------------------------------------------------------------------------

  function setTool(next) {
    if (next === tool) return;
    cancelGesture();
    closeTextInput(true);
    tool = next;
    if (tool !== "select") selected = null;
    session?.setTool(tool);
    render();
    scheduleDraw();
  }

  function setStyle(change) {
    style = { ...style, ...change };
    // Restyle the selected record, as drawing programs do.
    if (selected && canWrite()) {
      const record = session.get(selected);
      if (record) {
        const restyled = { ...record, ...change };
        if (record.type === "text" && change.width !== undefined) restyled.size = textSizeForWidth(change.width);
        session.write({ put: [restyled] });
        session.endGesture();
      }
    }
    render();
  }

  function gestureEnv() {
    return {
      values: () => session.values(),
      get: (id) => session.get(id),
      write: (change) => session.write(change),
      endGesture: () => session.endGesture(),
      style: { ...style },
      author: model.me?.identity ?? "",
      select: (id) => {
        selected = id;
        scheduleDraw();
      },
      measure,
    };
  }

  function cancelGesture() {
    if (gesture) {
      gesture.cancel();
      gesture = null;
    }
  }

  function undo() {
    if (!canWrite()) return;
    cancelGesture();
    session.undoLast();
  }

  function redo() {
    if (!canWrite()) return;
    session.redoLast();
  }

  function deleteSelected() {
    if (!selected || !canWrite()) return;
    session.write({ remove: [selected] });
    session.endGesture();
    selected = null;
    scheduleDraw();
  }

  function clearBoard() {
    if (clearButton.dataset.armed !== "true") {
      clearButton.dataset.armed = "true";
      clearButton.textContent = "Really clear?";
      clearTimeout(clearArmTimer);
      clearArmTimer = setTimeout(disarmClear, CLEAR_CONFIRM_MS);
      return;
    }
    disarmClear();
    // Kept twice: here for "Undo clear" while this page lives, and as a saved snapshot (listed,
    // restorable after a reload or by other staff).
    const target = board;
    const before = session ? drawOrder(session.values()) : [];
    run(commands.snapshotBoard(target))
      .then(() => run(commands.clearBoard(target)))
      .then((ok) => {
        if (ok && before.length) undoable = { board: target, records: before };
        render();
      });
  }

  function undoClear() {
    if (!session || !undoable || undoable.board !== board) return;
    session.write(restoreWrite(drawOrder(session.values()), undoable.records));
    session.endGesture();
    undoable = null;
    render();
  }

  function disarmClear() {
    clearTimeout(clearArmTimer);
    clearButton.dataset.armed = "false";
    clearButton.textContent = "Clear";
  }

  async function exportBoard() {
    try {
      const blob = await exportPng(ordered);
      const url = URL.createObjectURL(blob);
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      const a = el("a", { href: url, download: `whiteboard-${link.room || "room"}-${board}-${stamp}.png`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      toasts.error("export_failed", err.message, "Export PNG");
    }
  }

  // -- text -------------------------------------------------------------------------------------------

  function openTextInput(p) {
    closeTextInput(true);
    textAt = p;
    const size = textSizeForWidth(style.width);
    const scale = stage.clientWidth / BOARD_WIDTH;
    Object.assign(textInput.style, {
      left: `${(p.x / BOARD_WIDTH) * 100}%`,
      top: `${(p.y / BOARD_HEIGHT) * 100}%`,
      font: `${size * scale}px ${TEXT_FONT}`,
      color: style.color,
    });
    textInput.value = "";
    textInput.hidden = false;
    // After this pointer-down's default focus handling, or focus lands on the stage instead.
    setTimeout(() => textInput.focus(), 0);
  }

  function closeTextInput(commit) {
    if (!textAt) return;
    const at = textAt;
    textAt = null;
    textInput.hidden = true;
    const text = textInput.value.trim();
    textInput.value = "";
    if (!commit || !text || !canWrite()) return;
    const record = {
      id: newRecordId(),
      type: "text",
      x: round(at.x),
      y: round(at.y),
      color: style.color,
      width: style.width,
      author: model.me?.identity ?? "",
      z: nextZ(drawOrder(session.values())),
      text,
      size: textSizeForWidth(style.width),
    };
    session.write({ put: [record] });
    session.endGesture();
  }

  textInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      closeTextInput(true);
      stage.focus();
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      closeTextInput(false);
      stage.focus();
    }
    ev.stopPropagation();
  });
  textInput.addEventListener("blur", () => closeTextInput(true));
  textInput.addEventListener("pointerdown", (ev) => ev.stopPropagation());

  // -- pointer ----------------------------------------------------------------------------------------

  function toBoard(ev) {
    const box = stage.getBoundingClientRect();
    return clampToBoard({
      x: ((ev.clientX - box.left) / box.width) * BOARD_WIDTH,
      y: ((ev.clientY - box.top) / box.height) * BOARD_HEIGHT,
    });
  }

  stage.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || !session) return;
    const p = toBoard(ev);
    session.setCursor(p);
    if (!canWrite()) return;
    if (tool === "text") {
      ev.preventDefault(); // keep the focus for the text input
      openTextInput(p);
      return;
    }
    cancelGesture();
    gesture = startGesture(tool, p, gestureEnv());
    if (gesture) stage.setPointerCapture(ev.pointerId);
  });

  stage.addEventListener("pointermove", (ev) => {
    if (!session) return;
    const p = toBoard(ev);
    session.setCursor(p);
    if (!gesture) return;
    const events = typeof ev.getCoalescedEvents === "function" ? ev.getCoalescedEvents() : [];
    for (const e of events.length ? events : [ev]) gesture.move(toBoard(e));
  });

  const endGesture = (ev) => {
    if (!gesture) return;
    gesture.move(toBoard(ev));
    gesture.end();
    gesture = null;
    if (stage.hasPointerCapture(ev.pointerId)) stage.releasePointerCapture(ev.pointerId);
  };
  stage.addEventListener("pointerup", endGesture);
  stage.addEventListener("pointercancel", () => cancelGesture());
  stage.addEventListener("pointerleave", () => {
    if (!gesture) session?.setCursor(null);
  });

  stage.addEventListener("keydown", (ev) => {
    const mod = ev.ctrlKey || ev.metaKey;
    const key = ev.key.toLowerCase();
    if (mod && key === "z") {
      ev.preventDefault();
      if (ev.shiftKey) redo();
      else undo();
    } else if (mod && key === "y") {
      ev.preventDefault();
      redo();
    } else if (!mod && (ev.key === "Delete" || ev.key === "Backspace")) {
      ev.preventDefault();
      deleteSelected();
    } else if (ev.key === "Escape") {
      selected = null;
      scheduleDraw();
    } else if (!mod && !ev.altKey && TOOL_KEYS[key]) {
      setTool(TOOL_KEYS[key]);
    }
  });

  // -- drawing ----------------------------------------------------------------------------------------

  function scheduleDraw() {
    if (frame !== null) return;
    frame = requestAnimationFrame(draw);
  }

  /** Size a canvas's backing store to its CSS box at the device's pixel ratio. */
  function fit(c) {
    const dpr = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(stage.clientWidth * dpr));
    const height = Math.max(1, Math.round(stage.clientHeight * dpr));
    if (c.width !== width || c.height !== height) {
      c.width = width;
      c.height = height;
    }
    return width / BOARD_WIDTH;
  }

  function draw() {
    frame = null;
    ordered = session ? drawOrder(session.values()) : [];
    if (selected && !ordered.some((r) => r.id === selected)) selected = null;

    const scale = fit(canvas);
    ctx2d.setTransform(1, 0, 0, 1, 0, 0);
    ctx2d.fillStyle = PAPER;
    ctx2d.fillRect(0, 0, canvas.width, canvas.height);
    ctx2d.setTransform(scale, 0, 0, scale, 0, 0);
    drawRecords(ctx2d, ordered);
    canvas.dataset.records = String(ordered.length);

    const overlayScale = fit(overlay);
    overlayCtx.setTransform(1, 0, 0, 1, 0, 0);
    overlayCtx.clearRect(0, 0, overlay.width, overlay.height);
    const current = selected && ordered.find((r) => r.id === selected);
    if (current) {
      overlayCtx.setTransform(overlayScale, 0, 0, overlayScale, 0, 0);
      drawSelection(overlayCtx, current, 1 / overlayScale, measure);
    }
    stage.dataset.selected = selected ?? "";
  }

  new ResizeObserver(() => scheduleDraw()).observe(stage);

  /** clientId -> {x, y, at}: where each cursor last moved, and when (performance.now()). */
  const cursorMoves = new Map();

  function renderCursors() {
    const peers = session ? session.peers().filter((p) => p.cursor) : [];
    const now = performance.now();
    for (const p of peers) {
      const last = cursorMoves.get(p.clientId);
      if (!last || last.x !== p.cursor.x || last.y !== p.cursor.y) cursorMoves.set(p.clientId, { x: p.cursor.x, y: p.cursor.y, at: now });
    }
    for (const id of cursorMoves.keys()) if (!peers.some((p) => p.clientId === id)) cursorMoves.delete(id);
    reconcile(cursors, peers, (p) => p.clientId,
      (p) => el("div", { class: "wb-cursor", testid: "wb-cursor", "data-client": p.clientId },
        el("span", { class: "wb-cursor-dot" }),
        el("span", { class: "wb-cursor-name", testid: "wb-cursor-name" })),
      (node, p) => {
        node.dataset.identity = p.user.identity ?? "";
        node.dataset.tool = p.tool;
        node.style.left = `${(p.cursor.x / BOARD_WIDTH) * 100}%`;
        node.style.top = `${(p.cursor.y / BOARD_HEIGHT) * 100}%`;
        node.style.setProperty("--cursor", /^#[0-9a-fA-F]{6}$/.test(p.user.color ?? "") ? p.user.color : "#7f8c8d");
        node.lastElementChild.textContent = p.user.name;
        node.dataset.flipX = String(p.cursor.x / BOARD_WIDTH > CURSOR_FLIP_X);
        node.dataset.flipY = String(p.cursor.y / BOARD_HEIGHT > CURSOR_FLIP_Y);
        markIdle(node, now);
      });
  }

  function markIdle(node, now) {
    const moved = cursorMoves.get(Number(node.dataset.client))?.at ?? now;
    node.dataset.idle = String(now - moved >= CURSOR_IDLE_MS);
  }

  // Standing still is no awareness change: look twice a second.
  setInterval(() => {
    const now = performance.now();
    for (const node of cursors.children) markIdle(node, now);
  }, 500);

  // -- the panel --------------------------------------------------------------------------------------

  function render() {
    followRoom();
    const locked = model.lockedBoards.has(board);
    const writable = canWrite();
    if (!writable) {
      cancelGesture();
      closeTextInput(false);
    }
    if (session && model.me) {
      session.setUser({ name: model.me.name, identity: model.me.identity, color: colorFor(model.me.identity) });
    }

    // A clear also empties everyone's undo history: nothing cleared comes back by Undo (Undo clear
    // and the snapshot saved before the clear do that).
    const cleared = model.boardClears.get(board);
    if (cleared !== undefined && cleared !== lastClear) {
      lastClear = cleared;
      session?.clearHistory();
      selected = null;
      scheduleDraw();
    }

    const state = session ? session.status.state : "connecting";
    status.dataset.state = state;
    status.dataset.locked = String(locked);
    status.dataset.resets = String(session?.resets ?? 0);
    status.textContent = STATUS_TEXT[state] ?? state;
    lockedBadge.hidden = !locked;
    lockedBadge.textContent = model.isStaff ? "Locked for students" : "Locked: only staff can draw";
    stage.dataset.readonly = String(!writable);
    stage.dataset.board = board;
    renderBoardChoices();
    stage.dataset.tool = tool;

    for (const [name, button] of toolButtons) {
      button.setAttribute("aria-pressed", String(name === tool));
      button.disabled = !writable;
    }
    for (const button of colorButtons) button.setAttribute("aria-pressed", String(button.dataset.color === style.color));
    for (const button of widthButtons) button.setAttribute("aria-pressed", String(Number(button.dataset.width) === style.width));
    undoButton.disabled = !writable || !session?.canUndo;
    redoButton.disabled = !writable || !session?.canRedo;

    staffControls.hidden = !model.isStaff;
    lockButton.disabled = clearButton.disabled = inGallery();
    undoClearButton.hidden = !(undoable && undoable.board === board && canWrite());
    lockButton.setAttribute("aria-pressed", String(locked));
    lockButton.textContent = locked ? "Unlock board" : "Lock board";
    lockButton.title = locked ? "Let students draw again" : "Stop students from drawing";

    snapshots.render();
  }

  let choicesSignature = "";
  function renderBoardChoices() {
    const choices = boardChoices();
    boardSelect.hidden = choices.length < 2;
    const signature = JSON.stringify(choices);
    if (signature !== choicesSignature) {
      choicesSignature = signature;
      replaceChildren(boardSelect, choices.map((c) => el("option", { value: c.board, text: c.label })));
    }
    boardSelect.value = board;
  }

  // A handle for debugging and end-to-end tests; the page itself never reads it. The getters follow
  // the session across a reset (a fresh document after a refused write).
  const handle = {
    /** The board's name (a student's follows their breakout room). */
    get board() { return board; },
    get doc() { return session?.doc ?? null; },
    /** The `records` Y.Array (entries `{key, val}`). */
    get records() { return session?.records ?? null; },
    /** The YKeyValue view over `records`. */
    get kv() { return session?.kv ?? null; },
    get undoManager() { return session?.undo ?? null; },
    /** The valid records as plain objects, in drawing order. */
    list() { return session ? drawOrder(session.values()) : []; },
  };

  return { render, connect, reopen, stop, show, handle };
}
