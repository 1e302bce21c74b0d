// End of class: staff download the class from the room's log (docs/protocol.md, "Class export"):
// JSON, or a CSV table. The token goes in the Authorization header of a fetch, never in a URL; the
// answer is saved through a blob link. Shown to staff during the class as a "Download" menu in the
// header (out of the way), and on the end screen's card.

import { el } from "../dom.js";

const FILES = [
  { label: "Class (JSON)", path: "export.json", testid: "export-json" },
  { label: "Chat (CSV)", path: "export.csv?table=chat", testid: "export-chat" },
  { label: "Questions (CSV)", path: "export.csv?table=questions", testid: "export-questions" },
  { label: "Polls (CSV)", path: "export.csv?table=polls", testid: "export-polls" },
  { label: "Attendance (CSV)", path: "export.csv?table=attendance", testid: "export-attendance" },
];

/**
 * @param {HTMLElement} into  where the "Download" menu goes (first): the header's controls
 * @param {{token: string, room: string, staff: boolean,
 *   toasts: {error: (code: string, message?: string) => void}}} options
 */
export function mountExport(into, { token, room, staff, toasts }) {
  async function download(file) {
    let response;
    try {
      response = await fetch(`/rooms/${encodeURIComponent(room)}/${file.path}`, {
        headers: { Authorization: `Bearer ${token}` },
      });
    } catch {
      toasts.error("not_connected", "The download could not reach the server; try again.");
      return;
    }
    if (!response.ok) {
      toasts.error("class_export_failed", "");
      return;
    }
    const blob = await response.blob();
    const disposition = response.headers.get("Content-Disposition") ?? "";
    const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? `${room}-export`;
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  const bar = el("div", { class: "export-bar", testid: "export-bar", role: "group", "aria-label": "Download the class" },
    el("span", { class: "export-label", text: "Download the class:" }),
    FILES.map((file) => el("button", { type: "button", class: "btn btn-small", testid: file.testid, text: file.label,
      onclick: () => download(file) })));
  const menu = el("details", { class: "export-menu", testid: "export-menu", hidden: !staff },
    el("summary", { class: "btn btn-small", testid: "export-open", text: "Download" }), bar);
  // A click elsewhere (or a download) folds the menu away.
  document.addEventListener("click", (event) => {
    if (menu.open && !(event.target instanceof Node && menu.contains(event.target) && !bar.contains(event.target))) menu.open = false;
  });
  // The list opens under the button, toward whichever side has room (the header wraps on a phone).
  function place() {
    if (!menu.open || !menu.contains(bar)) return;
    const button = menu.firstElementChild.getBoundingClientRect();
    bar.dataset.align = button.right - bar.offsetWidth < 0 ? "left" : "right";
  }
  menu.addEventListener("toggle", place);
  menu.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !menu.open) return;
    menu.open = false;
    menu.firstElementChild.focus();
  });
  window.addEventListener("resize", place);
  into.prepend(menu);
  return { menu, bar, render() {} };
}
