// The video panel: a tile per remote participant (their camera, their microphone playing), a tile
// per shared screen, this page's own preview, the camera / microphone / screen toggles, and the
// connection-quality indicator. The spotlighted participant's tiles come first, drawn large. Staff
// get each participant's moderation buttons on their tile and "mute all students' microphones";
// a participant sees what the staff's mutes and lecture mode do to their own toggles. The media
// itself is MediaSession's (../media.js).

import { el, reconcile, replaceChildren } from "../dom.js";
import { explain } from "../messages.js";
import { moderationButtons, moderationSignature } from "./moderation.js";

const QUALITY_TEXT = { unknown: "No media yet", good: "Good", fair: "Fair", poor: "Poor" };
/** A remote video with no new frame for this long is stalled: its sender stopped or its path broke. */
export const STALL_MS = 3000;
const TOGGLES = [
  // source, testid, [label when off, label when on], label while staff mute it
  ["camera", "media-camera", ["Start camera", "Stop camera"], "Camera muted by staff"],
  ["microphone", "media-microphone", ["Unmute", "Mute"], "Microphone muted by staff"],
  ["screen", "media-screen", ["Share screen", "Stop sharing"], "Screen muted by staff"],
];

/** How long the page waits before it tells the SFU which videos it shows (a scroll settles). */
export const VIEW_DELAY_MS = 250;

/**
 * Whether a tile's video is received even while it is off screen: the spotlight's and a screen
 * share, what the class is looking at (docs/protocol.md, `media.view`).
 * @param {{spotlight: boolean, source: string}} tile
 * @returns {boolean}
 */
export function keptInView(tile) {
  return tile.spotlight || tile.source === "screen";
}

/**
 * The tiles to show, in order: the spotlighted participant's (camera, then screen; a tile with
 * their initial when they share no video), your own camera, then each remote participant's camera
 * (or just their name while they publish only sound), then shared screens.
 * @param {import("../media.js").MediaSession} media
 * @param {import("../state.js").RoomModel} model
 * @returns {{key: string, identity: string, name: string, source: "camera"|"screen", local: boolean,
 *   video: MediaStreamTrack|null, audio: MediaStreamTrack|null, spotlight: boolean}[]}
 */
export function tilesOf(media, model) {
  const me = model.me?.identity ?? "";
  const people = new Map();
  const screens = [];
  for (const remote of media.remote.values()) {
    if (remote.source === "screen") {
      screens.push({ key: `screen:${remote.producer_id}`, identity: remote.identity, source: "screen", local: false,
        video: remote.track, audio: null, videoProducer: remote.producer_id,
        layer: media.layers.get(remote.producer_id) ?? "all" });
      continue;
    }
    const tile = people.get(remote.identity) ??
      { key: `camera:${remote.identity}`, identity: remote.identity, source: "camera", local: false, video: null, audio: null };
    if (remote.kind === "video") {
      tile.video = remote.track;
      tile.videoProducer = remote.producer_id;
      tile.layer = media.layers.get(remote.producer_id) ?? "all";
    } else tile.audio = remote.track;
    people.set(remote.identity, tile);
  }
  const own = [];
  const camera = media.local.camera;
  if (camera && camera.readyState === "live") {
    own.push({ key: "local:camera", identity: me, source: "camera", local: true, video: camera, audio: null });
  }
  const screen = media.local.screen;
  if (screen && screen.readyState === "live" && screen.enabled) {
    own.push({ key: "local:screen", identity: me, source: "screen", local: true, video: screen, audio: null });
  }
  const byName = (a, b) => model.nameOf(a.identity).localeCompare(model.nameOf(b.identity));
  const all = [...own, ...[...people.values()].sort(byName), ...screens.sort(byName)];
  const spot = model.spotlight;
  const lit = all.filter((tile) => tile.identity === spot);
  if (spot && !lit.length && (spot === me || model.roster.has(spot))) {
    lit.push({ key: `spotlight:${spot}`, identity: spot, source: "camera", local: spot === me, video: null, audio: null });
  }
  lit.sort((a, b) => Number(a.source === "screen") - Number(b.source === "screen"));
  return [...lit, ...all.filter((tile) => tile.identity !== spot)]
    .map((tile) => ({ ...tile, name: model.nameOf(tile.identity), spotlight: tile.identity === spot }));
}

/**
 * Why a tile shows no picture although it has a video track, or "" when it shows one: the staff
 * muted the camera, lecture mode holds the person back (the SFU forwards none of it), or no frame
 * came for STALL_MS from a camera (a shared screen that does not change may send none). A tile
 * never shows a frozen last frame: it shows the name and this reason.
 * The SFU pausing it for this participant's slow link (`media.layers`) is said as such.
 * @param {{name: string, source: string, local: boolean, layer?: string}} tile
 * @param {{muted: string[], blocked: boolean, stalled: boolean, mine?: boolean}} state  `mine`:
 *   this participant paused others' video
 * @returns {{why: ""|"muted"|"lecture"|"mine"|"link"|"stalled", text: string}}
 */
export function pausedReason(tile, { muted, blocked, stalled, mine = false }) {
  if (tile.local) return { why: "", text: "" };
  const video = tile.source === "screen" ? "screen share" : "camera";
  if (muted.includes("camera") || (tile.source === "screen" && muted.includes("screen"))) {
    return { why: "muted", text: `The staff turned off ${tile.name}'s ${video}.` };
  }
  if (blocked) return { why: "lecture", text: `Lecture mode: only the staff share video, so ${tile.name}'s ${video} is paused.` };
  if (mine) return { why: "mine", text: "You paused others' video; sound goes on." };
  if (tile.layer === "paused") return { why: "link", text: "Video paused: your connection is slow. Sound goes on." };
  if (stalled) return { why: "stalled", text: `No picture is coming from ${tile.name}: their camera stopped or their connection dropped.` };
  return { why: "", text: "" };
}

function formatQuality(q) {
  const parts = [QUALITY_TEXT[q.level]];
  if (q.rttMs !== null) parts.push(`${Math.round(q.rttMs)} ms`);
  if (q.lossPct !== null) parts.push(`${q.lossPct.toFixed(1)}% loss`);
  if (q.fps !== null) parts.push(`${Math.round(q.fps)} fps`);
  return parts.join(" · ");
}

/**
 * What this participant is told about their own media: lecture mode, staff mutes.
 * @param {import("../state.js").RoomModel} model
 * @param {import("../media.js").MediaSession} media
 * @returns {string} empty when there is nothing to say
 */
export function ownMediaNotice(model, media) {
  const me = model.me;
  if (!me || !me.can_publish) return "";
  const parts = [];
  if (!model.mayPublish(me)) {
    const on = ["camera", "microphone", "screen"].some((source) => media.isOn(source));
    parts.push(on
      ? "Lecture mode: only the staff share video and sound; yours is not sent to the class. Ask the teacher if you want to speak."
      : "Lecture mode: only the staff share video and sound. Ask the teacher if you want to speak.");
  }
  const muted = model.mediaMutedSources(me.identity);
  if (muted.length) parts.push(`Muted by staff: ${muted.join(", ")}.`);
  return parts.join(" ");
}

/**
 * @param {HTMLElement} root  the media panel
 * @param {{model: import("../state.js").RoomModel, media: import("../media.js").MediaSession,
 *   commands: ReturnType<import("../commands.js").createCommands>, run: (p: Promise<unknown>) => Promise<unknown>}} ctx
 */
export function mountMedia(root, ctx) {
  const { model, media, commands, run } = ctx;
  const toggles = TOGGLES.map(([source, testid, labels, mutedLabel]) => ({
    source,
    labels,
    mutedLabel,
    button: el("button", { type: "button", class: "btn btn-small toggle media-toggle", testid, "aria-pressed": "false",
      "data-source": source, text: labels[0], onclick: () => media.toggle(source) }),
  }));
  const quality = el("span", { class: "media-quality", testid: "media-quality", role: "status", "data-level": "unknown",
    title: "Connection quality: round-trip time, packet loss, frames per second received" });
  // The device check loads when first asked for: nobody needs it to join the class.
  let openDeviceCheck = null;
  const showDeviceCheck = async () => {
    openDeviceCheck ??= (await import("./device_check.js")).mountDeviceDialog(document.body);
    openDeviceCheck();
  };
  const checkDevices = el("button", { type: "button", class: "btn btn-small", testid: "media-check-devices",
    text: "Check camera and microphone", onclick: () => showDeviceCheck().catch(() => ctx.toasts.error("connect_failed", "")) });
  const enableSound = el("button", { type: "button", class: "btn btn-small btn-primary", testid: "media-enable-sound",
    text: "Enable sound", hidden: true, onclick: () => playAll() });
  // One click to sound only: the SFU stops sending everyone else's video (media.view).
  const pauseVideo = el("button", { type: "button", class: "btn btn-small toggle", testid: "media-pause-video",
    "aria-pressed": "false", text: "Pause others' video",
    onclick: () => media.setOthersVideoPaused(!media.othersVideoPaused) });
  const muteAllMics = el("button", { type: "button", class: "btn btn-small toggle", testid: "media-mute-all-microphones",
    "aria-pressed": "false", onclick: () => run(commands.muteMedia(null, "microphone", !model.mediaMutedAll.has("microphone"))) });
  const clearSpotlight = el("button", { type: "button", class: "btn btn-small", testid: "media-clear-spotlight",
    text: "Clear spotlight", hidden: true, onclick: () => run(commands.spotlight(null)) });
  const staffControls = el("div", { class: "controls media-staff-controls" }, muteAllMics, clearSpotlight);
  const notice = el("p", { class: "media-notice", testid: "media-notice", role: "status", hidden: true });
  // Media that cannot connect says so, and what to do, until it connects (MediaSession.problem).
  const problemText = el("span", { testid: "media-error-text" });
  const retry = el("button", { type: "button", class: "btn btn-small", testid: "media-retry", text: "Retry media",
    onclick: () => media.retry() });
  const problem = el("p", { class: "media-notice media-error", testid: "media-error", role: "alert", hidden: true },
    problemText, " ", retry);
  const tiles = el("div", { class: "media-tiles", testid: "media-tiles" });
  const empty = el("span", { class: "muted-text", testid: "media-empty", text: "Nobody is sharing video yet." });

  root.append(
    el("div", { class: "media-head" },
      el("h2", {}, "Video"),
      quality,
      empty,
      staffControls,
      el("div", { class: "controls media-controls" }, ...toggles.map((t) => t.button), pauseVideo, checkDevices,
        enableSound)),
    problem,
    notice,
    tiles,
  );

  let soundBlocked = false;

  // Receiver-driven video (media.view): the SFU sends only the videos this page shows, like
  // adaptive streams elsewhere, so a phone showing three tiles does not pull sixteen videos. Shown:
  // the spotlight's and every screen share (what the class is looking at: kept even while
  // scrolled away, so they never wait for a keyframe when scrolled back), and every other video
  // tile on screen. A tile the observer has not reported on yet counts as on screen (a new
  // video starts at once). While every video is shown the page asks for all of them.
  const offScreen = new WeakSet();
  let viewTimer = 0;
  const onScreen = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) offScreen.delete(entry.target);
      else offScreen.add(entry.target);
    }
    scheduleView();
  });
  /** Send the view within VIEW_DELAY_MS: a scroll settles first, and a burst sends once. */
  function scheduleView() {
    viewTimer ||= setTimeout(() => {
      viewTimer = 0;
      sendView();
    }, VIEW_DELAY_MS);
  }
  function sendView() {
    const videoTiles = [...tiles.children].filter((node) => node.tileState?.tile.videoProducer);
    const shown = videoTiles.filter((node) => keptInView(node.tileState.tile) || !offScreen.has(node));
    media.setVisibleVideos(shown.length === videoTiles.length ? null : shown.map((node) => node.tileState.tile.videoProducer));
  }

  /** Browsers refuse to autoplay sound before the user touches the page: then offer a button. */
  function play(element) {
    element.play?.()?.catch((err) => {
      if (err?.name === "NotAllowedError" && element.tagName === "AUDIO") {
        soundBlocked = true;
        render();
      }
    });
  }

  function playAll() {
    soundBlocked = false;
    for (const audio of tiles.querySelectorAll("audio")) play(audio);
    render();
  }

  function createTile(tile) {
    const video = el("video", { class: "media-video", testid: "media-video", autoplay: true, muted: true, playsInline: true });
    video.addEventListener("resize", () => { node.dataset.video = video.videoWidth > 0 ? "playing" : "none"; });
    // Each frame shown moves lastFrameAt: a tile whose frames stop is stalled (see pausedReason).
    const onFrame = () => {
      node.lastFrameAt = performance.now();
      video.requestVideoFrameCallback?.(onFrame);
    };
    video.requestVideoFrameCallback?.(onFrame);
    const audio = el("audio", { testid: "media-audio", autoplay: true, hidden: true });
    const node = el("figure", { class: "media-tile", testid: "media-tile", "data-identity": tile.identity,
      "data-source": tile.source, "data-local": String(tile.local), "data-video": "none" },
      video,
      el("div", { class: "media-avatar", "aria-hidden": "true" }),
      audio,
      el("figcaption", { class: "media-tile-name", testid: "media-tile-name" }),
      el("div", { class: "media-tile-badges" }),
      el("div", { class: "media-tile-actions", testid: "media-tile-actions" }),
      el("p", { class: "media-tile-why", testid: "media-tile-why", hidden: true }));
    const [, avatar, , caption, badges, actions, why] = node.children;
    node.parts = { video, audio, avatar, caption, badges, actions, why };
    return node;
  }

  function updateTile(node, tile) {
    const { video, audio, avatar, caption } = node.parts;
    if (node.videoTrack !== tile.video) {
      node.videoTrack = tile.video;
      node.lastFrameAt = performance.now(); // a new track gets STALL_MS for its first frame
      video.srcObject = tile.video ? new MediaStream([tile.video]) : null;
      if (!tile.video) node.dataset.video = "none";
      else play(video);
    }
    if (node.audioTrack !== tile.audio) {
      node.audioTrack = tile.audio;
      audio.srcObject = tile.audio ? new MediaStream([tile.audio]) : null;
      if (tile.audio) play(audio);
    }
    avatar.textContent = (tile.name || "?").slice(0, 1).toUpperCase();
    const what = tile.source === "screen" ? "'s screen" : "";
    caption.textContent = tile.local ? (tile.source === "screen" ? "Your screen" : "You") : `${tile.name}${what}`;
    node.dataset.audio = String(Boolean(tile.audio));

    const person = tile.local ? model.me : model.roster.get(tile.identity) ?? { identity: tile.identity, role: model.roleOf(tile.identity) };
    const muted = model.mediaMutedSources(tile.identity);
    const blocked = !model.mayPublish(person);
    node.dataset.spotlight = String(tile.spotlight);
    node.dataset.muted = muted.join(" ");
    node.dataset.blocked = String(blocked);
    node.tileState = { tile, muted, blocked };
    showPicture(node);
    const badgeSignature = JSON.stringify([muted, blocked, tile.spotlight]);
    if (node.badgeSignature !== badgeSignature) {
      node.badgeSignature = badgeSignature;
      replaceChildren(node.parts.badges,
        tile.spotlight ? el("span", { class: "tile-badge tile-badge-spotlight", text: "Spotlight" }) : null,
        ...muted.map((source) => el("span", { class: "tile-badge", text: `${source === "microphone" ? "mic" : source} muted` })),
        blocked ? el("span", { class: "tile-badge", text: "lecture: not sent", title: "Lecture mode: only staff publish" }) : null);
    }
    // Staff act on each remote participant from their camera tile.
    const moderated = !tile.local && tile.source === "camera";
    const actionSignature = moderated ? moderationSignature(model, tile.identity) : "";
    if (node.actionSignature !== actionSignature) {
      node.actionSignature = actionSignature;
      replaceChildren(node.parts.actions, moderated ? moderationButtons(tile.identity, "tile", ctx) : []);
    }
    node.parts.actions.hidden = !node.parts.actions.childElementCount;
  }

  /** The picture, or the name and why there is none (never a frozen frame). */
  function showPicture(node) {
    const { tile, muted, blocked } = node.tileState;
    // A camera sends frames all the time; a shared screen that does not change may send none. A
    // hidden tab presents no frames, so it cannot tell.
    const stalled = Boolean(tile.video) && !tile.local && tile.source === "camera" && !document.hidden &&
      performance.now() - (node.lastFrameAt ?? 0) > STALL_MS;
    const mine = media.othersVideoPaused && !tile.local;
    const paused = tile.video ? pausedReason(tile, { muted, blocked, stalled, mine }) : { why: "", text: "" };
    const { video, avatar, why } = node.parts;
    // A paused picture is covered, not hidden: a hidden <video> presents no frames, so it could
    // never be seen to come back.
    video.hidden = !tile.video;
    avatar.hidden = Boolean(tile.video) && !paused.why;
    node.dataset.paused = paused.why;
    why.textContent = paused.text;
    why.hidden = !paused.why;
  }

  // Frames stopping is no event: look every second.
  setInterval(() => {
    for (const node of tiles.children) if (node.tileState) showPicture(node);
  }, 1000);

  function render() {
    const me = model.me;
    const allowed = model.mayPublish(me);
    for (const { source, labels, mutedLabel, button } of toggles) {
      const on = media.isOn(source);
      // A camera mute stops all of one's video, the screen share too (docs/protocol.md, "Media").
      const staffMuted = Boolean(me) && (model.isMediaMuted(me.identity, source) ||
        (source === "screen" && model.isMediaMuted(me.identity, "camera")));
      button.textContent = staffMuted && !on ? mutedLabel : labels[on ? 1 : 0];
      button.setAttribute("aria-pressed", String(on));
      button.dataset.busy = String(media.starting.has(source));
      button.dataset.staffMuted = String(staffMuted);
      button.dataset.blocked = String(Boolean(me) && !allowed);
      // While the staff mute a source, or publishing is not allowed (lecture mode), a source
      // that is on can still be turned off (your camera is yours to stop), not on.
      button.disabled = !me || !me.can_publish || media.starting.has(source) || ((staffMuted || !allowed) && !on);
      button.title = staffMuted ? "The staff muted this (it is not sent); they can lift it"
        : !allowed ? "Lecture mode: only the staff publish; ask the teacher" : "";
    }
    const staff = model.isStaff;
    staffControls.hidden = !staff;
    const micsMuted = model.mediaMutedAll.has("microphone");
    muteAllMics.textContent = micsMuted ? "Unmute all students' microphones" : "Mute all students' microphones";
    muteAllMics.setAttribute("aria-pressed", String(micsMuted));
    clearSpotlight.hidden = !staff || model.spotlight === null;
    const says = ownMediaNotice(model, media);
    notice.textContent = says;
    notice.hidden = !says;
    quality.dataset.level = media.problem ? "poor" : media.quality.level;
    quality.textContent = media.problem ? "Not connected" : formatQuality(media.quality);
    problem.hidden = !media.problem;
    problemText.textContent = media.problem ? explain(media.problem.code).sentence : "";
    enableSound.hidden = !soundBlocked;
    pauseVideo.textContent = media.othersVideoPaused ? "Show others' video" : "Pause others' video";
    pauseVideo.setAttribute("aria-pressed", String(media.othersVideoPaused));
    const items = tilesOf(media, model);
    reconcile(tiles, items, (t) => t.key, createTile, updateTile);
    for (const node of tiles.children) {
      if (node.tileState?.tile.videoProducer && !node.observed) {
        node.observed = true;
        onScreen.observe(node);
      }
    }
    // A tile's video can change with no scroll (a camera started again, a new spotlight).
    scheduleView();
    empty.hidden = items.length > 0;
    tiles.hidden = items.length === 0;
  }

  return { render };
}
