// The staff's list of a board's saved snapshots, under the whiteboard: download one, or look at it
// in a dialog and restore it (../whiteboard/snapshots.js). Every fetch goes through a short-lived
// link for that one snapshot (docs/protocol.md, "Snapshot links"), never the access token.

import { el, reconcile } from "../dom.js";
import { BOARD_WIDTH } from "../whiteboard/records.js";
import { PAPER, drawRecords } from "../whiteboard/render.js";
import { fetchSnapshot, restoreWrite } from "../whiteboard/snapshots.js";

/**
 * @param {{model: import("../state.js").RoomModel, commands: ReturnType<import("../commands.js").createCommands>,
 *          toasts: ReturnType<import("./toasts.js").mountToasts>}} ctx
 * @param {{board: () => string, canWrite: () => boolean, records: () => object[],
 *          write: (change: {put: object[], remove: string[]}) => void}} panel   the whiteboard's
 *   board shown, whether this page may write it, its records, and a write as one edit of this page
 * @returns {{node: HTMLElement, render: () => void}}
 */
export function mountBoardSnapshots({ model, commands, toasts }, panel) {
  const list = el("ul", { class: "wb-snapshots", testid: "wb-snapshots", hidden: true });
  const canvas = el("canvas", { class: "wb-snapshot-preview", testid: "wb-snapshot-preview", width: 800, height: 450,
    "data-records": "0", role: "img", "aria-label": "The saved snapshot" });
  const title = el("h2", { class: "dialog-title", id: "wb-snapshot-title" });
  const restore = el("button", { type: "button", class: "btn btn-primary", testid: "wb-snapshot-restore",
    text: "Restore this snapshot", title: "Replace the board with this snapshot (Undo takes it back)", onclick: () => restoreShown() });
  const dialog = el("dialog", { class: "dialog dialog-wide", testid: "wb-snapshot-dialog", "aria-labelledby": "wb-snapshot-title" },
    el("form", { method: "dialog" }, title, canvas,
      el("div", { class: "dialog-actions" },
        el("button", { type: "submit", class: "btn", testid: "wb-snapshot-close", text: "Close" }), restore)));
  document.body.append(dialog);

  /** @type {{board: string, id: number, records: object[]} | null} the snapshot in the dialog */
  let shown = null;

  /** Download a saved snapshot (one Yjs update) through a short-lived link for it. */
  async function download(snapshotId) {
    const board = panel.board();
    let url;
    try {
      url = await commands.snapshotLink(board, snapshotId);
    } catch (err) {
      toasts.error(err.code ?? "error", err.message, err.label, err.command);
      return;
    }
    const a = el("a", { href: url, download: `whiteboard-${board}-${snapshotId}.yjs`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
  }

  /** Show a saved snapshot in the dialog. */
  async function view(snapshotId) {
    const board = panel.board();
    let records;
    try {
      records = await fetchSnapshot(await commands.snapshotLink(board, snapshotId));
    } catch (err) {
      toasts.error(err.code ?? "error", err.message, "View snapshot", err.command);
      return;
    }
    shown = { board, id: snapshotId, records };
    title.textContent = `Snapshot #${snapshotId}`;
    const k = canvas.width / BOARD_WIDTH;
    const c = canvas.getContext("2d");
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.fillStyle = PAPER;
    c.fillRect(0, 0, canvas.width, canvas.height);
    c.setTransform(k, 0, 0, k, 0, 0);
    drawRecords(c, records);
    canvas.dataset.records = String(records.length);
    restore.disabled = !panel.canWrite();
    dialog.showModal();
  }

  /** Make the board hold exactly the snapshot in the dialog, as one edit of this page. */
  function restoreShown() {
    if (!shown || shown.board !== panel.board() || !panel.canWrite()) return;
    panel.write(restoreWrite(panel.records(), shown.records));
    shown = null;
    dialog.close();
  }

  function render() {
    const board = panel.board();
    const saved = model.isStaff ? model.boardSnapshots.filter((s) => s.board === board) : [];
    list.hidden = saved.length === 0;
    reconcile(list, saved, (s) => `${model.epoch}:${s.id}`,
      (s) => el("li", { testid: "wb-snapshot-item", "data-event-id": s.id },
        el("button", { type: "button", class: "btn-link", testid: "wb-snapshot-link", "data-event-id": s.id,
          title: "Download this snapshot (one Yjs update)", text: `Snapshot #${s.id}`,
          onclick: () => download(s.id) }),
        el("span", { class: "muted-text", text: ` by ${model.nameOf(s.by)} at ${new Date(s.ts).toLocaleTimeString()} ` }),
        el("button", { type: "button", class: "btn btn-small", testid: "wb-snapshot-view", text: "View and restore",
          onclick: () => view(s.id) })),
      () => {});
  }

  return { node: list, render };
}
