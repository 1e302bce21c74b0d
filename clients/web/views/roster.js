// Who is here and who wants to speak: the online roster with raised hands marked, the hand queue
// in order, the student's raise/lower button, and the staff's moderation controls (chat, media,
// removal, the breakout room menu: in one actions menu per row; the breakout panel is
// views/breakouts.js). The list is searched by name and filtered, and only the rows in view are
// drawn (fixed-height rows in a scroller), so a class of 2,000 stays fast.

import { el, reconcile, replaceChildren } from "../dom.js";
import { moderationButtons, moderationSignature } from "./moderation.js";
import { disabledReason } from "./reasons.js";

const ROW_PX = 40;
const OVERSCAN = 6;
const FALLBACK_ROWS = 20; // rows drawn while the panel is not on screen (its height reads 0)
const FILTERS = [
  ["", "Everyone"],
  ["hands", "Hands raised"],
  ["students", "Students"],
  ["staff", "Staff"],
  ["muted", "Muted"],
];
const FILTER_TESTS = {
  hands: (p, model) => model.handPosition(p.identity) > 0,
  students: (p) => p.role === "student",
  staff: (p) => p.role !== "student",
  muted: (p, model) => model.isChatMuted(p.identity, p.role) || model.mediaMutedSources(p.identity).length > 0,
};

const SVG = "http://www.w3.org/2000/svg";
/** A raised hand, drawn (no emoji font needed): a palm and four fingers. */
function handIcon() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("class", "hand-icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M4 8V4.5a1 1 0 0 1 2 0V8V3a1 1 0 0 1 2 0v5V3.5a1 1 0 0 1 2 0V8V5a1 1 0 0 1 2 0v5.5A4.5 4.5 0 0 1 7.5 15 "
    + "4.5 4.5 0 0 1 3.3 12.2L1.8 9.4a1 1 0 0 1 1.7-1L4 9.5Z");
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

/**
 * @param {HTMLElement} root  the roster panel
 * @param {{model: import("../state.js").RoomModel, commands: ReturnType<import("../commands.js").createCommands>,
 *          run: (p: Promise<unknown>) => Promise<unknown>, askReason: (title: string, confirm: string) => Promise<string|null>,
 *          handSlot?: HTMLElement}} ctx
 *   handSlot: where the student's raise/lower hand button goes (always in view: the stage's bar);
 *   without it, at the top of the panel.
 */
export function mountRoster(root, ctx) {
  const { model, commands, run, askReason, handSlot } = ctx;
  // Student: one button that reads as the next step.
  const raise = el("button", { type: "button", class: "btn btn-primary", testid: "hand-raise", text: "Raise hand",
    onclick: () => run(commands.raiseHand()) });
  const lower = el("button", { type: "button", class: "btn", testid: "hand-lower", text: "Lower hand",
    onclick: () => run(commands.lowerHand(null)) });
  const handStatus = el("p", { class: "muted-text", testid: "hand-status" });
  const studentControls = el("div", { class: "controls" }, raise, lower, handStatus);

  // Staff: the queue and the room.
  const callNext = el("button", { type: "button", class: "btn btn-primary", testid: "call-next", text: "Call on next",
    onclick: () => run(commands.callNext()) });
  const lowerAll = el("button", { type: "button", class: "btn", testid: "lower-all", text: "Lower all",
    onclick: () => run(commands.lowerAllHands()) });
  const muteAll = el("button", { type: "button", class: "btn toggle", testid: "mute-all",
    onclick: () => run(commands.muteChat(null, !model.chatMutedAll)) });
  const lockRoom = el("button", { type: "button", class: "btn toggle", testid: "lock-room",
    onclick: () => run(commands.lockRoom(!model.locked)) });
  const endSession = el("button", { type: "button", class: "btn btn-danger", testid: "end-session", text: "End session",
    onclick: async () => {
      const reason = await askReason("End the session for everyone?", "End session");
      if (reason !== null) run(commands.endSession(reason));
    } });
  const callNextReason = disabledReason(callNext, "call-next-reason");
  const lowerAllReason = disabledReason(lowerAll, "lower-all-reason");
  const queueControls = el("div", { class: "controls" }, callNext, lowerAll, callNextReason.node);
  const roomControls = el("div", { class: "controls room-controls" }, muteAll, lockRoom, endSession);

  const queue = el("ol", { class: "hand-queue", testid: "hand-queue" });
  const queueEmpty = el("p", { class: "muted-text", text: "No hands raised." });
  const onlineHeading = el("h3", {});
  const search = el("input", { type: "search", class: "roster-search", testid: "roster-search", placeholder: "Search people",
    "aria-label": "Search people by name", oninput: () => render() });
  const filter = el("select", { testid: "roster-filter", "aria-label": "Show", onchange: () => render() },
    ...FILTERS.map(([value, text]) => el("option", { value, text })));
  const list = el("ul", { class: "roster", testid: "roster" });
  // Only the rows in view (and a few either side) are drawn: a class of 2,000 stays fast.
  const spacer = el("div", { class: "roster-spacer" }, list);
  const scroller = el("div", { class: "roster-scroll", testid: "roster-scroll", onscroll: () => drawWindow() }, spacer);
  const noMatch = el("p", { class: "muted-text", testid: "roster-no-match", text: "Nobody matches.", hidden: true });

  (handSlot ?? root).append(studentControls);
  root.append(
    el("h2", {}, "People"),
    el("section", { class: "subsection" }, el("h3", {}, "Raised hands"), queueControls, queue, queueEmpty),
    el("section", { class: "subsection staff-only" }, el("h3", {}, "Room"), roomControls),
    el("section", { class: "subsection roster-online" }, onlineHeading,
      el("div", { class: "roster-tools" }, search, filter), noMatch, scroller),
  );
  root.classList.add("panel-people");

  /** The identity whose actions menu is open, or null. */
  let menuFor = null;
  function closeMenu(focusButton = false) {
    if (menuFor === null) return;
    const was = menuFor;
    menuFor = null;
    render();
    if (focusButton) list.querySelector(`[data-identity="${CSS.escape(was)}"] [data-testid=roster-actions]`)?.focus();
  }
  document.addEventListener("click", (ev) => {
    if (menuFor !== null && !ev.target.closest?.(".roster-menu, [data-testid=roster-actions]")) closeMenu();
  });
  root.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && menuFor !== null) closeMenu(true);
  });

  async function remove(person) {
    const reason = await askReason(`Remove ${person.name} from the class?`, "Remove");
    if (reason !== null) run(commands.removeParticipant(person.identity, reason));
  }

  /** Whether I may remove this person: staff remove students; only the teacher removes assistants. */
  function canRemove(person) {
    if (person.identity === model.me?.identity || person.role === "teacher") return false;
    return person.role === "student" ? model.isStaff : model.me?.role === "teacher";
  }

  function createItem(person) {
    return el("li", { class: "roster-item", testid: "roster-item", "data-identity": person.identity });
  }

  /** The staff's actions for one person, in the menu their row's "⋯" button opens. */
  function actionsOf(person, position, room) {
    const actions = [...moderationButtons(person.identity, "roster", ctx)];
    if (model.isStaff && model.breakouts.length) {
      actions.push(el("label", { class: "roster-menu-field" }, "Room ", breakoutSelect(person, room)));
    }
    if (model.isStaff && person.role === "student") {
      if (position > 0) {
        actions.push(el("button", { type: "button", class: "btn btn-small", testid: "roster-lower", text: "Lower hand",
          onclick: () => run(commands.lowerHand(person.identity)) }));
      }
      const mutedSelf = model.chatMuted.has(person.identity);
      actions.push(el("button", { type: "button", class: "btn btn-small", testid: "roster-mute",
        "aria-pressed": String(mutedSelf), text: mutedSelf ? "Unmute chat" : "Mute chat",
        onclick: () => run(commands.muteChat(person.identity, !mutedSelf)) }));
    }
    if (model.isStaff && canRemove(person)) {
      actions.push(el("button", { type: "button", class: "btn btn-small btn-danger", testid: "roster-remove", text: "Remove",
        onclick: () => { closeMenu(); remove(person); } }));
    }
    for (const action of actions) if (action.tagName === "BUTTON") action.setAttribute("role", "menuitem");
    return actions;
  }

  function updateItem(node, person) {
    const position = model.handPosition(person.identity);
    const muted = model.isChatMuted(person.identity, person.role);
    const isMe = person.identity === model.me?.identity;
    const room = model.breakoutOf.get(person.identity) ?? null;
    const mediaMuted = model.mediaMutedSources(person.identity);
    const asksHelp = model.breakoutHelp.some((h) => h.identity === person.identity);
    const open = menuFor === person.identity;
    const signature = JSON.stringify([asksHelp, person.name, person.role, position, muted, model.chatMuted.has(person.identity), isMe,
      model.me?.role, moderationSignature(model, person.identity), model.breakouts, room, mediaMuted, open, node.dataset.index]);
    if (node.signature === signature) return; // nothing to redraw
    node.signature = signature;
    node.dataset.hand = String(position > 0);
    node.dataset.muted = String(muted);
    node.dataset.room = room ?? "";
    node.dataset.spotlight = String(model.spotlight === person.identity);
    node.dataset.mediaMuted = mediaMuted.join(" ");
    const actions = model.isStaff ? actionsOf(person, position, room) : [];
    const menuId = `roster-menu-${node.dataset.index}`;
    const toggle = actions.length
      ? el("button", { type: "button", class: "btn btn-small roster-actions", testid: "roster-actions", text: "⋯",
          "aria-label": `Actions for ${person.name}`, "aria-haspopup": "menu", "aria-expanded": String(open),
          "aria-controls": open ? menuId : null,
          onclick: () => { menuFor = open ? null : person.identity; render(); } })
      : null;
    replaceChildren(node,
      position > 0
        ? el("span", { class: "roster-hand", testid: "roster-hand", title: `Hand raised, #${position} in the queue`,
            role: "img", "aria-label": `Hand raised, number ${position}` }, handIcon(), el("span", { class: "roster-hand-pos", text: String(position) }))
        : null,
      el("span", { class: "person" },
        el("span", { class: "person-name", text: person.name }),
        isMe ? el("span", { class: "muted-text", text: " (you)" }) : null,
        person.role !== "student" ? el("span", { class: "badge", text: person.role }) : null,
        muted ? el("span", { class: "badge badge-warn", text: "muted" }) : null,
        model.spotlight === person.identity ? el("span", { class: "badge badge-ok", text: "spotlight" }) : null,
        mediaMuted.length ? el("span", { class: "badge badge-warn", testid: "roster-media-muted", text: `${mediaMuted.join(", ")} off` }) : null,
        model.breakouts.length ? el("span", { class: "badge", testid: "roster-room", text: room ?? "main room" }) : null,
        asksHelp ? el("span", { class: "badge badge-warn", testid: "roster-help", text: "asks for help" }) : null,
      ),
      toggle,
      open ? el("div", { class: "roster-menu", id: menuId, role: "menu", testid: "roster-menu", "aria-label": `Actions for ${person.name}` },
        actions) : null,
    );
  }

  /** Staff move a participant between the main room and the open breakout rooms. */
  function breakoutSelect(person, room) {
    const select = el("select", { class: "breakout-select", testid: "roster-breakout", "aria-label": `Room of ${person.name}`,
      onchange: () => run(commands.moveToBreakout(person.identity, select.value || null)).then((ok) => {
        if (!ok) select.value = room ?? "";
      }) },
      el("option", { value: "", text: "Main room" }),
      ...model.breakouts.map((name) => el("option", { value: name, text: name })));
    select.value = room ?? "";
    return select;
  }

  function updateQueueItem(node, hand) {
    const signature = JSON.stringify([hand.name, model.isStaff, hand.room]);
    if (node.signature === signature) return;
    node.signature = signature;
    const actions = model.isStaff
      ? el("button", { type: "button", class: "btn btn-small", testid: "hand-queue-lower", text: "Lower",
          onclick: () => run(commands.lowerHand(hand.identity)) })
      : null;
    node.dataset.room = hand.room ?? "";
    const room = model.isStaff && hand.room ? el("span", { class: "badge badge-room", text: hand.room }) : null;
    replaceChildren(node, el("span", { class: "person-name", text: hand.name }), room, actions);
  }

  function render() {
    const staff = model.isStaff;
    const me = model.me;
    const myPosition = me ? model.handPosition(me.identity) : 0;

    studentControls.hidden = !me || staff;
    raise.hidden = myPosition > 0;
    lower.hidden = myPosition === 0;
    handStatus.textContent = myPosition > 0 ? `Your hand is up (#${myPosition} in the queue).` : "";
    queueControls.hidden = !staff;
    // Call on next calls the first hand of the caller's place (docs/protocol.md, "Breakout rooms").
    const place = me ? model.breakoutOf.get(me.identity) ?? null : null;
    const handsHere = model.hands.some((h) => h.room === place);
    callNextReason.set(handsHere ? "" : model.hands.length ? "No hand is raised in your room." : "No hand is raised.");
    lowerAllReason.set(model.hands.length ? "" : "No hand is raised.");
    lowerAllReason.node.hidden = true; // one line says it for both buttons
    for (const section of root.querySelectorAll(".staff-only")) section.hidden = !staff;
    endSession.hidden = me?.role !== "teacher";

    muteAll.textContent = model.chatMutedAll ? "Unmute students' chat" : "Mute all students' chat";
    muteAll.setAttribute("aria-pressed", String(model.chatMutedAll));
    lockRoom.textContent = model.locked ? "Unlock room" : "Lock room";
    lockRoom.setAttribute("aria-pressed", String(model.locked));

    reconcile(queue, model.hands, (h) => h.identity,
      (h) => el("li", { class: "hand-queue-item", testid: "hand-queue-item", "data-identity": h.identity }),
      updateQueueItem);
    queueEmpty.hidden = model.hands.length > 0;

    onlineHeading.textContent = `Online (${model.online})`;
    shown = matching();
    noMatch.hidden = shown.length > 0 || model.roster.size === 0;
    drawWindow();
  }

  /** The online people the search and the filter let through, in roster order. */
  function matching() {
    const needle = search.value.trim().toLocaleLowerCase();
    const keep = FILTER_TESTS[filter.value] ?? (() => true);
    return model.onlineParticipants().filter((p) =>
      (!needle || p.name.toLocaleLowerCase().includes(needle)) && keep(p, model));
  }

  let shown = [];
  /** Draw the rows in view; the spacer keeps the scroll height of the whole list. */
  function drawWindow() {
    const viewport = scroller.clientHeight || ROW_PX * FALLBACK_ROWS;
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_PX) - OVERSCAN);
    const last = Math.min(shown.length, Math.ceil((scroller.scrollTop + viewport) / ROW_PX) + OVERSCAN);
    spacer.style.height = `${shown.length * ROW_PX}px`;
    list.style.transform = `translateY(${first * ROW_PX}px)`;
    const rows = shown.slice(first, last).map((person, i) => ({ person, index: first + i }));
    reconcile(list, rows, ({ person }) => person.identity, ({ person }) => createItem(person), (node, { person, index }) => {
      node.setAttribute("aria-posinset", String(index + 1));
      node.setAttribute("aria-setsize", String(shown.length));
      node.dataset.index = String(index);
      updateItem(node, person);
    });
  }

  return { render };
}
