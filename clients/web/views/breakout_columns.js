// The staff's drag-and-drop board of breakout rooms: one column per room (and one for the main
// room or the not yet assigned) holding a chip per person. A chip is dragged to another column, or
// moved with its room menu (the keyboard's way); in a running round it also has a tick box for
// moving several people in one command.

import { el } from "../dom.js";

/** The drag payload's type: the identity of the person being moved. */
const DRAG_TYPE = "text/plain";

/**
 * One room's column: a drop target listing its people.
 * @param {{room: string | null, label: string, people: {identity: string, name: string, role: string}[],
 *          rooms: string[], online: (identity: string) => boolean, picked: Set<string> | null,
 *          onMove: (identity: string, room: string | null) => void, actions?: HTMLElement[]}} options
 *   `room` null is the main room (or "not assigned" in a plan); `rooms` are the choices of each
 *   chip's menu; `picked` (a running round) gives each chip a tick box; `actions` go in the head.
 * @returns {HTMLElement}
 */
export function roomColumn({ room, label, people, rooms, online, picked, onMove, actions = [] }) {
  const list = el("ul", { class: "breakout-chips" },
    people.map((person) => chip(person, { room, rooms, online: online(person.identity), picked, onMove })));
  const students = people.filter((p) => p.role === "student").length;
  const head = el("div", { class: "breakout-column-head" },
    el("strong", { class: "breakout-column-name", text: label }),
    el("span", { class: "badge", testid: "breakout-column-count", text: String(students) }),
    actions);
  const node = el("li", { class: "breakout-column", testid: "breakout-column", "data-room": room ?? "", "aria-label": label },
    head, list);
  node.addEventListener("dragover", (ev) => {
    if (!ev.dataTransfer?.types.includes(DRAG_TYPE)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "move";
    node.classList.add("is-target");
  });
  node.addEventListener("dragleave", () => node.classList.remove("is-target"));
  node.addEventListener("drop", (ev) => {
    ev.preventDefault();
    node.classList.remove("is-target");
    const identity = ev.dataTransfer.getData(DRAG_TYPE);
    if (identity) onMove(identity, room);
  });
  return node;
}

function chip(person, { room, rooms, online, picked, onMove }) {
  const select = el("select", { class: "breakout-chip-room", testid: "breakout-chip-room", "aria-label": `Room of ${person.name}`,
    onchange: () => onMove(person.identity, select.value || null) },
    el("option", { value: "", text: "Main room" }),
    rooms.map((r) => el("option", { value: r, text: r })));
  select.value = room ?? "";
  const tick = picked
    ? el("input", { type: "checkbox", testid: "breakout-chip-pick", checked: picked.has(person.identity),
        "aria-label": `Tick ${person.name}`,
        onchange: (ev) => { if (ev.target.checked) picked.add(person.identity); else picked.delete(person.identity); } })
    : null;
  const node = el("li", { class: `breakout-chip${online ? "" : " is-away"}`, testid: "breakout-chip", draggable: true,
    "data-identity": person.identity, "data-room": room ?? "", title: online ? "Drag to another room" : "Not connected" },
    tick,
    el("span", { class: "drag-handle", "aria-hidden": "true", text: "⠿" }),
    el("span", { class: "person-name", testid: "breakout-chip-name", text: person.name }),
    person.role !== "student" ? el("span", { class: "badge", text: person.role }) : null,
    select);
  node.addEventListener("dragstart", (ev) => {
    ev.dataTransfer.setData(DRAG_TYPE, person.identity);
    ev.dataTransfer.effectAllowed = "move";
  });
  return node;
}
