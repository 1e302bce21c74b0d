// The staff's media moderation buttons for one participant (mute their microphone or camera,
// spotlight them, let a student publish), drawn on their video tile and on their roster row.
// The SFU carries the rules out; the buttons only mirror them (rooms/media.py), disabled where
// the server would refuse.

import { el } from "../dom.js";

const MUTABLE = [
  // source, [label to mute, label to unmute]
  ["microphone", ["Mute mic", "Unmute mic"]],
  ["camera", ["Mute camera", "Unmute camera"]],
];

/**
 * What the buttons for `identity` depend on, to redraw them only when it changes.
 * @param {import("../state.js").RoomModel} model
 */
export function moderationSignature(model, identity) {
  return JSON.stringify([
    model.me?.role,
    model.roleOf(identity),
    model.mediaMutedSources(identity),
    MUTABLE.map(([source]) => model.isMediaMutedAlone(identity, source)),
    model.spotlight === identity,
    model.mediaPermitted.has(identity),
  ]);
}

/**
 * The staff's media buttons for one participant; none for a student viewer.
 * Test ids: `<prefix>-mute-microphone`, `<prefix>-mute-camera` (`aria-pressed` when muted by
 * staff, `data-source`), `<prefix>-spotlight` (`aria-pressed` when spotlighted) and, for a
 * student, `<prefix>-permit` (`aria-pressed` when permitted to publish).
 * @param {string} identity
 * @param {string} prefix  `roster` or `tile`
 * @param {{model: import("../state.js").RoomModel, commands: ReturnType<import("../commands.js").createCommands>,
 *   run: (p: Promise<unknown>) => Promise<unknown>}} ctx
 * @returns {HTMLElement[]}
 */
export function moderationButtons(identity, prefix, { model, commands, run }) {
  if (!model.isStaff) return [];
  const role = model.roleOf(identity);
  const buttons = [];
  const mayMute = model.canMuteMedia(identity);
  for (const [source, labels] of MUTABLE) {
    const muted = model.isMediaMuted(identity, source);
    const alone = model.isMediaMutedAlone(identity, source);
    // Muted only through "mute all students": lifted there, not per person.
    const viaAll = muted && !alone;
    let title = muted ? `Let them send their ${source} again` : `Stop forwarding their ${source} to the class`;
    if (!mayMute) title = role === "teacher" ? "Nobody mutes the teacher" : "Only the teacher mutes an assistant";
    else if (viaAll) title = `All students' ${source === "microphone" ? "microphones" : "cameras"} are muted`;
    buttons.push(el("button", { type: "button", class: "btn btn-small toggle", testid: `${prefix}-mute-${source}`,
      "data-source": source, "aria-pressed": String(muted), text: labels[muted ? 1 : 0], title,
      disabled: !mayMute || viaAll,
      onclick: () => run(commands.muteMedia(identity, source, !muted)) }));
  }
  const spotlit = model.spotlight === identity;
  buttons.push(el("button", { type: "button", class: "btn btn-small toggle", testid: `${prefix}-spotlight`,
    "aria-pressed": String(spotlit), text: spotlit ? "Clear spotlight" : "Spotlight",
    title: spotlit ? "Show everyone's tiles alike again" : "Show their video large and first for everyone",
    onclick: () => run(commands.spotlight(spotlit ? null : identity)) }));
  if (role === "student") {
    const permitted = model.mediaPermitted.has(identity);
    buttons.push(el("button", { type: "button", class: "btn btn-small toggle", testid: `${prefix}-permit`,
      "aria-pressed": String(permitted), text: permitted ? "Revoke publishing" : "Allow publishing",
      title: permitted ? "Back to the room's mode: in lecture mode they may not publish"
        : "Let them share camera and microphone, even in lecture mode",
      onclick: () => run(commands.permitMedia(identity, !permitted)) }));
  }
  return buttons;
}
