// The classroom page's composition root: read the token from the link, open the Connection, fold
// its frames into the RoomModel, and redraw the panels.

import { createCommands } from "./commands.js";
import { byTestId } from "./dom.js";
import { MediaSession } from "./media.js";
import { Connection } from "./protocol.js";
import { RoomModel } from "./state.js";
import { decodeTokenClaims, takeToken } from "./token.js";
import { mountChat } from "./views/chat.js";
import { deferred } from "./views/deferred.js";
import { mountReasonDialog } from "./views/dialog.js";
import { mountHeader } from "./views/header.js";
import { mountLeaveDialog } from "./views/leave.js";
import { mountMedia, tilesOf } from "./views/media.js";
import { mountNotifications } from "./views/notifications.js";
import { mountPolls } from "./views/polls.js";
import { mountQA } from "./views/qa.js";
import { mountRoster } from "./views/roster.js";
import { mountShortcuts } from "./views/shortcuts.js";
import { mountStage } from "./views/stage.js";
import { mountTabs } from "./views/tabs.js";
import { mountExport } from "./views/export.js";
import { mountToasts } from "./views/toasts.js";
import { mountWaiting } from "./views/waiting.js";

const model = new RoomModel();
const toasts = mountToasts(byTestId("toasts"));
let connection = null;

/** Run a command; report its failure as a toast. Resolves true on ack, false on error. */
function run(promise) {
  return promise.then(
    () => true,
    (err) => {
      toasts.error(err.code ?? "error", err.message, err.label, err.command);
      return false;
    },
  );
}

const notConnected = (label) =>
  Promise.reject(Object.assign(new Error("not connected"), { code: "not_connected", label }));
const commands = createCommands({
  send: (type, fields, label) => (connection ? connection.send(type, fields, label) : notConnected(label)),
  request: (type, fields, label) => (connection ? connection.request(type, fields, label) : notConnected(label)),
});
// Whether the connection is live, and who wants to hear when it is live again (chat's queue).
const liveListeners = [];
let live = false;
const link = { live: () => live, onLive: (listener) => liveListeners.push(listener) };
const ctx = { model, commands, run, toasts, link, askReason: mountReasonDialog(document.body) };
const media = new MediaSession({
  request: (type, fields, label) =>
    connection
      ? connection.request(type, fields, label)
      : Promise.reject(Object.assign(new Error("not connected"), { code: "not_connected", label })),
  onChange: () => scheduleRender(),
  onError: (err) => toasts.error(err.code ?? "error", err.message, err.label, err.command),
});
const confirmLeave = mountLeaveDialog(document.body);
const header = mountHeader(document.querySelector("header"), {
  ...ctx,
  onLeave: () => confirmLeave().then((leave) => leave && connection?.leave()),
  onRejoin: () => window.location.reload(),
});
// The whiteboard (with the Yjs stack, half of the page's bytes) and the breakout panel load once
// the class is Live: on a slow link they do not delay joining (tests/e2e/test_throttled_3g_browser.py).
const whiteboard = deferred(
  () => import("./views/whiteboard.js").then((m) => m.mountWhiteboard(document.getElementById("whiteboard-panel"), ctx)),
  () => scheduleRender(),
);
const breakoutPanel = document.getElementById("breakout-panel");
const breakouts = deferred(
  () => import("./views/breakouts.js").then((m) =>
    m.mountBreakouts(breakoutPanel, { ...ctx, showBoard: (board) => whiteboard.call("show", board) })),
  () => scheduleRender(),
);
function loadDeferred() {
  for (const panel of [whiteboard, breakouts]) {
    panel.load().catch((err) => {
      console.error("liveclass: a panel did not load", err);
      toasts.error("connect_failed", "");
    });
  }
}
const stage = mountStage(document.getElementById("stage"), {
  model, media, bar: document.getElementById("stage-bar"), body: document.getElementById("stage-body"), commands, run,
});
const panel = (id) => document.getElementById(id);
const me = () => model.me?.identity;
const tabs = mountTabs(document.getElementById("panel-tabs"), {
  model,
  // Staff start on People (the hands), students on Chat.
  initial: (staff) => (staff ? "people" : "chat"),
  tabs: [
    { key: "people", label: "People", panel: panel("roster-panel"),
      news: () => (model.isStaff ? model.hands.filter((h) => h.identity !== me()).map((h) => h.identity) : []) },
    { key: "chat", label: "Chat", panel: panel("chat-panel"),
      news: () => model.chat.filter((m) => m.from !== me()).map((m) => String(m.id)) },
    { key: "qa", label: "Q&A", panel: panel("qa-panel"),
      news: () => [...model.questions.values()].filter((q) => q.author !== me()).map((q) => String(q.question_id)) },
    { key: "polls", label: "Polls", panel: panel("polls-panel"),
      news: () => (model.isStaff ? [] : [...model.polls.keys()].map(String)) },
    // Staff plan and run breakout rooms in a tab; a student's breakout bar sits on the stage.
    { key: "breakouts", label: "Rooms", panel: breakoutPanel, available: () => model.isStaff,
      news: () => model.breakoutHelp.map((h) => h.identity) },
  ],
});
const notifications = mountNotifications({
  model, toasts, tabs, slot: document.querySelector(".header-side") ?? document.querySelector("header"), storage: window.localStorage,
});
/** The staff's breakout panel is a tab beside the others; a student's is a bar above the stage. */
const breakoutPlace = {
  render() {
    const home = model.isStaff ? panel("side-body") : panel("stage-body");
    if (breakoutPanel.parentElement !== home) home.prepend(breakoutPanel);
  },
};
const waiting = mountWaiting(document.getElementById("roster-panel"), document.querySelector("header"), ctx);
/** The join waited in the waiting room: its whiteboard was refused then and opens on the welcome. */
let waited = false;
const views = [
  header,
  breakoutPlace,
  breakouts,
  mountMedia(document.getElementById("media-panel"), { ...ctx, media }),
  whiteboard,
  mountRoster(document.getElementById("roster-panel"), { ...ctx, handSlot: document.getElementById("stage-bar") }),
  mountChat(document.getElementById("chat-panel"), ctx),
  mountQA(document.getElementById("qa-panel"), ctx),
  mountPolls(document.getElementById("polls-panel"), ctx),
  tabs,
  stage,
  mountShortcuts(document),
  waiting,
];

// Frames arrive in bursts (a resume replays many events); draw once per burst.
let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => {
    renderQueued = false;
    for (const view of views) {
      try {
        view.render();
      } catch (err) {
        console.error("liveclass: render failed", err);
      }
    }
  }, 0);
}

function onFrame(frame, { replay = false } = {}) {
  switch (frame.t) {
    case "waiting":
      waited = true;
      break;
    case "welcome":
      model.applyWelcome(frame);
      if (waited) {
        waited = false;
        // A board that connected while we waited was refused; one not loaded yet connects now.
        whiteboard.view?.reopen();
      }
      media.setMayPublish(model.mayPublish(model.me));
      media.connected({ iceServers: frame.ice_servers, me: model.me });
      break;
    case "resumed":
      model.applyResumed(frame);
      media.connected({ iceServers: frame.ice_servers, me: model.me });
      break;
    case "view": {
      // My place changed (a breakout room opened, closed, or staff moved me): this room's view
      // replaces the old one; chat, Q&A and the whiteboard follow on the next render. The event
      // that moved me may have come first (then it said so) or not at all (the view covers it).
      const before = model.place;
      model.applyView(frame);
      const now = model.place;
      if (now !== before) toasts.info(now ? `You are now in breakout room ${now}` : "You are back in the main room", "breakout");
      media.setMayPublish(model.mayPublish(model.me));
      break;
    }
    case "media.offer":
      media.handleOffer(frame);
      return;
    case "media.layers":
      media.handleLayers(frame);
      return;
    case "media.reset":
      toasts.info("Reconnecting media…", "media-reset");
      media.reset();
      break;
    case "event": {
      const notice = model.applyEvent(frame);
      notifications.onEvent(frame, replay);
      if (notice && !replay && (notice.kind === "called" || notice.kind === "info")) toasts.info(notice.text, notice.code ?? notice.kind);
      // Lecture mode or a permission changed: tracks held back are offered once allowed.
      media.setMayPublish(model.mayPublish(model.me));
      break;
    }
    case "presence":
      model.applyPresence(frame);
      break;
    case "tally":
      model.applyTally(frame);
      break;
    case "error":
      toasts.error(frame.code, frame.message);
      break;
    default:
      return;
  }
  scheduleRender();
}

// The breakout countdown runs on the server's clock; only it is redrawn each second.
setInterval(() => {
  if (model.breakoutEndsAt === null) return;
  breakouts.view?.tick();
  header.tick();
}, 1000);

function onStatus(status) {
  header.setStatus(status);
  const wasLive = live;
  live = status.state === "live";
  if (live && !wasLive) {
    loadDeferred();
    for (const listener of liveListeners) listener();
  }
  waiting.setStatus(status);
  // Once the class is over for this page (ended, removed, left, refused), so are its whiteboard
  // and its media; a dropped socket takes the media connections with it (the SFU closes them).
  if (status.state === "closed") {
    whiteboard.call("stop");
    media.stop();
  } else if (status.state !== "live") {
    media.disconnected();
  }
  scheduleRender();
}

function start() {
  // The token leaves the address bar at once (a shared screen or a copied URL would carry it) and
  // stays with this tab in sessionStorage, so a reload joins again.
  const token = takeToken(window.location, window.history, window.sessionStorage);
  if (!token) {
    onStatus({ state: "closed", code: 0, kind: "error", error: { code: "no_token", message: "This link has no access token; ask for a join link" } });
    return;
  }
  let claims;
  try {
    claims = decodeTokenClaims(token);
  } catch (err) {
    onStatus({ state: "closed", code: 0, kind: "error", error: { code: "token_invalid", message: err.message } });
    return;
  }
  model.roomId = claims.grants.room;
  // Staff download the class from here, during it and on the end screen (even after a reload).
  const staff = claims.grants.role === "teacher" || claims.grants.role === "assistant";
  const downloads = mountExport(document.querySelector(".header-side"), { token, room: claims.grants.room, staff, toasts });
  if (staff) header.addToEnd(downloads.bar, downloads.menu);
  // Shown before the welcome arrives; the room's recorded name (RoomView class_name) wins after.
  if (typeof claims.class_name === "string") model.className = claims.class_name;
  // Staff's tokens from the dev pages name the class link, which they may revoke.
  if (typeof claims.invite_id === "string") model.inviteId = claims.invite_id;
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  connection = new Connection({
    url: `${scheme}//${window.location.host}/ws`,
    token,
    room: claims.grants.room,
    onFrame,
    onStatus,
  });
  whiteboard.call("connect", {
    serverUrl: `${scheme}//${window.location.host}/whiteboard/${encodeURIComponent(claims.grants.room)}`,
    token,
    room: claims.grants.room,
    identity: claims.sub ?? "",
    name: claims.name ?? claims.sub ?? "",
  });
  window.addEventListener("online", () => connection.retryNow());
  // A new link in the same tab (only the fragment changes) must start a new session.
  window.addEventListener("hashchange", () => window.location.reload());
  // A handle for debugging and end-to-end tests; the page itself never reads it. It holds no
  // token: the Connection keeps its own private, and the whiteboard handle exposes no provider.
  window.liveclass = {
    model,
    connection,
    /** The whiteboard's handle, once its module is loaded (after the class is Live). */
    get whiteboard() {
      return whiteboard.view?.handle;
    },
    media,
    tabs,
    notifications,
    /** The video tiles as drawn, in order: `{identity, source, local, spotlight, muted}`. */
    tiles: () => tilesOf(media, model).map(({ identity, source, local, spotlight }) =>
      ({ identity, source, local, spotlight, muted: model.mediaMutedSources(identity) })),
  };
  connection.start();
}

start();
scheduleRender();
