// Breakout rooms (docs/protocol.md, "Breakout rooms"). Staff: create named rooms, assign people by
// drag-and-drop (or a room menu on each person, for the keyboard) or automatically, keep pairs
// apart or together, save and reuse sets of groups, open with a timer, extend or shorten it, move
// people while the rooms run, visit a room, broadcast, answer the help queue, close, and show the
// rooms' boards afterwards. Students: the room they are in, the countdown with its warning, a help
// request, and a room picker when staff let them choose.

import { el, reconcile, replaceChildren } from "../dom.js";
import { formatDuration } from "../state.js";
import { roomColumn } from "./breakout_columns.js";

const MAX_ROOMS = 50;
const MAX_NAME = 64;
/** Control characters (C0, DEL, C1) are not allowed in a room name. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * The breakout rooms to create from what staff typed: names separated by commas or new lines
 * (a name may hold spaces: "Red team"), or, when none, `count` rooms named room-1, room-2, ...
 * @returns {{rooms: string[], error: string}}
 */
export function breakoutNames(text, count) {
  const names = text.split(/[,\n]+/).map((n) => n.trim()).filter(Boolean);
  if (!names.length) {
    const n = Math.trunc(Number(count));
    if (!(n >= 1 && n <= MAX_ROOMS)) return { rooms: [], error: `Open 1 to ${MAX_ROOMS} rooms` };
    return { rooms: Array.from({ length: n }, (_, i) => `room-${i + 1}`), error: "" };
  }
  const bad = names.find((name) => name.length > MAX_NAME || CONTROL.test(name));
  if (bad) return { rooms: [], error: `"${bad.slice(0, 20)}": a name has at most ${MAX_NAME} characters and no control characters` };
  if (new Set(names).size !== names.length) return { rooms: [], error: "Room names must differ" };
  if (names.length > MAX_ROOMS) return { rooms: [], error: `Open 1 to ${MAX_ROOMS} rooms` };
  return { rooms: names, error: "" };
}

/** A whole number from an input, or null when it is empty; NaN when it is not a whole number. */
function wholeNumber(input) {
  const text = input.value.trim();
  if (!text) return null;
  const n = Number(text);
  return Number.isInteger(n) ? n : NaN;
}

/**
 * @param {HTMLElement} root  the breakout panel
 * @param {{model: import("../state.js").RoomModel, commands: ReturnType<import("../commands.js").createCommands>,
 *          run: (p: Promise<unknown>) => Promise<boolean>, toasts: ReturnType<import("./toasts.js").mountToasts>,
 *          showBoard: (board: string) => void}} ctx
 */
export function mountBreakouts(root, ctx) {
  const { model, commands, run, toasts } = ctx;
  const refuse = (label, message) => toasts.error("check_form", message, label);

  // -- the plan staff build before opening ---------------------------------------------------------

  /** @type {string[]} rooms created but not opened yet */
  let draftRooms = [];
  /** @type {Map<string, string>} identity -> planned room */
  let draft = new Map();
  /** @type {{kind: "apart" | "together", ids: string[]}[]} */
  let constraints = [];
  /** @type {{name: string, rooms: string[], members: Record<string, string>}[]} */
  let savedGroups = [];
  let groupsLoaded = false;
  /** @type {Set<string>} people ticked for a mass move */
  const picked = new Set();

  // -- shared: the countdown, its warning, where I am ------------------------------------------------

  const status = el("p", { class: "muted-text", testid: "breakout-status" });
  const countdown = el("span", { class: "breakout-countdown", testid: "breakout-countdown", role: "timer",
    "aria-label": "Time left in breakout rooms", hidden: true });
  // A live region that exists before it speaks: screen readers announce the warning when it is set.
  // Never hidden, only emptied: a live region must be in the accessibility tree before it speaks.
  const warning = el("p", { class: "notice breakout-warning", testid: "breakout-warning", "aria-live": "assertive" });
  let warned = false;

  // -- student -----------------------------------------------------------------------------------------

  const myRoom = el("p", { class: "breakout-where", testid: "breakout-my-room" });
  const help = el("button", { type: "button", class: "btn", testid: "breakout-help", text: "Ask for help",
    onclick: () => run(commands.askForHelp()) });
  const helpCancel = el("button", { type: "button", class: "btn", testid: "breakout-help-cancel", text: "Withdraw help request",
    onclick: () => run(commands.helpDone(model.me?.identity)) });
  const helpStatus = el("span", { class: "muted-text", testid: "breakout-help-status", role: "status" });
  const chooseList = el("div", { class: "controls breakout-choose", testid: "breakout-choose", role: "group",
    "aria-label": "Choose a breakout room" });
  const chooseNote = el("p", { class: "muted-text" });
  const student = el("div", { class: "breakout-student" }, myRoom,
    el("div", { class: "controls" }, help, helpCancel, helpStatus),
    el("div", { class: "breakout-choose-box" }, chooseNote, chooseList));

  // -- staff: setup ------------------------------------------------------------------------------------

  const count = el("input", { type: "number", class: "breakout-count", testid: "breakout-count", min: 1, max: MAX_ROOMS,
    value: "2", "aria-label": "How many rooms" });
  const names = el("input", { type: "text", testid: "breakout-names", placeholder: "or names: Red team, Blue team",
    "aria-label": "Room names, separated by commas" });
  const create = el("button", { type: "button", class: "btn", testid: "breakout-create", text: "Create rooms",
    onclick: () => {
      const { rooms, error } = breakoutNames(names.value, count.value);
      if (error) return refuse("Create rooms", error);
      draftRooms = rooms;
      for (const [identity, room] of draft) if (!rooms.includes(room)) draft.delete(identity);
      render();
    } });
  const discard = el("button", { type: "button", class: "btn btn-small", testid: "breakout-discard", text: "Start over",
    onclick: () => { draftRooms = []; draft = new Map(); constraints = []; render(); } });
  const auto = el("input", { type: "checkbox", testid: "breakout-auto" });
  const duration = el("input", { type: "number", testid: "breakout-duration", min: 1, max: 1440, placeholder: "no timer",
    "aria-label": "Duration in minutes" });
  const warnS = el("input", { type: "number", testid: "breakout-warn", min: 0, max: 3600, value: "60",
    "aria-label": "Warn this many seconds before the end" });
  const selfSelect = el("input", { type: "checkbox", testid: "breakout-self-select" });
  const cap = el("input", { type: "number", testid: "breakout-cap", min: 1, max: 1000, placeholder: "no cap",
    "aria-label": "Most students per room" });
  const open = el("button", { type: "button", class: "btn btn-primary", testid: "breakout-open", text: "Open breakout rooms",
    onclick: () => openRooms() });

  const pairA = el("select", { testid: "breakout-pair-a", "aria-label": "First student" });
  const pairB = el("select", { testid: "breakout-pair-b", "aria-label": "Second student" });
  const keepApart = el("button", { type: "button", class: "btn btn-small", testid: "breakout-keep-apart", text: "Keep apart",
    onclick: () => addConstraint("apart") });
  const keepTogether = el("button", { type: "button", class: "btn btn-small", testid: "breakout-keep-together", text: "Keep together",
    onclick: () => addConstraint("together") });
  const constraintList = el("ul", { class: "breakout-constraints", testid: "breakout-constraints" });

  const groupsName = el("input", { type: "text", testid: "breakout-groups-name", maxLength: MAX_NAME, placeholder: "e.g. Project teams",
    "aria-label": "Name of this set of groups" });
  const groupsSave = el("button", { type: "button", class: "btn btn-small", testid: "breakout-groups-save", text: "Save groups",
    onclick: () => saveGroups() });
  const groupsList = el("ul", { class: "breakout-groups", testid: "breakout-groups" });
  const groupsEmpty = el("p", { class: "muted-text", text: "No saved groups yet." });

  const setupBoard = el("div", { class: "breakout-board", testid: "breakout-board" });
  const setup = el("div", { class: "breakout-setup", testid: "breakout-setup" },
    el("div", { class: "controls" },
      el("label", { class: "inline-label" }, "Rooms ", count), names, create),
    el("div", { class: "breakout-draft" },
      el("p", { class: "muted-text", text: "Drag people into rooms, or use the menu on each person." }),
      setupBoard,
      el("div", { class: "controls" }, el("label", { class: "inline-label" }, auto, "Assign the others automatically (balanced)"), discard),
      el("div", { class: "controls" }, pairA, pairB, keepApart, keepTogether),
      constraintList),
    el("div", { class: "controls" },
      el("label", { class: "inline-label" }, "Minutes ", duration),
      el("label", { class: "inline-label" }, "Warn at (s) ", warnS),
      el("label", { class: "inline-label" }, selfSelect, "Students choose"),
      el("label", { class: "inline-label" }, "Cap ", cap),
      open));

  // -- staff: running ------------------------------------------------------------------------------------

  const timerMinutes = el("input", { type: "number", testid: "breakout-timer-minutes", min: 1, max: 1440, value: "1",
    "aria-label": "Minutes to add or take away" });
  const extend = el("button", { type: "button", class: "btn btn-small", testid: "breakout-extend", text: "Extend",
    onclick: () => changeTimer(+1) });
  const shorten = el("button", { type: "button", class: "btn btn-small", testid: "breakout-shorten", text: "Shorten",
    onclick: () => changeTimer(-1) });
  const timerClear = el("button", { type: "button", class: "btn btn-small", testid: "breakout-timer-clear", text: "No timer",
    onclick: () => run(commands.setBreakoutTimer(null)) });
  const autoAssign = el("button", { type: "button", class: "btn btn-small", testid: "breakout-auto-assign",
    text: "Assign main-room students automatically",
    onclick: () => run(commands.autoAssignBreakouts(autoConstraints() ?? { apart: [], together: [] })) });
  const massRoom = el("select", { testid: "breakout-mass-room", "aria-label": "Move the ticked people to" });
  const massMove = el("button", { type: "button", class: "btn btn-small", testid: "breakout-mass-move", text: "Move ticked",
    onclick: () => moveTicked() });
  const broadcastInput = el("input", { type: "text", testid: "breakout-broadcast-input", maxLength: 2000,
    placeholder: "A message to every room", "aria-label": "Broadcast message" });
  const broadcastSend = el("button", { type: "button", class: "btn btn-small", testid: "breakout-broadcast-send", text: "Broadcast",
    onclick: () => {
      const text = broadcastInput.value.trim();
      if (!text) return;
      const sent = broadcastInput.value;
      run(commands.broadcastToBreakouts(text)).then((ok) => { if (ok && broadcastInput.value === sent) broadcastInput.value = ""; });
    } });
  broadcastInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.isComposing) { ev.preventDefault(); broadcastSend.click(); }
  });
  const helpQueue = el("ol", { class: "breakout-help-queue", testid: "breakout-help-queue", "aria-label": "Help requests" });
  const helpEmpty = el("p", { class: "muted-text", text: "Nobody asked for help." });
  const close = el("button", { type: "button", class: "btn btn-danger", testid: "breakout-close", text: "Close breakout rooms",
    onclick: () => run(commands.closeBreakouts()) });
  const liveBoard = el("div", { class: "breakout-board", testid: "breakout-live-board" });
  const running = el("div", { class: "breakout-running", testid: "breakout-running" },
    el("div", { class: "controls" }, timerMinutes, el("span", { class: "muted-text", text: "min" }), extend, shorten, timerClear),
    liveBoard,
    el("div", { class: "controls" }, autoAssign, massRoom, massMove),
    el("div", { class: "controls" }, broadcastInput, broadcastSend),
    el("section", { class: "subsection" }, el("h3", {}, "Help requests"), helpQueue, helpEmpty),
    el("div", { class: "controls" }, close));

  // -- gallery -----------------------------------------------------------------------------------------

  const shareBoards = el("button", { type: "button", class: "btn btn-small toggle", testid: "breakout-share-boards",
    "aria-pressed": "false", onclick: () => run(commands.shareBreakoutBoards(!model.galleryShared)) });
  const galleryList = el("ul", { class: "breakout-gallery-list" });
  const gallery = el("section", { class: "subsection", testid: "breakout-gallery" },
    el("h3", {}, "Boards of the last breakout rooms"), galleryList, shareBoards);

  const groupsSection = el("section", { class: "subsection", testid: "breakout-groups-panel" },
    el("h3", {}, "Saved groups"),
    el("div", { class: "controls" }, groupsName, groupsSave),
    groupsEmpty, groupsList);

  root.append(
    el("div", { class: "breakout-head" }, el("h2", {}, "Breakout rooms"), countdown),
    warning, status, student, setup, running, groupsSection, gallery);

  // -- actions -----------------------------------------------------------------------------------------

  function students() {
    return [...model.people.values()]
      .filter((p) => p.role === "student" && !model.removed.has(p.identity) && (model.roster.has(p.identity) || draft.has(p.identity)))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  function autoConstraints() {
    if (!constraints.length) return null;
    return {
      apart: constraints.filter((c) => c.kind === "apart").map((c) => c.ids),
      together: constraints.filter((c) => c.kind === "together").map((c) => c.ids),
    };
  }

  function addConstraint(kind) {
    const a = pairA.value;
    const b = pairB.value;
    if (!a || !b || a === b) return refuse(kind === "apart" ? "Keep apart" : "Keep together", "Pick two different students");
    constraints = constraints.filter((c) => !(c.ids.includes(a) && c.ids.includes(b)));
    constraints.push({ kind, ids: [a, b] });
    render();
  }

  function openRooms() {
    let rooms = draftRooms;
    if (!rooms.length) {
      const typed = breakoutNames(names.value, count.value);
      if (typed.error) return refuse("Open breakout rooms", typed.error);
      rooms = typed.rooms;
    }
    const minutes = wholeNumber(duration);
    const warn = wholeNumber(warnS);
    const capValue = wholeNumber(cap);
    if (Number.isNaN(minutes) || (minutes !== null && (minutes < 1 || minutes > 1440))) {
      return refuse("Open breakout rooms", "Minutes: 1 to 1440, or empty for no timer");
    }
    if (Number.isNaN(warn) || (warn !== null && (warn < 0 || warn > 3600))) return refuse("Open breakout rooms", "Warn at: 0 to 3600 s");
    if (Number.isNaN(capValue) || (capValue !== null && (capValue < 1 || capValue > 1000))) return refuse("Open breakout rooms", "Cap: 1 to 1000");
    const members = draft.size ? Object.fromEntries(draft) : null;
    const options = {
      members,
      auto: auto.checked && !selfSelect.checked ? autoConstraints() ?? { apart: [], together: [] } : null,
      duration_s: minutes === null ? null : minutes * 60,
      warn_s: warn,
      self_select: selfSelect.checked,
      cap: selfSelect.checked ? capValue : null,
    };
    run(commands.openBreakouts(rooms, options)).then((ok) => {
      if (!ok) return;
      names.value = "";
      draftRooms = [];
      draft = new Map();
      render();
    });
  }

  function changeTimer(sign) {
    const minutes = wholeNumber(timerMinutes);
    if (!minutes || minutes < 1) return refuse(sign > 0 ? "Extend" : "Shorten", "Minutes: a whole number from 1");
    const left = model.breakoutRemainingMs();
    const base = left === null ? 0 : Math.ceil(left / 1000);
    const next = Math.min(86_400, base + sign * minutes * 60);
    if (next < 1) return refuse("Shorten", "That would end the rooms now: use Close instead");
    run(commands.setBreakoutTimer(next));
  }

  /** Move someone: into the plan before opening, on the server while the rooms run. */
  function moveTo(identity, room) {
    if (!model.breakouts.length) {
      if (room) draft.set(identity, room);
      else draft.delete(identity);
      render();
      return;
    }
    if ((model.breakoutOf.get(identity) ?? null) === (room || null)) return;
    run(commands.moveToBreakout(identity, room || null));
  }

  function moveTicked() {
    if (!picked.size) return refuse("Move ticked", "Tick the people to move first");
    const room = massRoom.value || null;
    const members = Object.fromEntries([...picked].map((identity) => [identity, room]));
    run(commands.assignBreakouts(members)).then((ok) => { if (ok) { picked.clear(); render(); } });
  }

  async function refreshGroups() {
    groupsLoaded = true;
    try {
      savedGroups = await commands.listGroups();
    } catch (err) {
      toasts.error(err.code ?? "error", err.message, err.label, err.command);
    }
    render();
  }

  function saveGroups() {
    const name = groupsName.value.trim();
    if (!name) return refuse("Save groups", "Give the set of groups a name");
    const open = model.breakouts.length > 0;
    const rooms = open ? model.breakouts : draftRooms;
    if (!rooms.length) return refuse("Save groups", "Create rooms first");
    const members = {};
    for (const [identity, room] of open ? model.breakoutOf : draft) {
      if (model.roleOf(identity) === "student") members[identity] = room;
    }
    run(commands.saveGroups(name, rooms, members)).then((ok) => {
      if (ok) { groupsName.value = ""; refreshGroups(); }
    });
  }

  function loadGroups(set) {
    draftRooms = [...set.rooms];
    draft = new Map(Object.entries(set.members ?? {}).filter(([identity, room]) =>
      set.rooms.includes(room) && model.people.has(identity) && !model.removed.has(identity)));
    render();
  }

  // -- drawing -----------------------------------------------------------------------------------------

  /** One room's column of chips: the plan's (before opening) or the running round's. */
  function column(room, people, { label, running: live }) {
    const actions = [];
    if (live && room) {
      const here = model.place === room;
      actions.push(el("button", { type: "button", class: "btn btn-small", testid: here ? "breakout-leave" : "breakout-visit",
        "data-room": room, text: here ? "Leave" : "Visit", title: here ? "Back to the main room" : `Join ${room} yourself`,
        onclick: () => run(commands.moveToBreakout(model.me.identity, here ? null : room)) }));
      actions.push(el("button", { type: "button", class: "btn btn-small", testid: "breakout-view-board", "data-room": room,
        text: "Board", title: `Show ${room}'s whiteboard`, onclick: () => ctx.showBoard(model.boardOf(room)) }));
    }
    return roomColumn({ room, label, people, actions, rooms: live ? model.breakouts : draftRooms,
      online: (identity) => model.roster.has(identity), picked: live ? picked : null, onMove: moveTo });
  }

  /** The columns' content changes rarely; redraw them only when what they show changed. */
  let setupSignature = "";
  let liveSignature = "";

  function renderSetup() {
    const people = students();
    const signature = JSON.stringify([draftRooms, [...draft], people.map((p) => [p.identity, p.name, model.roster.has(p.identity)]), constraints]);
    if (signature === setupSignature) return;
    setupSignature = signature;
    const columns = [column(null, people.filter((p) => !draft.has(p.identity)), { label: "Not assigned", running: false })];
    for (const room of draftRooms) {
      columns.push(column(room, people.filter((p) => draft.get(p.identity) === room), { label: room, running: false }));
    }
    replaceChildren(setupBoard, draftRooms.length ? el("ul", { class: "breakout-columns" }, columns) : null);
    setupBoard.hidden = !draftRooms.length;
    discard.hidden = !draftRooms.length;
    const pairOptions = () => [el("option", { value: "", text: "Student…" }),
      ...people.map((p) => el("option", { value: p.identity, text: p.name }))];
    const [a, b] = [pairA.value, pairB.value];
    replaceChildren(pairA, pairOptions());
    replaceChildren(pairB, pairOptions());
    pairA.value = a;
    pairB.value = b;
    replaceChildren(constraintList, constraints.map((c, i) => el("li", { testid: "breakout-constraint", "data-kind": c.kind },
      `${c.kind === "apart" ? "Apart" : "Together"}: ${c.ids.map((id) => model.nameOf(id)).join(" + ")} `,
      el("button", { type: "button", class: "btn btn-small", text: "Remove", "aria-label": "Remove this rule",
        onclick: () => { constraints.splice(i, 1); render(); } }))));
  }

  function renderRunning() {
    const everyone = new Map();
    for (const p of model.onlineParticipants()) everyone.set(p.identity, p);
    for (const identity of model.breakoutOf.keys()) {
      if (!everyone.has(identity) && !model.removed.has(identity)) everyone.set(identity, model.people.get(identity) ?? { identity, name: identity, role: "student" });
    }
    const people = [...everyone.values()].filter((p) => p.role === "student" || model.breakoutOf.has(p.identity) || p.identity === model.me?.identity);
    for (const identity of [...picked]) if (!everyone.has(identity)) picked.delete(identity);
    const signature = JSON.stringify([model.breakouts, [...model.breakoutOf], people.map((p) => [p.identity, p.name, p.role, model.roster.has(p.identity)]), model.place]);
    if (signature !== liveSignature) {
      liveSignature = signature;
      const columns = [column(null, people.filter((p) => !model.breakoutOf.has(p.identity)), { label: "Main room", running: true })];
      for (const room of model.breakouts) {
        columns.push(column(room, people.filter((p) => model.breakoutOf.get(p.identity) === room), { label: room, running: true }));
      }
      replaceChildren(liveBoard, el("ul", { class: "breakout-columns" }, columns));
      const current = massRoom.value;
      replaceChildren(massRoom, el("option", { value: "", text: "Main room" }), model.breakouts.map((r) => el("option", { value: r, text: r })));
      massRoom.value = model.breakouts.includes(current) ? current : "";
    }
    reconcile(helpQueue, model.breakoutHelp, (h) => h.identity,
      (h) => el("li", { class: "breakout-help-item", testid: "breakout-help-item", "data-identity": h.identity }),
      (node, h) => {
        const signature = JSON.stringify([h.room, model.nameOf(h.identity), model.place]);
        if (node.signature === signature) return;
        node.signature = signature;
        node.dataset.room = h.room;
        replaceChildren(node,
          el("span", { class: "person-name", text: model.nameOf(h.identity) }), ` in ${h.room} `,
          el("button", { type: "button", class: "btn btn-small", testid: "breakout-help-visit", text: model.place === h.room ? "You are there" : "Go there",
            disabled: model.place === h.room, onclick: () => run(commands.moveToBreakout(model.me.identity, h.room)) }),
          el("button", { type: "button", class: "btn btn-small", testid: "breakout-help-done", text: "Done",
            onclick: () => run(commands.helpDone(h.identity)) }));
      });
    helpEmpty.hidden = model.breakoutHelp.length > 0;
  }

  function renderStudent() {
    const place = model.place;
    myRoom.dataset.room = place ?? "";
    myRoom.textContent = place ? `You are in breakout room ${place}` : "You are in the main room";
    const asked = model.breakoutHelp.some((h) => h.identity === model.me?.identity);
    help.hidden = asked || place === null;
    helpCancel.hidden = !asked;
    helpStatus.textContent = asked ? "Help requested: the staff have been told." : "";

    const choosing = model.breakoutSelfSelect;
    chooseList.parentElement.hidden = !choosing;
    if (!choosing) return;
    const counts = model.breakoutCounts();
    const cap = model.breakoutCap;
    chooseNote.textContent = cap ? `Pick a room (at most ${cap} students each).` : "Pick a room.";
    const choices = [{ room: null, label: "Main room", full: false },
      ...model.breakouts.map((room) => {
        const n = counts.get(room) ?? 0;
        return { room, label: cap ? `${room} (${n}/${cap})` : `${room} (${n})`, full: cap !== null && n >= cap && place !== room };
      })];
    reconcile(chooseList, choices, (c) => c.room ?? "",
      (c) => el("button", { type: "button", class: "btn btn-small", testid: "breakout-choose-room", "data-room": c.room ?? "",
        onclick: () => run(commands.chooseBreakout(c.room)) }),
      (node, c) => {
        node.textContent = c.label;
        node.disabled = c.full;
        node.title = c.full ? "This room is full" : "";
        node.setAttribute("aria-pressed", String(place === c.room));
      });
  }

  function renderGallery() {
    const visible = model.galleryVisible;
    gallery.hidden = !visible;
    if (!visible) return;
    reconcile(galleryList, model.gallery, (g) => g.board,
      (g) => el("li", { class: "breakout-gallery-item", testid: "breakout-gallery-item", "data-board": g.board, "data-room": g.room },
        el("span", { text: `${g.room} ` }),
        el("button", { type: "button", class: "btn btn-small", testid: "breakout-gallery-view", text: "View board",
          onclick: () => ctx.showBoard(g.board) })),
      () => {});
    shareBoards.hidden = !model.isStaff;
    shareBoards.setAttribute("aria-pressed", String(model.galleryShared));
    shareBoards.textContent = model.galleryShared ? "Stop showing students" : "Show students";
  }

  function renderGroups() {
    reconcile(groupsList, savedGroups, (g) => g.name,
      (g) => el("li", { class: "breakout-groups-item", testid: "breakout-groups-item", "data-name": g.name }),
      (node, g) => {
        const signature = JSON.stringify(g);
        if (node.signature === signature) return;
        node.signature = signature;
        replaceChildren(node,
          el("span", { class: "person-name", text: g.name }),
          el("span", { class: "muted-text", text: ` ${g.rooms.length} rooms, ${Object.keys(g.members ?? {}).length} people ` }),
          el("button", { type: "button", class: "btn btn-small", testid: "breakout-groups-load", text: "Use",
            title: "Put these rooms and groups into the plan", onclick: () => loadGroups(g) }),
          el("button", { type: "button", class: "btn btn-small btn-danger", testid: "breakout-groups-delete", text: "Delete",
            onclick: () => run(commands.deleteGroups(g.name)).then((ok) => { if (ok) refreshGroups(); }) }));
      });
    groupsEmpty.hidden = savedGroups.length > 0;
  }

  /** The countdown, once a second (app.js ticks it) and on every render. */
  function tick() {
    const left = model.breakoutRemainingMs();
    countdown.hidden = left === null;
    if (left === null) {
      warning.textContent = "";
      warned = false;
      return;
    }
    const inWarning = model.breakoutWarning();
    countdown.textContent = `${formatDuration(left)} left`;
    countdown.dataset.remainingS = String(Math.ceil(left / 1000));
    countdown.dataset.warning = String(inWarning);
    // Spoken once when the warning starts (a live region that changed every second would talk
    // over everything); the countdown beside it keeps counting.
    if (inWarning && !warned) warning.textContent = `Breakout rooms close in ${formatDuration(left)}`;
    if (!inWarning) warning.textContent = "";
    warned = inWarning;
  }

  function render() {
    const me = model.me;
    const staff = model.isStaff;
    const isOpen = model.breakouts.length > 0;
    root.hidden = !me || (!staff && !isOpen && !model.galleryVisible);
    root.dataset.open = String(isOpen);
    root.dataset.viewer = staff ? "staff" : "student";
    if (root.hidden) return;
    if (staff && !groupsLoaded) refreshGroups();

    status.textContent = isOpen
      ? `Round ${model.breakoutRound}: ${model.breakouts.join(", ")}${model.breakoutSelfSelect ? " (students choose)" : ""}`
      : "No breakout rooms open.";
    student.hidden = staff || !isOpen;
    setup.hidden = !staff || isOpen;
    running.hidden = !staff || !isOpen;
    groupsSection.hidden = !staff;
    // Only one board of chips exists at a time: the plan before opening, the rooms while open.
    if (isOpen || !staff) {
      setupSignature = "";
      replaceChildren(setupBoard);
    }
    if (!isOpen || !staff) {
      liveSignature = "";
      replaceChildren(liveBoard);
      picked.clear();
    }
    if (staff && isOpen) renderRunning();
    else if (staff) renderSetup();
    if (!staff && isOpen) renderStudent();
    if (staff) renderGroups();
    renderGallery();
    tick();
  }

  return { render, tick };
}
