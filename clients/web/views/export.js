// End of class: staff download the class from the room's log (docs/protocol.md, "Class export"):
// JSON, or a CSV table. The token goes in the Authorization header of a fetch, never in a URL; the
// answer is saved through a blob link. Shown to staff during the class and on the end screen.

import { el } from "../dom.js";

const FILES = [
  { label: "Class (JSON)", path: "export.json", testid: "export-json" },
  { label: "Chat (CSV)", path: "export.csv?table=chat", testid: "export-chat" },
  { label: "Questions (CSV)", path: "export.csv?table=questions", testid: "export-questions" },
  { label: "Polls (CSV)", path: "export.csv?table=polls", testid: "export-polls" },
  { label: "Attendance (CSV)", path: "export.csv?table=attendance", testid: "export-attendance" },
];

/**
 * During the class the downloads are a "Download" menu in the header; once the class has ended
 * they stand on the end card.
 * @param {{menu: HTMLElement, end: HTMLElement}} slots   the header's menu slot, the end card's
 * @param {{token: string, room: string, staff: boolean,
 *   toasts: {error: (code: string, message?: string) => void}}} options
 */
export function mountExport({ menu, end }, { token, room, staff, toasts }) {
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
    FILES.map((file) => el("button", { type: "button", class: "btn btn-small", testid: file.testid, text: file.label,
      onclick: () => download(file) })));
  const summary = el("summary", { class: "btn btn-small", testid: "export-menu-button", text: "Download" });
  const details = el("details", { class: "menu export-menu", testid: "export-menu", hidden: !staff }, summary);
  menu.append(details);
  // Choosing a file closes the menu; so does a click elsewhere.
  bar.addEventListener("click", () => { details.open = false; });
  document.addEventListener("click", (ev) => { if (!details.contains(ev.target)) details.open = false; });
  function render() {
    if (!staff) return;
    const over = document.body.dataset.conn === "ended";
    const home = over ? end : details;
    if (bar.parentElement !== home) home.append(bar);
    details.hidden = over;
    // A closed menu's buttons are out of the page (Chromium still lays out a closed <details>).
    bar.hidden = !over && !details.open;
  }
  details.addEventListener("toggle", render);
  return { render };
}
