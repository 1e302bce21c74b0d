// The video panel: a tile per remote participant (their camera, their microphone playing), a tile
// per shared screen, this page's own preview, the camera / microphone / screen toggles, and the
// connection-quality indicator. The media itself is MediaSession's (../media.js).

import { el, reconcile } from "../dom.js";

const QUALITY_TEXT = { unknown: "No media yet", good: "Good", fair: "Fair", poor: "Poor" };
const TOGGLES = [
  // source, testid, [label when off, label when on]
  ["camera", "media-camera", ["Start camera", "Stop camera"]],
  ["microphone", "media-microphone", ["Unmute", "Mute"]],
  ["screen", "media-screen", ["Share screen", "Stop sharing"]],
];

/**
 * The tiles to show, in order: your own camera first, then each remote participant's camera (or
 * just their name while they publish only sound), then shared screens.
 * @param {import("../media.js").MediaSession} media
 * @param {import("../state.js").RoomModel} model
 * @returns {{key: string, identity: string, name: string, source: "camera"|"screen", local: boolean,
 *   video: MediaStreamTrack|null, audio: MediaStreamTrack|null}[]}
 */
export function tilesOf(media, model) {
  const me = model.me?.identity ?? "";
  const people = new Map();
  const screens = [];
  for (const remote of media.remote.values()) {
    if (remote.source === "screen") {
      screens.push({ key: `screen:${remote.producer_id}`, identity: remote.identity, source: "screen", local: false,
        video: remote.track, audio: null });
      continue;
    }
    const tile = people.get(remote.identity) ??
      { key: `camera:${remote.identity}`, identity: remote.identity, source: "camera", local: false, video: null, audio: null };
    if (remote.kind === "video") tile.video = remote.track;
    else tile.audio = remote.track;
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
  return [...own, ...[...people.values()].sort(byName), ...screens.sort(byName)]
    .map((tile) => ({ ...tile, name: model.nameOf(tile.identity) }));
}

function formatQuality(q) {
  const parts = [QUALITY_TEXT[q.level]];
  if (q.rttMs !== null) parts.push(`${Math.round(q.rttMs)} ms`);
  if (q.lossPct !== null) parts.push(`${q.lossPct.toFixed(1)}% loss`);
  if (q.fps !== null) parts.push(`${Math.round(q.fps)} fps`);
  return parts.join(" · ");
}

/**
 * @param {HTMLElement} root  the media panel
 * @param {{model: import("../state.js").RoomModel, media: import("../media.js").MediaSession}} ctx
 */
export function mountMedia(root, { model, media }) {
  const toggles = TOGGLES.map(([source, testid, labels]) => ({
    source,
    labels,
    button: el("button", { type: "button", class: "btn btn-small toggle media-toggle", testid, "aria-pressed": "false",
      "data-source": source, text: labels[0], onclick: () => media.toggle(source) }),
  }));
  const quality = el("span", { class: "media-quality", testid: "media-quality", role: "status", "data-level": "unknown",
    title: "Connection quality: round-trip time, packet loss, frames per second received" });
  const enableSound = el("button", { type: "button", class: "btn btn-small btn-primary", testid: "media-enable-sound",
    text: "Enable sound", hidden: true, onclick: () => playAll() });
  const tiles = el("div", { class: "media-tiles", testid: "media-tiles" });
  const empty = el("span", { class: "muted-text", testid: "media-empty", text: "Nobody is sharing video yet." });

  root.append(
    el("div", { class: "media-head" },
      el("h2", {}, "Video"),
      quality,
      empty,
      el("div", { class: "controls media-controls" }, ...toggles.map((t) => t.button), enableSound)),
    tiles,
  );

  let soundBlocked = false;

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
    const audio = el("audio", { testid: "media-audio", autoplay: true, hidden: true });
    const node = el("figure", { class: "media-tile", testid: "media-tile", "data-identity": tile.identity,
      "data-source": tile.source, "data-local": String(tile.local), "data-video": "none" },
      video,
      el("div", { class: "media-avatar", "aria-hidden": "true" }),
      audio,
      el("figcaption", { class: "media-tile-name", testid: "media-tile-name" }));
    node.parts = { video, audio, avatar: node.children[1], caption: node.lastElementChild };
    return node;
  }

  function updateTile(node, tile) {
    const { video, audio, avatar, caption } = node.parts;
    if (node.videoTrack !== tile.video) {
      node.videoTrack = tile.video;
      video.srcObject = tile.video ? new MediaStream([tile.video]) : null;
      if (!tile.video) node.dataset.video = "none";
      else play(video);
    }
    if (node.audioTrack !== tile.audio) {
      node.audioTrack = tile.audio;
      audio.srcObject = tile.audio ? new MediaStream([tile.audio]) : null;
      if (tile.audio) play(audio);
    }
    video.hidden = !tile.video;
    avatar.hidden = Boolean(tile.video);
    avatar.textContent = (tile.name || "?").slice(0, 1).toUpperCase();
    const what = tile.source === "screen" ? "'s screen" : "";
    caption.textContent = tile.local ? (tile.source === "screen" ? "Your screen" : "You") : `${tile.name}${what}`;
    node.dataset.audio = String(Boolean(tile.audio));
  }

  function render() {
    const me = model.me;
    for (const { source, labels, button } of toggles) {
      const on = media.isOn(source);
      button.textContent = labels[on ? 1 : 0];
      button.setAttribute("aria-pressed", String(on));
      button.dataset.busy = String(media.starting.has(source));
      button.disabled = !me || !me.can_publish || media.starting.has(source);
    }
    quality.dataset.level = media.quality.level;
    quality.textContent = formatQuality(media.quality);
    enableSound.hidden = !soundBlocked;
    const items = tilesOf(media, model);
    reconcile(tiles, items, (t) => t.key, createTile, updateTile);
    empty.hidden = items.length > 0;
    tiles.hidden = items.length === 0;
  }

  return { render };
}
