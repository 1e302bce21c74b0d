// The stage: the video grid, or the whiteboard with the video as a strip above it; a fullscreen
// button. What is on it is the staff's choice for the room (docs/protocol.md, "The stage"): in the
// main room a staff member's Video / Whiteboard switch puts that view on every page's stage; a
// student's switch changes only their own page, until the next staff choice brings them back
// (docs/decisions/0019-stage-is-the-staffs.md). A spotlight or a screen share that starts takes the
// stage (drawn large); each viewer may switch back. In the video view the tiles are sized to fill the stage: the column count is the one
// that gives the largest 4:3 tiles that all fit (--tile-w), and a spotlight or screen share takes a
// full row above the others, never camera-sized.

import { el } from "../dom.js";
import { tilesOf } from "./media.js";

const GAP_PX = 10;
const MIN_TILE_PX = 120;

/**
 * The column count and tile width that fit `count` tiles of aspect 4:3 in a width x height box.
 * @param {number} count   tiles (>= 1)
 * @param {number} width   px
 * @param {number} height  px
 * @returns {{cols: number, tileWidth: number}}
 */
export function fitGrid(count, width, height) {
  let best = { cols: 1, tileWidth: MIN_TILE_PX };
  for (let cols = 1; cols <= count; cols++) {
    const rows = Math.ceil(count / cols);
    const byWidth = (width - GAP_PX * (cols - 1)) / cols;
    const byHeight = ((height - GAP_PX * (rows - 1)) / rows) * (4 / 3);
    const tileWidth = Math.floor(Math.min(byWidth, byHeight));
    if (tileWidth > best.tileWidth) best = { cols, tileWidth };
  }
  return best;
}

/**
 * @param {HTMLElement} stage  the stage section (`data-stage`: `video` or `board`)
 * @param {{model: import("../state.js").RoomModel, media: import("../media.js").MediaSession,
 *   bar: HTMLElement, body: HTMLElement, commands?: ReturnType<import("../commands.js").createCommands>,
 *   run?: (p: Promise<unknown>) => unknown}} ctx
 * @returns {{render: () => void, show: (view: "video"|"board") => void}}
 */
export function mountStage(stage, { model, media, bar, body, commands, run }) {
  const showVideo = el("button", { type: "button", class: "btn btn-small stage-switch", testid: "stage-show-video",
    text: "Video", "aria-pressed": "false", onclick: () => choose("video") });
  const showBoard = el("button", { type: "button", class: "btn btn-small stage-switch", testid: "stage-show-board",
    text: "Whiteboard", "aria-pressed": "false", onclick: () => choose("board") });
  // A student looking at the other view than the staff's gets a way back to it.
  const follow = el("button", { type: "button", class: "btn btn-small", testid: "stage-follow", hidden: true,
    text: "Back to the class view", onclick: () => show(model.stage) });
  const fullscreen = el("button", { type: "button", class: "btn btn-small", testid: "stage-fullscreen", text: "Fullscreen",
    title: "Show the stage on the whole screen", onclick: () => toggleFullscreen() });
  bar.append(el("span", { class: "stage-label muted-text", text: "On stage:" }),
    el("div", { class: "stage-switches", role: "group", "aria-label": "On stage" }, showVideo, showBoard), follow, fullscreen);
  fullscreen.hidden = !document.fullscreenEnabled;
  document.addEventListener("fullscreenchange", () => {
    fullscreen.textContent = document.fullscreenElement === stage ? "Exit fullscreen" : "Fullscreen";
    layoutTiles();
  });

  /** @type {string[]} the keys of the spotlight's and the screen shares' tiles last drawn */
  let featured = [];
  /** The staff's choice last seen: a new one (or a return to the main room) is applied once. */
  let followed = "";

  /** Staff in the main room choose for everyone; anyone else chooses for their own page. */
  const choosesForAll = () => model.isStaff && !model.breakoutOf.has(model.me?.identity ?? "");

  /** A student in the main room looking at the other view than the staff's. */
  function awayFromTheClassView() {
    const me = model.me;
    return me !== null && !model.isStaff && !model.breakoutOf.has(me.identity) && stage.dataset.stage !== model.stage;
  }

  function choose(view) {
    show(view);
    if (choosesForAll() && view !== model.stage && commands && run) run(commands.setStage(view));
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else stage.requestFullscreen().catch(() => {});
  }

  function show(view) {
    stage.dataset.stage = view;
    showVideo.setAttribute("aria-pressed", String(view === "video"));
    showBoard.setAttribute("aria-pressed", String(view === "board"));
    follow.hidden = !awayFromTheClassView();
    layoutTiles();
  }

  /** Size the video grid from the stage's box (the video view only; the strip sizes itself). */
  function layoutTiles() {
    const tiles = body.querySelector("[data-testid=media-tiles]");
    if (!tiles || stage.dataset.stage !== "video") return;
    const all = [...tiles.children];
    const large = all.filter((t) => t.dataset.spotlight === "true" || t.dataset.source === "screen");
    const small = all.length - large.length;
    const top = tiles.getBoundingClientRect().top - body.getBoundingClientRect().top + body.scrollTop;
    const width = tiles.clientWidth;
    const height = Math.max(MIN_TILE_PX, body.clientHeight - top - GAP_PX);
    // A spotlight or screen share gets the room the small tiles leave, at least 60 % of it.
    const largeHeight = large.length ? Math.floor((small ? height * 0.7 : height) / large.length) - GAP_PX : 0;
    const rest = large.length ? height - (largeHeight + GAP_PX) * large.length : height;
    const { tileWidth } = small ? fitGrid(small, width, Math.max(rest, MIN_TILE_PX)) : { tileWidth: width };
    tiles.style.setProperty("--tile-w", `${tileWidth}px`);
    tiles.style.setProperty("--large-h", `${Math.max(largeHeight, MIN_TILE_PX)}px`);
  }
  new ResizeObserver(() => layoutTiles()).observe(body);

  function render() {
    // A spotlight or a screen share that starts takes the stage; one that ends does not (a
    // viewer who went back to the whiteboard stays there).
    const tiles = tilesOf(media, model);
    const now = tiles.filter((t) => t.spotlight || t.source === "screen").map((t) => t.key);
    if (now.some((key) => !featured.includes(key))) show("video");
    featured = now;
    // The staff's choice takes every page in the main room when it changes, and on (re)joining.
    const inMain = model.me !== null && !model.breakoutOf.has(model.me.identity);
    const choice = `${model.stage} ${model.stageChanges} ${model.epoch} ${inMain}`;
    if (model.me !== null && choice !== followed) {
      if (inMain) show(model.stage);
      followed = choice;
    }
    const forAll = choosesForAll();
    showVideo.title = forAll ? "Put the video on everyone's stage" : "Show the video on my screen";
    showBoard.title = forAll ? "Put the whiteboard on everyone's stage" : "Show the whiteboard on my screen";
    follow.hidden = !awayFromTheClassView();
    showVideo.setAttribute("aria-pressed", String(stage.dataset.stage === "video"));
    showBoard.setAttribute("aria-pressed", String(stage.dataset.stage === "board"));
    // The tiles are drawn by the media view in the same render pass: size them once it is done.
    requestAnimationFrame(layoutTiles);
  }

  return { render, show };
}
