// Q&A: ask a question, upvote others', and (staff) answer, dismiss or pin. The list keeps the
// protocol's order, re-sorted as votes and states change. A student in a breakout room sees that
// room's questions; staff see every room's, labelled, with a room filter, and may ask into a room.

import { el, reconcile, replaceChildren } from "../dom.js";
import { roomFilter } from "./room_filter.js";

const MAX_CHARS = 500;

/**
 * @param {HTMLElement} root  the Q&A panel
 * @param {{model: import("../state.js").RoomModel, commands: ReturnType<import("../commands.js").createCommands>,
 *          run: (p: Promise<unknown>) => Promise<unknown>}} ctx
 */
export function mountQA(root, { model, commands, run }) {
  const input = el("textarea", { testid: "qa-input", rows: 2, maxLength: MAX_CHARS, placeholder: "Ask a question…",
    "aria-label": "Question" });
  const counter = el("span", { class: "muted-text counter", text: `0/${MAX_CHARS}` });
  const ask = el("button", { type: "submit", class: "btn btn-primary", testid: "qa-ask", text: "Ask" });
  const rooms = roomFilter(model, "qa");
  const form = el("form", { class: "qa-form" }, input, el("div", { class: "form-actions" }, counter, rooms.target, ask));
  const list = el("ol", { class: "qa-list", testid: "qa-list" });
  const empty = el("p", { class: "muted-text empty", text: "No questions yet." });

  root.append(el("div", { class: "panel-head" }, el("h2", {}, "Questions"), rooms.filter), form, empty, list);
  rooms.filter.addEventListener("change", () => render());

  input.addEventListener("input", () => {
    counter.textContent = `${input.value.length}/${MAX_CHARS}`;
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const sent = input.value;
    run(commands.askQuestion(text, rooms.targetRoom())).then((ok) => {
      if (ok && input.value === sent) {
        input.value = "";
        counter.textContent = `0/${MAX_CHARS}`;
      }
    });
  });

  function createItem(q) {
    return el("li", { class: "qa-item", testid: "qa-item", "data-question-id": q.question_id });
  }

  function updateItem(node, q) {
    const staff = model.isStaff;
    node.dataset.answered = String(q.answered);
    node.dataset.pinned = String(q.pinned);
    node.dataset.voted = String(q.voted);
    node.dataset.room = q.room ?? "";
    const signature = JSON.stringify([q.votes, q.voted, q.answered, q.pinned, staff, q.room]);
    if (node.signature === signature) return;
    node.signature = signature;

    const upvote = el("button", { type: "button", class: `btn btn-small vote${q.voted ? " is-on" : ""}`, testid: "qa-upvote",
      "aria-pressed": String(q.voted), "data-voted": String(q.voted), disabled: q.answered,
      title: q.answered ? "Answered questions take no votes" : q.voted ? "Remove your upvote" : "Upvote",
      onclick: () => run(q.voted ? commands.unvote(q.question_id) : commands.upvote(q.question_id)) },
      "▲ ", el("span", { class: "vote-count", testid: "qa-votes", text: String(q.votes) }));
    const staffActions = staff
      ? el("span", { class: "item-actions" },
          q.answered ? null : el("button", { type: "button", class: "btn btn-small", testid: "qa-answer", text: "Mark answered",
            onclick: () => run(commands.markAnswered(q.question_id)) }),
          el("button", { type: "button", class: "btn btn-small", testid: "qa-pin", "aria-pressed": String(q.pinned),
            text: q.pinned ? "Unpin" : "Pin", onclick: () => run(commands.pinQuestion(q.question_id, !q.pinned)) }),
          el("button", { type: "button", class: "btn btn-small", testid: "qa-dismiss", text: "Dismiss",
            onclick: () => run(commands.dismissQuestion(q.question_id)) }))
      : null;
    replaceChildren(node,
      upvote,
      el("div", { class: "qa-body" },
        el("p", { class: "qa-text", testid: "qa-text", text: q.text }),
        el("div", { class: "qa-meta" },
          el("span", { class: "muted-text", text: q.name }),
          staff && q.room ? el("span", { class: "badge badge-room", testid: "qa-room", text: q.room }) : null,
          q.pinned ? el("span", { class: "badge", text: "pinned" }) : null,
          q.answered ? el("span", { class: "badge badge-ok", text: "answered" }) : null),
        staffActions));
  }

  function render() {
    rooms.render();
    const questions = model.sortedQuestions().filter((q) => rooms.shows(q.room));
    reconcile(list, questions, (q) => `${model.epoch}:${q.question_id}`, createItem, updateItem);
    empty.hidden = questions.length > 0;
  }

  return { render };
}
