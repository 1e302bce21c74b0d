// Keyboard shortcuts for the controls used most during a lesson: raise or lower the hand, the
// microphone and the camera. Each presses the page's own button (so it does exactly what a click
// does, and nothing when the button is hidden or disabled). They use Alt+Shift so that no single
// character key triggers anything while someone types or uses a screen reader (WCAG 2.1.4), and
// event.code so they work on every keyboard layout and on macOS, where Alt changes event.key.

import { byTestId } from "../dom.js";

/** [event.code, the keys as shown, what it does, the buttons it presses (first one shown wins)] */
export const SHORTCUTS = [
  ["KeyH", "Alt+Shift+H", "raise or lower your hand", ["hand-raise", "hand-lower"]],
  ["KeyM", "Alt+Shift+M", "mute or unmute your microphone", ["media-microphone"]],
  ["KeyC", "Alt+Shift+C", "start or stop your camera", ["media-camera"]],
];

function usable(button) {
  return button instanceof HTMLButtonElement && !button.disabled && button.getClientRects().length > 0;
}

/** Listens on the document; labels each button with its shortcut (aria-keyshortcuts). */
export function mountShortcuts(doc = document) {
  doc.addEventListener("keydown", (ev) => {
    if (!ev.altKey || !ev.shiftKey || ev.ctrlKey || ev.metaKey || ev.repeat) return;
    const shortcut = SHORTCUTS.find(([code]) => code === ev.code);
    if (!shortcut) return;
    const button = shortcut[3].map((testid) => byTestId(testid, doc)).find(usable);
    if (!button) return;
    ev.preventDefault();
    button.click();
  });
  const render = () => {
    for (const [, keys, , testids] of SHORTCUTS) {
      for (const testid of testids) {
        const button = byTestId(testid, doc);
        if (button && button.getAttribute("aria-keyshortcuts") !== keys) button.setAttribute("aria-keyshortcuts", keys);
      }
    }
  };
  return { render };
}
