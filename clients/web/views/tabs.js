// The side panels as tabs (People, Chat, Questions, Polls; staff also Rooms), each with an unread
// badge: what arrived while another tab was open. The ARIA tabs pattern: arrow keys, Home and End
// move between tabs; only the open tab's panel is shown.

import { el } from "../dom.js";

/**
 * @typedef {{key: string, label: string, panel: HTMLElement, available?: () => boolean,
 *   news?: () => Iterable<string>}} TabSpec
 *   `news`: the keys of what counts as news on that tab (a message, a question, a raised hand);
 *   a key not yet seen while the tab was open counts as unread.
 */

/**
 * @param {HTMLElement} tablist  the `role="tablist"` element
 * @param {{model: import("../state.js").RoomModel, tabs: TabSpec[], initial: (staff: boolean) => string}} options
 * @returns {{render: () => void, select: (key: string) => void, active: () => string, unread: (key: string) => number}}
 */
export function mountTabs(tablist, { model, tabs, initial }) {
  let active = null;
  let epoch = null;
  const seen = new Map(tabs.map((t) => [t.key, new Set()]));
  const counts = new Map();

  const entries = tabs.map((spec) => {
    const badge = el("span", { class: "tab-badge", testid: "tab-badge", hidden: true, "aria-hidden": "true" });
    const tabId = `tab-${spec.key}`;
    const button = el("button", { type: "button", class: "tab", id: tabId, role: "tab", testid: tabId,
      "aria-controls": spec.panel.id, "aria-selected": "false", tabIndex: -1,
      onclick: () => select(spec.key) }, el("span", { text: spec.label }), badge);
    spec.panel.setAttribute("role", "tabpanel");
    spec.panel.setAttribute("aria-labelledby", tabId);
    tablist.append(button);
    return { spec, button, badge };
  });

  tablist.addEventListener("keydown", (ev) => {
    const shown = entries.filter((e) => !e.button.hidden);
    const at = shown.findIndex((e) => e.spec.key === active);
    let next = null;
    if (ev.key === "ArrowRight") next = shown[(at + 1) % shown.length];
    else if (ev.key === "ArrowLeft") next = shown[(at - 1 + shown.length) % shown.length];
    else if (ev.key === "Home") next = shown[0];
    else if (ev.key === "End") next = shown[shown.length - 1];
    if (!next) return;
    ev.preventDefault();
    select(next.spec.key);
    next.button.focus();
  });

  /** Everything on the tab now counts as read. */
  function markSeen(entry) {
    seen.set(entry.spec.key, new Set(entry.spec.news ? entry.spec.news() : []));
  }

  function select(key) {
    active = key;
    render();
  }

  function render() {
    if (!model.me) return;
    const available = entries.filter((e) => !e.spec.available || e.spec.available());
    if (active === null || !available.some((e) => e.spec.key === active)) active = initial(model.isStaff);
    // Joining, or moving to another room, brings a room's history: that is not news.
    const fresh = epoch !== model.epoch;
    epoch = model.epoch;
    for (const entry of entries) {
      const { spec, button, badge } = entry;
      const shown = available.includes(entry);
      const open = shown && spec.key === active;
      button.hidden = !shown;
      button.setAttribute("aria-selected", String(open));
      button.tabIndex = open ? 0 : -1;
      // A panel whose tab is not offered (a student's breakout bar) stays where it is, shown.
      if (shown) spec.panel.dataset.active = String(open);
      else delete spec.panel.dataset.active;
      if (fresh || open) markSeen(entry);
      let unread = 0;
      if (spec.news) {
        const known = seen.get(spec.key);
        for (const key of spec.news()) if (!known.has(key)) unread++;
      }
      counts.set(spec.key, unread);
      button.dataset.unread = String(unread);
      badge.hidden = unread === 0;
      badge.textContent = unread > 99 ? "99+" : String(unread);
      button.setAttribute("aria-label", unread ? `${spec.label}, ${unread} new` : spec.label);
    }
  }

  return { render, select, active: () => active, unread: (key) => counts.get(key) ?? 0 };
}
