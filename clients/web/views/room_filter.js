// The staff's room controls for chat and Q&A while breakout rooms run (or their conversations are
// kept): a filter over the rooms' messages, and the room the next message goes to.

import { el, replaceChildren } from "../dom.js";

const ALL = "*";

/**
 * @param {import("../state.js").RoomModel} model
 * @param {string} prefix  the test id prefix: `<prefix>-room-filter`, `<prefix>-room-target`
 */
export function roomFilter(model, prefix) {
  const filter = el("select", { class: "room-filter", testid: `${prefix}-room-filter`, "aria-label": "Show the messages of",
    hidden: true });
  const target = el("select", { class: "room-filter", testid: `${prefix}-room-target`, "aria-label": "Post into", hidden: true });
  /** What staff picked (kept while the options are redrawn). */
  let shown = ALL;
  // Reading one room's conversation makes it where the next message goes, while that room is open.
  filter.addEventListener("change", () => {
    shown = filter.value;
    target.value = model.breakouts.includes(filter.value) ? filter.value : "";
  });

  let filterSignature = "";
  let targetSignature = "";

  function render() {
    const staff = model.isStaff;
    const rooms = staff ? model.knownRooms() : [];
    filter.hidden = !rooms.length;
    const filterOptions = [[ALL, "All rooms"], ["", "Main room"], ...rooms.map((r) => [r, r])];
    const fs = JSON.stringify(filterOptions);
    if (fs !== filterSignature) {
      filterSignature = fs;
      replaceChildren(filter, filterOptions.map(([value, text]) => el("option", { value, text })));
      if (!filterOptions.some(([value]) => value === shown)) shown = ALL;
    }
    filter.value = shown;

    const open = staff ? model.breakouts : [];
    target.hidden = !open.length;
    const here = model.place ? `Where I am (${model.place})` : "Where I am (main room)";
    const targetOptions = [["", here], ...open.map((r) => [r, `Into ${r}`])];
    const ts = JSON.stringify(targetOptions);
    if (ts !== targetSignature) {
      targetSignature = ts;
      const current = target.value;
      replaceChildren(target, targetOptions.map(([value, text]) => el("option", { value, text })));
      target.value = targetOptions.some(([value]) => value === current) ? current : "";
    }
  }

  return {
    filter,
    target,
    render,
    /** Whether a message of `room` (null: the main room) passes the filter. */
    shows(room) {
      if (filter.hidden || shown === ALL) return true;
      return (room ?? "") === shown;
    },
    /** The open room picked for the next message, or null: where the sender is. */
    targetRoom() {
      return !target.hidden && target.value ? target.value : null;
    },
  };
}
