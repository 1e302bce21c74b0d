// A small modal that asks for a reason (remove a participant, end the session). An in-page
// <dialog> rather than window.prompt, so it is styled and reachable by tests like any element.

import { el } from "../dom.js";

/**
 * @param {HTMLElement} host   where the dialog element lives
 * @returns {(title: string, confirmLabel: string) => Promise<string | null>} resolves with the
 *   reason (possibly empty), or null when cancelled
 */
export function mountReasonDialog(host) {
  const title = el("h2", { class: "dialog-title" });
  const input = el("input", { type: "text", maxLength: 200, testid: "reason-input", placeholder: "Reason (optional)" });
  const confirm = el("button", { type: "submit", class: "btn btn-danger", testid: "reason-confirm", value: "ok" });
  const cancel = el("button", { type: "button", class: "btn", testid: "reason-cancel", text: "Cancel" });
  const form = el("form", { method: "dialog" }, title, el("label", {}, "Reason", input), el("div", { class: "dialog-actions" }, cancel, confirm));
  const dialog = el("dialog", { class: "dialog", testid: "reason-dialog" }, form);
  host.append(dialog);

  let settle = null;
  cancel.addEventListener("click", () => dialog.close("cancel"));
  dialog.addEventListener("close", () => {
    const answer = dialog.returnValue === "ok" ? input.value.trim() : null;
    settle?.(answer);
    settle = null;
  });

  return (titleText, confirmLabel) => {
    settle?.(null);
    title.textContent = titleText;
    confirm.textContent = confirmLabel;
    input.value = "";
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
    return new Promise((resolve) => {
      settle = resolve;
    });
  };
}
