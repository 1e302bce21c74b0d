// Chat: the room-wide conversation and the private threads between a student and the staff, in one
// log with private messages labelled; the "to" selector picks where the next message goes. While
// breakout rooms run, a student sees the conversation of the room they are in (the server sends
// only that); staff see every room's, each message labelled with its room, with a room filter,
// and may post into any open room.

import { el, reconcile, replaceChildren } from "../dom.js";
import { roomFilter } from "./room_filter.js";

const MAX_CHARS = 2000;
/** Messages written while reconnecting wait at most this many; beyond, the input keeps the text. */
const MAX_QUEUED = 20;

function clock(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/**
 * @param {HTMLElement} root  the chat panel
 * @param {{model: import("../state.js").RoomModel, commands: ReturnType<import("../commands.js").createCommands>,
 *          run: (p: Promise<unknown>) => Promise<unknown>, toasts: ReturnType<import("./toasts.js").mountToasts>,
 *          link: {live: () => boolean, onLive: (listener: () => void) => void}}} ctx
 *   link: whether the connection is live now, and a call each time it becomes live again. While it
 *   is not, messages queue (shown as waiting) and go out in order once it is.
 */
export function mountChat(root, { model, commands, run, toasts, link }) {
  const log = el("ol", { class: "chat-log", testid: "chat-log", role: "log", "aria-live": "polite" });
  const empty = el("p", { class: "muted-text empty", text: "No messages yet." });
  const queuedLog = el("ol", { class: "chat-log chat-queued-log", testid: "chat-queued-log" });
  const mutedNotice = el("p", { class: "notice", testid: "chat-muted", hidden: true });
  const to = el("select", { testid: "chat-to", "aria-label": "Send to" });
  const input = el("textarea", { testid: "chat-input", rows: 2, maxLength: MAX_CHARS, placeholder: "Write a message…",
    "aria-label": "Message" });
  const send = el("button", { type: "submit", class: "btn btn-primary", testid: "chat-send", text: "Send" });
  const rooms = roomFilter(model, "chat");
  const where = el("span", { class: "badge", testid: "chat-where", hidden: true });
  const form = el("form", { class: "chat-form" },
    el("div", { class: "chat-form-row" }, el("label", { class: "inline-label" }, "To ", to), rooms.target),
    input, el("div", { class: "form-actions" }, send));

  root.append(el("div", { class: "panel-head" }, el("h2", {}, "Chat"), where, rooms.filter),
    el("div", { class: "chat-scroll" }, empty, log, queuedLog), mutedNotice, form);
  rooms.filter.addEventListener("change", () => render());
  const scroller = root.querySelector(".chat-scroll");

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const sent = input.value;
    const recipient = to.value || null;
    if (!link.live()) {
      if (queued.length >= MAX_QUEUED) {
        toasts.info(`Reconnecting: ${MAX_QUEUED} messages are already waiting to be sent.`, "chat-queue-full");
        return;
      }
      queued.push({ text, recipient, room: recipient ? null : rooms.targetRoom(), key: ++queuedKeys });
      input.value = "";
      if (recipient) to.value = "";
      drawQueued();
      return;
    }
    run(commands.sendChat(text, recipient, recipient ? null : rooms.targetRoom())).then((ok) => {
      if (ok && input.value === sent) input.value = "";
      // A private message is a one-off: the next one goes to everyone again unless picked anew,
      // so a reply meant for one student never lands in the room by habit, nor the reverse.
      if (ok && recipient && to.value === recipient) to.value = "";
    });
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });

  // Written while the connection was down: sent in order once it is live again. A message that
  // was never sent (`not_connected`: the link dropped again) waits for the next time; any other
  // refusal is shown, as for a message sent live.
  const queued = [];
  let queuedKeys = 0;
  let flushing = false;
  link.onLive(() => flush());

  async function flush() {
    if (flushing) return;
    flushing = true;
    try {
      while (queued.length && link.live()) {
        const next = queued[0];
        const failed = await commands.sendChat(next.text, next.recipient, next.room).then(() => null, (err) => err);
        if (failed?.code === "not_connected") break;
        queued.shift();
        if (failed) toasts.error(failed.code ?? "error", failed.message, failed.label);
        drawQueued();
      }
    } finally {
      flushing = false;
    }
  }

  function drawQueued() {
    reconcile(queuedLog, queued, (m) => m.key,
      (m) => el("li", { class: `chat-message is-mine is-queued${m.recipient ? " is-private" : ""}`, testid: "chat-queued" },
        el("div", { class: "chat-meta" },
          el("span", { class: "chat-name", text: model.me?.name ?? "" }),
          m.recipient ? el("span", { class: "chat-private", text: "private" }) : null,
          el("span", { class: "chat-time", text: "waiting to send…" })),
        el("p", { class: "chat-text", text: m.text })),
      () => {});
    empty.hidden = model.chat.length > 0 || queued.length > 0;
    scroller.scrollTop = scroller.scrollHeight;
  }

  /** Private messages read "private · <student>" for staff; clicking the label replies there. */
  function privateLabel(message) {
    if (!message.thread) return null;
    if (!model.isStaff) return el("span", { class: "chat-private", text: "private · with staff" });
    const name = model.nameOf(message.thread);
    return el("button", { type: "button", class: "chat-private link", testid: "chat-thread-label",
      title: `Reply privately to ${name}`, text: `private · ${name}`,
      onclick: () => { selectRecipient(message.thread); input.focus(); } });
  }

  function createMessage(message) {
    const mine = message.from === model.me?.identity;
    return el("li", { class: `chat-message${message.thread ? " is-private" : ""}${mine ? " is-mine" : ""}`,
      testid: "chat-message", "data-id": message.id, "data-from": message.from, "data-thread": message.thread ?? "",
      "data-room": message.room ?? "", "data-broadcast": String(Boolean(message.broadcast)) },
      el("div", { class: "chat-meta" },
        el("span", { class: "chat-name", text: message.name }),
        message.broadcast ? el("span", { class: "badge badge-ok", testid: "chat-broadcast", text: "to every room" }) : null,
        model.isStaff && message.room ? el("span", { class: "badge badge-room", testid: "chat-room", text: message.room }) : null,
        message.role !== "student" ? el("span", { class: "badge", text: message.role }) : null,
        privateLabel(message),
        el("time", { class: "chat-time", dateTime: new Date(message.ts).toISOString(), text: clock(message.ts) }),
      ),
      el("p", { class: "chat-text", testid: "chat-text", text: message.text }));
  }

  let recipientsSignature = "";
  function renderRecipients() {
    const options = model.isStaff
      ? [{ value: "", label: "Everyone" }, ...model.privateThreadStudents().map((s) => ({ value: s.identity, label: `Private: ${s.name}` }))]
      : [{ value: "", label: "Everyone" }, { value: "staff", label: "Staff (private)" }];
    const signature = JSON.stringify(options);
    if (signature === recipientsSignature) return;
    recipientsSignature = signature;
    const current = to.value;
    replaceChildren(to, options.map((o) => el("option", { value: o.value, text: o.label })));
    to.value = options.some((o) => o.value === current) ? current : "";
  }

  function selectRecipient(identity) {
    renderRecipients();
    if ([...to.options].some((o) => o.value === identity)) to.value = identity;
  }

  function render() {
    const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    const before = log.lastElementChild;
    rooms.render();
    const shown = model.chat.filter((m) => m.thread || m.broadcast || rooms.shows(m.room));
    reconcile(log, shown, (m) => `${model.epoch}:${m.id}`, createMessage, () => {});
    empty.hidden = shown.length > 0 || queued.length > 0;
    const newest = shown[shown.length - 1];
    if (log.lastElementChild !== before && (nearBottom || newest?.from === model.me?.identity)) {
      scroller.scrollTop = scroller.scrollHeight;
    }

    renderRecipients();
    where.hidden = !model.breakouts.length || model.isStaff;
    where.textContent = model.place ? `Room: ${model.place}` : "Main room";
    const me = model.me;
    const muted = me ? model.isChatMuted(me.identity, me.role) : false;
    mutedNotice.hidden = !muted;
    mutedNotice.textContent = (model.chatMuted.has(me?.identity) ? "The staff muted your chat." : "The staff muted students' chat.")
      + " You can still write to the staff privately.";
    root.dataset.muted = String(muted);
  }

  return { render };
}
