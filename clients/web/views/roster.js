// Who is here and who wants to speak: the online roster with raised hands marked, the hand queue
// in order, the student's raise/lower button, and the staff's moderation controls (chat, media,
// removal, the breakout room menu on each row; the breakout panel is views/breakouts.js).

import { el, reconcile, replaceChildren } from "../dom.js";
import { moderationButtons, moderationSignature } from "./moderation.js";
import { disabledReason } from "./reasons.js";

/**
 * @param {HTMLElement} root  the roster panel
 * @param {{model: import("../state.js").RoomModel, commands: ReturnType<import("../commands.js").createCommands>,
 *          run: (p: Promise<unknown>) => Promise<unknown>, askReason: (title: string, confirm: string) => Promise<string|null>}} ctx
 */
export function mountRoster(root, ctx) {
  const { model, commands, run, askReason } = ctx;
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
  const list = el("ul", { class: "roster", testid: "roster" });
  const onlineHeading = el("h3", {});

  root.append(
    el("h2", {}, "People"),
    studentControls,
    el("section", { class: "subsection" }, el("h3", {}, "Raised hands"), queueControls, queue, queueEmpty),
    el("section", { class: "subsection" }, onlineHeading, list),
    el("section", { class: "subsection staff-only" }, el("h3", {}, "Room"), roomControls),
  );

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

  function updateItem(node, person) {
    const position = model.handPosition(person.identity);
    const muted = model.isChatMuted(person.identity, person.role);
    const isMe = person.identity === model.me?.identity;
    const room = model.breakoutOf.get(person.identity) ?? null;
    const mediaMuted = model.mediaMutedSources(person.identity);
    const asksHelp = model.breakoutHelp.some((h) => h.identity === person.identity);
    const signature = JSON.stringify([asksHelp, person.name, person.role, position, muted, model.chatMuted.has(person.identity), isMe,
      model.me?.role, moderationSignature(model, person.identity), model.breakouts, room, mediaMuted]);
    if (node.signature === signature) return; // nothing to redraw
    node.signature = signature;
    node.dataset.hand = String(position > 0);
    node.dataset.muted = String(muted);
    node.dataset.room = room ?? "";
    node.dataset.spotlight = String(model.spotlight === person.identity);
    node.dataset.mediaMuted = mediaMuted.join(" ");
    const actions = [...moderationButtons(person.identity, "roster", ctx)];
    if (model.isStaff && model.breakouts.length) actions.push(breakoutSelect(person, room));
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
        onclick: () => remove(person) }));
    }
    replaceChildren(node,
      el("span", { class: "person" },
        position > 0 ? el("span", { class: "badge badge-warn hand", testid: "roster-hand", title: "Hand raised", text: `hand #${position}` }) : null,
        el("span", { class: "person-name", text: person.name }),
        isMe ? el("span", { class: "muted-text", text: " (you)" }) : null,
        person.role !== "student" ? el("span", { class: "badge", text: person.role }) : null,
        muted ? el("span", { class: "badge badge-warn", text: "muted" }) : null,
        model.spotlight === person.identity ? el("span", { class: "badge badge-ok", text: "spotlight" }) : null,
        mediaMuted.length ? el("span", { class: "badge badge-warn", testid: "roster-media-muted", text: `${mediaMuted.join(", ")} off` }) : null,
        model.breakouts.length ? el("span", { class: "badge", testid: "roster-room", text: room ?? "main room" }) : null,
        asksHelp ? el("span", { class: "badge badge-warn", testid: "roster-help", text: "asks for help" }) : null,
      ),
      actions.length ? el("span", { class: "item-actions" }, actions) : null,
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
    reconcile(list, model.onlineParticipants(), (p) => p.identity, createItem, updateItem);
  }

  return { render };
}
