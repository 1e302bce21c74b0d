// Short-lived messages in a corner: error frames, failed commands, notices. An error reads as the
// plain sentence of its code (../messages.js); the code stays in `data-code`, off the screen.

import { el } from "../dom.js";
import { explain } from "../messages.js";

const SHOW_MS = { error: 8000, info: 5000 };

/**
 * @param {HTMLElement} root   the toast container
 * @returns {{error: (code: string, message: string, label?: string, command?: string) => void,
 *   info: (text: string, code?: string, action?: {label: string, onClick: () => void}) => void}}
 */
export function mountToasts(root) {
  function show(kind, code, parts) {
    const toast = el(
      "div",
      { class: `toast toast-${kind}`, testid: "toast", role: kind === "error" ? "alert" : "status", "data-code": code },
      ...parts,
      el("button", { class: "toast-close", type: "button", "aria-label": "Dismiss", text: "×", onclick: () => toast.remove() }),
    );
    root.append(toast);
    setTimeout(() => toast.remove(), SHOW_MS[kind] ?? SHOW_MS.info);
    while (root.children.length > 3) root.firstElementChild.remove();
  }

  return {
    /**
     * @param {string} code      the error's code (see ../messages.js)
     * @param {string} message   the server's words: shown only for `check_form`, the page's own
     * @param {string} label     what the user tried ("Send message")
     * @param {string} command   the command type that failed, when it was one
     */
    error(code, message, label = "", command = "") {
      // The end of the class is said once, by the end card (views/header.js), not by a toast too.
      if (code === "session_ended" && !label) return;
      show("error", code, [
        label ? el("strong", { text: `${label} failed` }) : null,
        el("span", { class: "toast-message", text: explain(code, { command, message }).sentence }),
      ]);
    },
    info(text, code = "info", action = undefined) {
      show("info", code, [
        el("span", { class: "toast-message", text }),
        action ? el("button", { type: "button", class: "btn btn-small toast-action", testid: "toast-action", text: action.label,
          onclick: (ev) => { action.onClick(); ev.currentTarget.closest(".toast")?.remove(); } }) : null,
      ]);
    },
  };
}
