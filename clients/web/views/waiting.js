// The waiting room (docs/protocol.md, "Waiting room"). Staff: the "ask to join" switch, "N waiting"
// and who waits, with Let in / Turn away (and Let everyone in). A student whose join waits: a
// notice until staff let them in (the welcome then arrives on the same connection).

import { el, replaceChildren } from "../dom.js";

/**
 * @param {HTMLElement} panel  the people panel; the staff's controls go first in it
 * @param {HTMLElement} header the page header; a waiting student's notice goes after it
 * @param {{model: import("../state.js").RoomModel,
 *   commands: ReturnType<import("../commands.js").createCommands>, run: (p: Promise<unknown>) => Promise<unknown>}} ctx
 */
export function mountWaiting(panel, header, { model, commands, run }) {
  const toggle = el("button", { type: "button", class: "btn btn-small toggle", testid: "waiting-room-toggle",
    "aria-pressed": "false", onclick: () => run(commands.setWaitingRoom(!model.waitingRoom)) });
  const count = el("span", { class: "badge badge-warn", testid: "waiting-count", role: "status", hidden: true });
  const admitAll = el("button", { type: "button", class: "btn btn-small", testid: "waiting-admit-all", text: "Let everyone in",
    hidden: true, onclick: () => run(commands.admitWaiting(null)) });
  const revoke = el("button", { type: "button", class: "btn btn-small", testid: "invite-revoke", text: "Close the class link",
    title: "Nobody new can join through the shared class link; those already in can come back",
    hidden: true, onclick: () => run(commands.revokeInvite(model.inviteId)) });
  const list = el("ul", { class: "waiting-list", testid: "waiting-list", "aria-label": "Waiting to join" });
  // Who waits is a section of its own under the switch, its rows laid out like the roster's.
  const heading = el("h3", { class: "waiting-heading", testid: "waiting-heading" });
  const section = el("section", { class: "subsection waiting-section", testid: "waiting-section", hidden: true },
    el("div", { class: "waiting-head" }, heading, admitAll), list);
  const staffBox = el("div", { class: "waiting-room", testid: "waiting-room", hidden: true },
    el("div", { class: "form-actions" }, toggle, count, revoke), section);
  panel.prepend(staffBox);

  const notice = el("div", { class: "banner", testid: "waiting-screen", role: "status", hidden: true });
  header.after(notice);

  let waitingPosition = 0;

  function render() {
    staffBox.hidden = !model.isStaff;
    if (model.isStaff) {
      toggle.setAttribute("aria-pressed", String(model.waitingRoom));
      toggle.textContent = model.waitingRoom ? "Ask to join: on" : "Ask to join: off";
      toggle.title = model.waitingRoom
        ? "New students wait until you let them in"
        : "Turn on to let new students in one by one";
      const n = model.waiting.length;
      count.hidden = n === 0;
      count.textContent = `${n} waiting`;
      admitAll.hidden = n < 2;
      section.hidden = n === 0;
      heading.textContent = `Waiting (${n})`;
      revoke.hidden = !model.inviteId;
      revoke.disabled = model.inviteRevoked;
      revoke.textContent = model.inviteRevoked ? "Class link closed" : "Close the class link";
      replaceChildren(list, model.waiting.map(({ identity, name }) =>
        el("li", { class: "waiting-entry", testid: "waiting-entry", "data-identity": identity },
          el("span", { class: "waiting-name", text: name, title: name }),
          el("button", { type: "button", class: "btn btn-small btn-primary", testid: "waiting-admit", text: "Let in",
            "aria-label": `Let ${name} in`, onclick: () => run(commands.admitWaiting(identity)) }),
          el("button", { type: "button", class: "btn btn-small", testid: "waiting-deny", text: "Turn away",
            "aria-label": `Turn ${name} away`, onclick: () => run(commands.denyWaiting(identity)) }))));
    }
    notice.hidden = waitingPosition === 0;
    const where = model.className || "the class";
    notice.textContent = `You are in the waiting room of ${where}. The teacher will let you in soon; keep this page open.`;
  }

  return {
    render,
    /** @param {import("../protocol.js").ConnectionStatus} status */
    setStatus(status) {
      waitingPosition = status.state === "waiting" ? Math.max(1, status.position ?? 1) : 0;
      render();
    },
  };
}
