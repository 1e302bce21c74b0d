// The client's command vocabulary: one method per command in docs/protocol.md, each naming the
// action for error messages. Fields the protocol types `x | nil` are always sent, as nil when unset.
// Every method returns the Connection's promise: the ack's event ids, or a CommandError.

/** @param {Pick<import("./protocol.js").Connection, "send" | "request">} conn */
export function createCommands(conn) {
  const send = (type, fields, label) => conn.send(type, fields, label);
  return {
    /** `room`: staff post into an open breakout room (omitted: where they are). */
    sendChat: (text, to, room = null) =>
      send("chat.send", room ? { text, to: to || null, room } : { text, to: to || null }, "Send message"),
    raiseHand: () => send("hand.raise", {}, "Raise hand"),
    lowerHand: (identity = null) => send("hand.lower", { identity }, "Lower hand"),
    callNext: () => send("hand.call_next", {}, "Call on next"),
    lowerAllHands: () => send("hand.lower_all", {}, "Lower all hands"),
    askQuestion: (text, room = null) => send("question.ask", room ? { text, room } : { text }, "Ask question"),
    upvote: (questionId) => send("question.upvote", { question_id: questionId }, "Upvote"),
    unvote: (questionId) => send("question.unvote", { question_id: questionId }, "Remove upvote"),
    markAnswered: (questionId) => send("question.answer", { question_id: questionId }, "Mark answered"),
    dismissQuestion: (questionId) => send("question.dismiss", { question_id: questionId }, "Dismiss question"),
    pinQuestion: (questionId, pinned) =>
      send("question.pin", { question_id: questionId, pinned }, pinned ? "Pin question" : "Unpin question"),
    openPoll: (question, options, multiple) => send("poll.open", { question, options, multiple }, "Open poll"),
    answerPoll: (pollId, choices) => send("poll.answer", { poll_id: pollId, choices }, "Answer poll"),
    closePoll: (pollId) => send("poll.close", { poll_id: pollId }, "Close poll"),
    muteChat: (identity, muted) =>
      send("chat.mute", { identity, muted }, identity === null ? (muted ? "Mute all" : "Unmute all") : muted ? "Mute chat" : "Unmute chat"),
    removeParticipant: (identity, reason) => send("participant.remove", { identity, reason }, "Remove participant"),
    lockRoom: (locked) => send("room.lock", { locked }, locked ? "Lock room" : "Unlock room"),
    setWaitingRoom: (enabled) =>
      send("room.waiting_room", { enabled }, enabled ? "Turn on the waiting room" : "Turn off the waiting room"),
    /** `identity` null: admit everyone waiting. */
    admitWaiting: (identity) => send("waiting.admit", { identity }, "Let in"),
    denyWaiting: (identity) => send("waiting.deny", { identity }, "Turn away"),
    revokeInvite: (inviteId) => send("invite.revoke", { invite_id: inviteId }, "Close the class link"),
    lockBoard: (board, locked) => send("board.lock", { board, locked }, locked ? "Lock whiteboard" : "Unlock whiteboard"),
    clearBoard: (board) => send("board.clear", { board }, "Clear whiteboard"),
    snapshotBoard: (board) => send("board.snapshot", { board }, "Save whiteboard snapshot"),
    /** Resolves with a short-lived, single-use download path for one saved snapshot. */
    snapshotLink: (board, snapshotId) =>
      conn.request("board.snapshot_link", { board, snapshot_id: snapshotId }, "Download snapshot").then((ack) => ack.url),
    setMediaMode: (mode) => send("media.mode", { mode }, mode === "lecture" ? "Lecture mode" : "Discussion mode"),
    muteMedia: (identity, source, muted) =>
      send("media.mute", { identity, source, muted },
        `${muted ? "Mute" : "Unmute"} ${identity === null ? "all students' " : ""}${source}`),
    permitMedia: (identity, allowed) =>
      send("media.permit", { identity, allowed }, allowed ? "Allow to publish" : "Revoke publishing"),
    spotlight: (identity) => send("media.spotlight", { identity }, identity === null ? "Clear spotlight" : "Spotlight"),
    /** Put `view` ("video" or "board") on every page's stage (staff). */
    setStage: (view) => send("stage.set", { view }, view === "board" ? "Put the whiteboard on stage" : "Put the video on stage"),
    /**
     * Open breakout rooms (docs/protocol.md, "Breakout rooms"). `options`: `members` ({identity:
     * room}), `auto` ({apart, together}: assign everyone else), `duration_s`, `warn_s`,
     * `self_select`, `cap`; unset ones are sent as nil.
     */
    openBreakouts: (rooms, options = {}) =>
      send("breakout.open", {
        rooms,
        members: options.members ?? null,
        auto: options.auto ?? null,
        duration_s: options.duration_s ?? null,
        warn_s: options.warn_s ?? null,
        self_select: options.self_select ?? null,
        cap: options.cap ?? null,
      }, "Open breakout rooms"),
    /** Move several participants at once: `{identity: room | null}` (null: the main room). */
    assignBreakouts: (members) => send("breakout.assign", { members }, "Move to breakout rooms"),
    /** Assign every student in the main room to the open rooms, balanced at random. */
    autoAssignBreakouts: (auto) => send("breakout.assign", { auto }, "Assign automatically"),
    moveToBreakout: (identity, room) => send("breakout.move", { identity, room }, "Move to breakout room"),
    chooseBreakout: (room) => send("breakout.choose", { room }, "Choose a room"),
    setBreakoutTimer: (remainingS) => send("breakout.timer", { remaining_s: remainingS },
      remainingS == null ? "Remove the timer" : "Set the timer"),
    broadcastToBreakouts: (text) => send("breakout.broadcast", { text }, "Broadcast"),
    askForHelp: () => send("breakout.help", {}, "Ask for help"),
    helpDone: (identity) => send("breakout.help_done", { identity }, "Clear help request"),
    closeBreakouts: () => send("breakout.close", {}, "Close breakout rooms"),
    shareBreakoutBoards: (shared) => send("breakout.share_boards", { shared }, shared ? "Share boards" : "Stop sharing boards"),
    /** Saved groups (kept per teacher across sessions): `list` resolves with `[{name, rooms, members}]`. */
    saveGroups: (name, rooms, members) => send("breakout.groups.save", { name, rooms, members }, "Save groups"),
    listGroups: () => conn.request("breakout.groups.list", {}, "List saved groups").then((ack) => ack.groups ?? []),
    deleteGroups: (name) => send("breakout.groups.delete", { name }, "Delete saved groups"),
    endSession: (reason) => send("session.end", { reason }, "End session"),
  };
}
