// A saved snapshot of a board (docs/protocol.md, "Snapshot links"): one Yjs v1 update of the
// board's document, read here into its records so the page can show it and restore it. No DOM.
//
// Restoring cannot apply the update to the live document: every record in it is already known
// there (a clear deleted them, and a Yjs delete is final), so applying it changes nothing. The
// records are written again instead, as new entries, in one local transaction: the board then
// holds exactly the snapshot's records, for everyone, and Undo takes the restore back.

import * as Y from "yjs";
import { YKeyValue } from "y-utility/y-keyvalue";
import { drawOrder } from "./records.js";

/**
 * The valid records of a snapshot, in drawing order (docs/whiteboard.md's records).
 * @param {Uint8Array} update   the snapshot: one Yjs v1 update
 * @returns {object[]}
 * @throws {Error} when the bytes are not a Yjs update
 */
export function snapshotRecords(update) {
  const doc = new Y.Doc();
  try {
    Y.applyUpdate(doc, update);
    const kv = new YKeyValue(doc.getArray("records"));
    return drawOrder([...kv.map.values()].map((entry) => entry.val));
  } finally {
    doc.destroy();
  }
}

/**
 * What to write to make a board hold exactly `wanted`: every current record not in it removed,
 * every wanted record put (again).
 * @param {{id: string}[]} current
 * @param {{id: string}[]} wanted
 * @returns {{put: object[], remove: string[]}}
 */
export function restoreWrite(current, wanted) {
  const keep = new Set(wanted.map((r) => r.id));
  return { put: wanted, remove: current.map((r) => r.id).filter((id) => !keep.has(id)) };
}

/**
 * Download a snapshot through its short-lived link and read its records.
 * @param {string} url   the link (`board.snapshot_link`'s ack), used once
 * @returns {Promise<object[]>}
 * @throws {Error & {code: string}} `snapshot_unavailable` when the server does not give it
 */
export async function fetchSnapshot(url) {
  const response = await fetch(url);
  if (!response.ok) throw Object.assign(new Error(`snapshot: HTTP ${response.status}`), { code: "snapshot_unavailable" });
  return snapshotRecords(new Uint8Array(await response.arrayBuffer()));
}
