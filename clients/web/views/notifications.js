// Telling people what just happened to them: staff hear of a raised hand, a new question and a
// private message (a toast, the tab's unread badge, and a short sound if they turned it on);
// students see a new poll pop up (a toast that opens it) and hear they were called on (the model's
// notice, toasted by app.js). Events replayed on a resume are not news and say nothing.

import { el } from "../dom.js";

const SOUND_KEY = "liveclass.notify-sound";
const PREVIEW_CHARS = 80;

const preview = (text) => (text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS - 1)}…` : text);

/**
 * What an event tells this page, if anything worth a toast: `{code, text, tab, action?}`.
 * `code` is the toast's `data-code`; `tab` the side panel it concerns.
 * @param {{type: string, data?: object}} event   an `event` frame, already folded into the model
 * @param {import("../state.js").RoomModel} model
 * @returns {{code: string, text: string, tab: string, action?: string} | null}
 */
export function notificationFor(event, model) {
  const d = event.data ?? {};
  const me = model.me?.identity;
  if (!me) return null;
  if (model.isStaff) {
    switch (event.type) {
      case "hand.raised":
        return d.identity === me ? null : { code: "hand-raised", text: `${d.name} raised their hand`, tab: "people" };
      case "question.asked":
        return d.author === me ? null : { code: "question", text: `${d.name} asked: ${preview(d.text)}`, tab: "qa" };
      case "chat.message":
        return d.thread && d.from !== me
          ? { code: "private-message", text: `${d.name} (private): ${preview(d.text)}`, tab: "chat", action: "Reply" }
          : null;
      default:
        return null;
    }
  }
  if (event.type === "poll.opened") {
    return { code: "poll", text: `New poll: ${preview(d.question)}`, tab: "polls", action: "Answer" };
  }
  if (event.type === "hand.called" && d.identity === me) return { code: "called", text: "", tab: "people" };
  return null;
}

/**
 * @param {{model: import("../state.js").RoomModel, toasts: ReturnType<import("./toasts.js").mountToasts>,
 *   tabs: ReturnType<import("./tabs.js").mountTabs>, slot: HTMLElement, storage: Storage}} ctx
 *   slot: where the sound toggle goes
 * @returns {{onEvent: (event: object, replay: boolean) => void, beeps: () => number}}
 */
export function mountNotifications({ model, toasts, tabs, slot, storage }) {
  let soundOn = storage.getItem(SOUND_KEY) === "on";
  const toggle = el("button", { type: "button", class: "btn btn-small toggle", testid: "notify-sound",
    title: "Play a short sound when something arrives for you", onclick: () => {
      soundOn = !soundOn;
      storage.setItem(SOUND_KEY, soundOn ? "on" : "off");
      draw();
      if (soundOn) beep();
    } });
  function draw() {
    toggle.textContent = soundOn ? "Sound on" : "Sound off";
    toggle.setAttribute("aria-pressed", String(soundOn));
  }
  draw();
  slot.append(toggle);

  let audio = null;
  let beeps = 0;
  /** A 120 ms tone; browsers allow it once the page has had a click. */
  function beep() {
    try {
      audio ??= new AudioContext();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.08;
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.12);
      beeps++;
    } catch {
      // No audio output: the toast and the badge still say it.
    }
  }

  return {
    beeps: () => beeps,
    onEvent(event, replay) {
      if (replay) return;
      const note = notificationFor(event, model);
      if (!note) return;
      if (soundOn) beep();
      if (!note.text) return; // said elsewhere (being called on is the model's notice)
      // Already looking at that panel: the item is on screen, no toast needed.
      if (tabs.active() === note.tab && note.code !== "poll") return;
      toasts.info(note.text, note.code, note.action ? { label: note.action, onClick: () => tabs.select(note.tab) } : undefined);
    },
  };
}
