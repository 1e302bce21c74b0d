// Polls: the staff open one (question, 2-10 options, single or multiple choice) and watch the
// live tally; students answer and may change their answer until it closes, then see the results.

import { el, reconcile, replaceChildren } from "../dom.js";
import { disabledReason } from "./reasons.js";

const MIN_OPTIONS = 2;
const MAX_OPTIONS = 10;

/**
 * @param {HTMLElement} root  the polls panel
 * @param {{model: import("../state.js").RoomModel, commands: ReturnType<import("../commands.js").createCommands>,
 *          run: (p: Promise<unknown>) => Promise<unknown>}} ctx
 */
export function mountPolls(root, { model, commands, run }) {
  const composer = mountComposer(commands, run);
  const list = el("div", { class: "poll-list", testid: "poll-list" });
  const empty = el("p", { class: "muted-text empty", text: "No polls yet." });
  root.append(el("h2", {}, "Polls"), composer.node, empty, list);

  function render() {
    composer.node.hidden = !model.isStaff;
    const polls = [...model.polls.values()].reverse(); // newest first
    reconcile(list, polls, (p) => `${model.epoch}:${p.poll_id}`,
      (poll) => createCard(poll, model, commands, run),
      (node, poll) => node.card.update(poll));
    empty.hidden = polls.length > 0;
  }

  return { render };
}

/** The staff's form to open a poll. */
function mountComposer(commands, run) {
  const question = el("input", { type: "text", testid: "poll-question-input", maxLength: 300, placeholder: "Question",
    "aria-label": "Poll question" });
  const options = el("ol", { class: "poll-options-editor" });
  const addOption = el("button", { type: "button", class: "btn btn-small", testid: "poll-add-option", text: "+ Option",
    onclick: () => { addRow(""); refresh(); options.lastElementChild.querySelector("input").focus(); } });
  const multiple = el("input", { type: "checkbox", testid: "poll-multiple" });
  const open = el("button", { type: "submit", class: "btn btn-primary", testid: "poll-open", text: "Open poll" });
  const openReason = disabledReason(open, "poll-open-reason");
  const node = el("form", { class: "poll-composer" },
    el("h3", {}, "New poll"), question, options,
    el("div", { class: "form-actions" }, addOption, el("label", { class: "inline-label" }, multiple, " Multiple choice"), open),
    openReason.node);
  node.addEventListener("input", () => refresh());

  function addRow(value) {
    const row = el("li", { class: "poll-option-row" },
      el("input", { type: "text", testid: "poll-option-input", maxLength: 100, value, placeholder: "Option",
        "aria-label": "Option" }),
      el("button", { type: "button", class: "btn btn-small", testid: "poll-remove-option", text: "×", "aria-label": "Remove option",
        onclick: () => { row.remove(); refresh(); } }));
    options.append(row);
  }

  /** Why the poll cannot be opened as it stands ("" when it can). */
  function missing() {
    const filled = [...options.querySelectorAll("input")].filter((i) => i.value.trim()).length;
    if (!question.value.trim()) return filled >= MIN_OPTIONS ? "Write the question first." : "Write a question and at least two options.";
    return filled >= MIN_OPTIONS ? "" : "Write at least two options.";
  }

  function refresh() {
    openReason.set(missing());
    const count = options.children.length;
    addOption.disabled = count >= MAX_OPTIONS;
    for (const button of options.querySelectorAll("[data-testid=poll-remove-option]")) button.hidden = count <= MIN_OPTIONS;
  }

  function resetForm() {
    question.value = "";
    multiple.checked = false;
    options.replaceChildren();
    for (let i = 0; i < MIN_OPTIONS; i++) addRow("");
    refresh();
  }

  node.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = question.value.trim();
    const choices = [...options.querySelectorAll("input")].map((i) => i.value.trim()).filter(Boolean);
    if (!text || choices.length < MIN_OPTIONS) {
      question.reportValidity?.();
      return;
    }
    run(commands.openPoll(text, choices, multiple.checked)).then((ok) => ok && resetForm());
  });

  resetForm();
  return { node };
}

/** One poll: choices for a student while open, the tally for staff, results once closed. */
function createCard(initial, model, commands, run) {
  const pollId = initial.poll_id;
  const title = el("h3", { class: "poll-question", testid: "poll-question", text: initial.question });
  const state = el("span", { class: "badge" });
  const kind = el("span", { class: "muted-text", text: initial.multiple ? "choose any" : "choose one" });
  const inputs = initial.options.map((option, i) =>
    el("input", { type: initial.multiple ? "checkbox" : "radio", name: `poll-${pollId}`, value: String(i), testid: "poll-choice" }));
  const submit = el("button", { type: "submit", class: "btn btn-primary btn-small", testid: "poll-submit", text: "Submit" });
  const mine = el("p", { class: "muted-text", testid: "poll-mine" });
  const ballot = el("form", { class: "poll-ballot" },
    el("ul", { class: "poll-choices" },
      initial.options.map((option, i) => el("li", {}, el("label", {}, inputs[i], " ", el("span", { text: option }))))),
    el("div", { class: "form-actions" }, mine, submit));
  const results = el("div", { class: "poll-results", testid: "poll-results" });
  const close = el("button", { type: "button", class: "btn btn-small", testid: "poll-close", text: "Close poll",
    onclick: () => run(commands.closePoll(pollId)) });
  const node = el("article", { class: "poll-card", testid: "poll-card", "data-poll-id": pollId },
    el("header", { class: "poll-head" }, title, state, kind), ballot, results, el("div", { class: "form-actions" }, close));

  const chosen = () => inputs.filter((i) => i.checked).map((i) => Number(i.value));
  ballot.addEventListener("change", () => {
    submit.disabled = chosen().length === 0;
  });
  ballot.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const choices = chosen();
    if (choices.length) run(commands.answerPoll(pollId, choices));
  });

  let mineShown = null;
  node.card = {
    update(poll) {
      const staff = model.isStaff;
      node.dataset.open = String(poll.open);
      state.textContent = poll.open ? "open" : "closed";
      state.className = poll.open ? "badge badge-ok" : "badge";

      ballot.hidden = staff;
      // Show the server's view of my answer, unless I am editing it and it has not changed.
      const mineKey = JSON.stringify(poll.mine);
      if (mineKey !== mineShown) {
        mineShown = mineKey;
        inputs.forEach((input, i) => { input.checked = poll.mine.includes(i); });
      }
      for (const input of inputs) input.disabled = !poll.open;
      submit.hidden = !poll.open;
      submit.disabled = chosen().length === 0;
      submit.textContent = poll.mine.length ? "Change answer" : "Submit";
      mine.textContent = poll.mine.length
        ? `Your answer: ${poll.mine.map((i) => poll.options[i]).join(", ")}`
        : poll.open ? "" : "You did not answer.";

      close.hidden = !(staff && poll.open);
      const tally = model.pollResults(poll);
      results.hidden = !tally;
      if (tally) renderBars(results, poll, tally);
    },
  };
  return node;
}

/** A horizontal bar per option; widths are shares of the voters. */
function renderBars(root, poll, { counts, voters }) {
  replaceChildren(root,
    poll.options.map((option, i) => {
      const count = counts[i] ?? 0;
      const share = voters > 0 ? Math.round((count / voters) * 100) : 0;
      return el("div", { class: "poll-bar", testid: "poll-bar", "data-option": i, "data-count": count },
        el("div", { class: "poll-bar-label" }, el("span", { text: option }), el("span", { class: "poll-bar-count", text: `${count} (${share}%)` })),
        el("div", { class: "poll-bar-track" }, el("div", { class: "poll-bar-fill", style: `width: ${share}%` })));
    }),
    el("p", { class: "muted-text", testid: "poll-voters", text: `${voters} ${voters === 1 ? "voter" : "voters"}` }));
}
