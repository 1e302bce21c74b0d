// A control that cannot work now is disabled and says why, next to it (not only in a tooltip,
// which touch screens never show): "Call on next" with no hand raised, "Open poll" with no options.

import { el } from "../dom.js";

let nextId = 0;

/**
 * The reason line of one control, read by screen readers with it (aria-describedby).
 * @param {HTMLButtonElement} button
 * @param {string} testid   the reason line's data-testid
 * @returns {{node: HTMLElement, set: (reason: string) => void}} `set("")` enables the control
 */
export function disabledReason(button, testid) {
  const id = `reason-${++nextId}`;
  const node = el("span", { class: "muted-text disabled-reason", testid, id, hidden: true });
  button.setAttribute("aria-describedby", id);
  return {
    node,
    set(reason) {
      button.disabled = Boolean(reason);
      button.title = reason;
      node.textContent = reason;
      node.hidden = !reason;
    },
  };
}
