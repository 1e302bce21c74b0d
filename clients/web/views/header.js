// The header: room, who you are, the connection state, how many are online, room-wide flags (the
// staff's lecture/discussion switch, the breakout room you are in), and a banner once the session
// is over for you.

import { el } from "../dom.js";
import { MESSAGES, explainClosed } from "../messages.js";
import { formatDuration } from "../state.js";
import { rejoinButton } from "./leave.js";

/**
 * What the connection state reads as: `data-state` for tests and styling, and the words shown.
 * @param {import("../protocol.js").ConnectionStatus} status
 * @param {import("../state.js").RoomModel} model
 * @param {number} now
 * @returns {{state: string, text: string, final: boolean}}
 */
export function describeStatus(status, model, now) {
  switch (status.state) {
    case "connecting":
      return status.attempt > 0
        ? { state: "reconnecting", text: "Reconnecting…", final: false }
        : { state: "connecting", text: "Connecting…", final: false };
    case "live":
      return { state: "live", text: "Live", final: false };
    case "waiting":
      return { state: "waiting", text: "Waiting to be let in", final: false };
    case "reconnecting": {
      const seconds = Math.max(0, Math.ceil((status.retryAt - now) / 1000));
      return { state: "reconnecting", text: `Reconnecting in ${seconds}s`, final: false };
    }
    case "closed": {
      // The server's words are for developers ("malformed token: ..."): say what the code means.
      const error = status.error;
      switch (status.kind) {
        case "ended": {
          const reason = model.ended?.reason;
          return { state: "ended", text: reason ? `Session ended: ${reason}` : "Session ended", final: true };
        }
        case "removed": {
          const reason = model.removedReason;
          return { state: "removed", text: reason ? `Removed: ${reason}` : explainClosed(error, "You were removed"), final: true };
        }
        case "left":
          return { state: "left", text: "You left the class", final: true };
        case "denied":
          return { state: "removed", text: "The teacher did not let you in to this class", final: true };
        case "locked":
          return { state: "error", text: explainClosed(error, "The class is locked"), final: true };
        case "replaced":
          return { state: "closed", text: explainClosed(error, "Opened in another tab or device"), final: true };
        case "unauthorized":
          return { state: "error", text: explainClosed(error ?? { code: "token_invalid" }, ""), final: true };
        case "error":
          return { state: "error", text: explainClosed(error, "Cannot join"), final: true };
        default:
          return { state: "closed", text: explainClosed(error, "Disconnected"), final: true };
      }
    }
    default:
      return { state: "error", text: "Unknown state", final: true };
  }
}

/**
 * @param {HTMLElement} root  the <header>
 * @param {{model: import("../state.js").RoomModel, onLeave: () => void,
 *   commands: ReturnType<import("../commands.js").createCommands>, run: (p: Promise<unknown>) => Promise<unknown>}} ctx
 */
export function mountHeader(root, { model, onLeave, onRejoin, commands, run }) {
  const className = el("span", { class: "class-name", testid: "class-name", hidden: true });
  const roomId = el("span", { class: "room-id", testid: "room-id" });
  const meName = el("span", { class: "me-name", testid: "me-name" });
  const meRole = el("span", { class: "badge", testid: "me-role" });
  const connState = el("span", { class: "conn-state", testid: "conn-state", "data-state": "connecting", role: "status" });
  const onlineCount = el("span", { class: "online-count", testid: "online-count" });
  const locked = el("span", { class: "badge badge-warn", testid: "room-locked", text: "Locked", hidden: true });
  const mutedAll = el("span", { class: "badge badge-warn", testid: "room-chat-muted", text: "Student chat muted", hidden: true });
  const lecture = el("span", { class: "badge badge-warn", testid: "media-lecture", text: "Lecture mode", hidden: true,
    title: "Only the staff share video and sound" });
  const modeToggle = el("button", { type: "button", class: "btn btn-small toggle", testid: "media-mode", hidden: true,
    "aria-pressed": "false",
    onclick: () => run(commands.setMediaMode(model.mediaMode === "lecture" ? "discussion" : "lecture")) });
  const myRoom = el("span", { class: "badge", testid: "my-room", hidden: true });
  // The breakout countdown stays in sight wherever one scrolls (the breakout panel has the controls).
  const countdown = el("span", { class: "badge breakout-countdown", testid: "header-countdown", hidden: true,
    title: "Time left in breakout rooms" });
  const leave = el("button", { type: "button", class: "btn btn-small", testid: "leave", text: "Leave", onclick: onLeave });
  const bannerText = el("span", { testid: "banner-text" });
  const rejoin = rejoinButton(onRejoin);
  const banner = el("div", { class: "banner", testid: "banner", hidden: true, role: "alert" }, bannerText, " ", rejoin);
  // The end of the class is one card in the middle of the page, said once (the header's state and
  // the banner step aside), and again after a reload: the server refuses the join with 4409.
  const endTitle = el("h2", { class: "end-title", testid: "end-title" });
  const endTime = el("p", { class: "end-time", testid: "end-time" });
  const endReason = el("p", { class: "end-reason", testid: "end-reason", hidden: true });
  const endExtras = el("div", { class: "end-extras" });
  const endCard = el("div", { class: "end-screen", testid: "end-screen", hidden: true },
    el("section", { class: "end-card", role: "alert", "aria-labelledby": "end-title" },
      endTitle,
      el("p", { class: "end-text", testid: "end-text", text: MESSAGES.session_ended.text }),
      endTime,
      endReason,
      el("p", { class: "end-todo", testid: "end-todo", text: MESSAGES.session_ended.todo }),
      endExtras));
  endTitle.id = "end-title";
  /** When the class ended, as this tab first learned it (kept across a reload of the tab). */
  let endedAt = null;
  /** @type {{node: HTMLElement, from: HTMLElement} | null} */
  let toEnd = null;

  root.append(
    el("div", { class: "header-main" },
      el("h1", { class: "brand" }, "liveclass"),
      className,
      el("span", { class: "header-room" }, "Room ", roomId),
      locked,
      mutedAll,
      lecture,
      myRoom,
      countdown,
    ),
    el("div", { class: "header-side" },
      el("span", { class: "header-me" }, meName, " ", meRole),
      modeToggle,
      onlineCount,
      connState,
      leave,
    ),
  );
  root.after(banner);
  document.body.append(endCard);

  /** @type {import("../protocol.js").ConnectionStatus} */
  let status = { state: "connecting", attempt: 0 };
  let ticker = null;

  function render() {
    const view = describeStatus(status, model, Date.now());
    connState.dataset.state = view.state;
    connState.textContent = view.text;
    roomId.textContent = model.roomId || "…";
    className.textContent = model.className;
    className.hidden = !model.className;
    document.title = model.className ? `${model.className} · liveclass` : "liveclass";
    meName.textContent = model.me?.name ?? "";
    meRole.textContent = model.me?.role ?? "";
    meRole.hidden = !model.me;
    // Presence is not replayed while the socket is down: the count is the last one known.
    const stale = status.state !== "live";
    onlineCount.textContent = stale ? `${model.online} online (last known)` : `${model.online} online`;
    onlineCount.dataset.stale = String(stale);
    onlineCount.title = stale ? "Not updated while reconnecting" : "";
    onlineCount.hidden = !model.me;
    locked.hidden = !model.locked;
    mutedAll.hidden = !model.chatMutedAll;
    const isLecture = model.mediaMode === "lecture";
    lecture.hidden = !model.me || !isLecture;
    modeToggle.hidden = !model.isStaff;
    modeToggle.setAttribute("aria-pressed", String(isLecture));
    modeToggle.textContent = isLecture ? "Lecture mode: on" : "Lecture mode: off";
    modeToggle.title = isLecture ? "Switch to discussion: everyone may share video and sound" : "Switch to lecture: only the staff share video and sound";
    const room = model.me ? model.breakoutOf.get(model.me.identity) ?? null : null;
    myRoom.hidden = !model.me || !model.breakouts.length;
    myRoom.dataset.room = room ?? "";
    myRoom.textContent = room ? `Breakout room: ${room}` : "Main room";
    tick();
    const ended = view.state === "ended";
    leave.hidden = view.final;
    connState.hidden = ended;
    banner.hidden = !view.final || ended;
    renderEnd(ended);
    banner.dataset.state = view.state;
    bannerText.textContent = view.text;
    // Joining again can work after leaving, or to take the class back from another tab.
    rejoin.hidden = !(status.state === "closed" && (status.kind === "left" || status.kind === "replaced"));
    document.body.dataset.conn = view.state;
    document.body.dataset.joined = String(Boolean(model.me));
  }

  function renderEnd(ended) {
    endCard.hidden = !ended;
    if (!ended) return;
    if (toEnd && toEnd.node.parentElement !== endExtras) {
      endExtras.append(toEnd.node);
      toEnd.from.hidden = true;
    }
    endedAt ??= rememberedEnd(model.roomId);
    endTitle.textContent = model.className || `Room ${model.roomId}`;
    endTime.textContent = whenText(endedAt, Date.now());
    const reason = model.ended?.reason;
    endReason.hidden = !reason;
    endReason.textContent = reason ? `The teacher said: ${reason}` : "";
  }

  function tick() {
    const left = model.breakoutRemainingMs();
    countdown.hidden = left === null;
    if (left === null) return;
    countdown.textContent = `${formatDuration(left)} left`;
    countdown.dataset.warning = String(model.breakoutWarning());
  }

  return {
    render,
    tick,
    /**
     * Once the class has ended, `node` (the staff's downloads) moves onto the end card and `from`
     * (the header menu it sat in) goes.
     * @param {HTMLElement} node
     * @param {HTMLElement} from
     */
    addToEnd(node, from) {
      toEnd = { node, from };
      render();
    },
    /** @param {import("../protocol.js").ConnectionStatus} next */
    setStatus(next) {
      status = next;
      clearInterval(ticker);
      ticker = next.state === "reconnecting" ? setInterval(render, 1000) : null;
      render();
    },
  };
}

/**
 * When the class in `room` ended, as this tab first saw it: a reload (refused with 4409) shows the
 * same time, not the time of the reload.
 * @param {string} room
 * @returns {number}
 */
function rememberedEnd(room) {
  const key = `liveclass.ended.${room}`;
  try {
    const kept = Number(window.sessionStorage.getItem(key));
    if (kept > 0) return kept;
    const now = Date.now();
    window.sessionStorage.setItem(key, String(now));
    return now;
  } catch {
    return Date.now();
  }
}

/**
 * When something happened, in the reader's local time: "Today at 4:13 PM", or with the date.
 * @param {number} at
 * @param {number} now
 */
function whenText(at, now) {
  const then = new Date(at);
  const time = then.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  if (then.toDateString() === new Date(now).toDateString()) return `Today at ${time}`;
  return `${then.toLocaleDateString([], { weekday: "long", day: "numeric", month: "long" })} at ${time}`;
}
