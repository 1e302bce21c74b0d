// Leaving asks first (a Leave button next to Mute is easy to hit by mistake), and a page that left
// offers Rejoin: the tab keeps its token (token.js), so joining again is a reload.

import { el } from "../dom.js";

/**
 * @param {HTMLElement} host   where the dialog element lives
 * @returns {() => Promise<boolean>} asks "Leave the class?"; resolves true to leave
 */
export function mountLeaveDialog(host) {
  const stay = el("button", { type: "button", class: "btn", testid: "leave-cancel", text: "Stay" });
  const leave = el("button", { type: "submit", class: "btn btn-danger", testid: "leave-confirm", value: "leave", text: "Leave" });
  const dialog = el("dialog", { class: "dialog", testid: "leave-dialog", "aria-labelledby": "leave-title" },
    el("form", { method: "dialog" },
      el("h2", { class: "dialog-title", id: "leave-title", text: "Leave the class?" }),
      el("p", { text: "You can come back with Rejoin, or with your join link, while the class goes on." }),
      el("div", { class: "dialog-actions" }, stay, leave)));
  host.append(dialog);

  let settle = null;
  stay.addEventListener("click", () => dialog.close("stay"));
  dialog.addEventListener("close", () => {
    settle?.(dialog.returnValue === "leave");
    settle = null;
  });

  return () => {
    settle?.(false);
    dialog.returnValue = "";
    dialog.showModal();
    stay.focus();
    return new Promise((resolve) => {
      settle = resolve;
    });
  };
}

/**
 * The banner's Rejoin button, for a page that left the class or was replaced by another tab.
 * @param {() => void} rejoin
 * @returns {HTMLButtonElement}
 */
export function rejoinButton(rejoin) {
  return el("button", { type: "button", class: "btn btn-primary btn-small", testid: "rejoin", text: "Rejoin", onclick: rejoin });
}
