// What the page says when something goes wrong: one plain sentence per error, with what to do.
//
// The server's error frames carry a stable `code` (docs/protocol.md, "Error codes") and an English
// `message` written for developers ("malformed token: Invalid crypto padding"); the browser's own
// errors carry a DOMException `name`. Neither is shown: every code maps here to a sentence a
// student understands. tests/unit/test_web_messages.py holds this table to the documented codes.
//
// No DOM here, so the table can be read by a test without a browser.

/**
 * A sentence per code: `text` says what happened, `todo` what to do about it.
 * Keys: every protocol error code, then the page's own (client-side) codes, then the browser's
 * DOMException names that getUserMedia / getDisplayMedia / RTCPeerConnection raise.
 * @type {Readonly<Record<string, {text: string, todo: string}>>}
 */
export const MESSAGES = Object.freeze({
  // -- protocol error codes (docs/protocol.md, "Error codes") --------------------------------------
  text_frame: { text: "The page sent something the server could not read.", todo: "Reload the page." },
  bad_frame: { text: "The page sent something the server could not read.", todo: "Reload the page." },
  frame_too_large: { text: "That was too long to send.", todo: "Make it shorter and try again." },
  unknown_type: { text: "This page is older than the server.", todo: "Reload the page to get the new version." },
  missing_field: { text: "Something was left out.", todo: "Fill in every field and try again." },
  bad_field: { text: "Something you entered was not accepted.", todo: "Check what you typed and try again." },
  rate_limited: { text: "That was a lot at once.", todo: "Wait a moment, then try again." },
  not_joined: { text: "You are not in the class yet.", todo: "Wait until the page says Live, then try again." },
  already_joined: { text: "This page is already in the class.", todo: "Reload the page if something looks wrong." },
  token_invalid: { text: "This join link does not work: it is incomplete or damaged.", todo: "Ask your teacher for a new link." },
  token_expired: { text: "This join link has expired.", todo: "Ask your teacher for a new link." },
  token_wrong_room: { text: "This join link is for another class.", todo: "Ask your teacher for the link to this class." },
  participant_removed: { text: "You were removed from this class.", todo: "Talk to your teacher if you think this is a mistake." },
  connection_replaced: { text: "You opened the class in another tab or device.", todo: "Use that one, or reload this page to continue here." },
  room_locked: { text: "The class is locked: nobody new can join now.", todo: "Ask your teacher to unlock it, then reload this page." },
  join_denied: { text: "The staff did not let you into this class.", todo: "Talk to your teacher if you think this is a mistake." },
  invite_revoked: { text: "This class link has been closed by the teacher.", todo: "Ask your teacher for a new link." },
  session_ended: { text: "The class has ended.", todo: "You can close this page." },
  not_allowed: { text: "Your role in this class does not allow that.", todo: "Ask your teacher if you need it." },
  chat_muted: { text: "The teacher has turned off chat for you.", todo: "You can still raise your hand, or write to the staff: choose them under To." },
  no_such_participant: { text: "That person is no longer in the class.", todo: "Pick someone who is here." },
  no_such_question: { text: "That question is gone: it was removed or is no longer kept.", todo: "Look at the current list." },
  question_closed: { text: "That question has been answered, so it takes no more votes.", todo: "Vote for another question." },
  already_voted: { text: "You already voted for this question.", todo: "Nothing more to do." },
  not_voted: { text: "You have not voted for this question.", todo: "Nothing to take back." },
  no_such_poll: { text: "That poll is gone.", todo: "Look at the current polls." },
  poll_closed: { text: "This poll is closed.", todo: "Its results are shown in Polls." },
  invalid_choice: { text: "That answer does not fit this poll.", todo: "Pick one option (or several, if the poll allows it)." },
  no_raised_hands: { text: "Nobody has a hand raised.", todo: "Wait for a student to raise a hand." },
  breakouts_open: { text: "Breakout rooms are already open.", todo: "Close them first, then open new ones." },
  no_such_breakout: { text: "That breakout room is not open.", todo: "Pick a room that is open." },
  breakout_full: { text: "That breakout room is full.", todo: "Pick another room." },
  limit_reached: { text: "The class has reached a limit.", todo: "Remove or close something old first." },
  unavailable: { text: "The server is busy for a moment.", todo: "Wait a few seconds and try again." },
  internal: { text: "Something went wrong on the server.", todo: "Try again; if it keeps happening, tell your teacher." },
  bad_sdp: { text: "Your browser and the server could not agree on how to send video.", todo: "Reload the page, or try another browser." },
  unsupported_codec: { text: "Your browser offers no video format the server can pass on.", todo: "Try an up-to-date Chrome, Edge or Firefox." },
  stale_answer: { text: "Video was being set up twice at once.", todo: "Wait a moment; it sorts itself out." },
  no_transport: { text: "Video was not set up yet.", todo: "Wait a moment and try again." },
  media_unavailable: { text: "Video and sound are not available right now; the rest of the class works.", todo: "Try again in a minute." },

  // -- the page's own codes -------------------------------------------------------------------------
  not_connected: { text: "You are not connected right now.", todo: "Wait until the page says Live, then try again." },
  disconnected: { text: "The connection dropped before the server answered.", todo: "Check it once the page says Live again." },
  timeout: { text: "The server did not answer in time.", todo: "Check your connection and try again." },
  connect_failed: { text: "The page cannot reach the server.", todo: "Check your internet connection; the page keeps trying." },
  no_token: { text: "This link has no access token.", todo: "Ask your teacher for a join link." },
  no_publish_grant: { text: "Your join link does not let you share video or sound.", todo: "Ask your teacher if you need to." },
  no_devices: { text: "This browser gives no access to cameras or microphones.", todo: "Open the class in an up-to-date Chrome, Edge or Firefox." },
  media_failed: {
    text: "Video and sound cannot connect: your network blocks the connection to the class's media server.",
    todo: "Try another network (or turn off a VPN or firewall), then press Retry media.",
  },
  check_form: { text: "Check what you entered.", todo: "Correct it and try again." },
  snapshot_unavailable: { text: "That snapshot could not be loaded: it is not stored yet, or the link expired.", todo: "Try again in a moment." },
  export_failed: { text: "The picture of the whiteboard could not be made.", todo: "Try again." },
  class_export_failed: { text: "The class could not be downloaded.", todo: "Try again in a moment." },
  error: { text: "Something went wrong.", todo: "Try again; if it keeps happening, reload the page." },

  // -- the browser's errors (DOMException names) ------------------------------------------------------
  NotAllowedError: {
    text: "The browser was not allowed to use your camera, microphone or screen.",
    todo: "Click the camera icon in the address bar, allow access, and try again.",
  },
  NotFoundError: { text: "No camera or microphone was found.", todo: "Plug one in (or pick another in the browser's settings) and try again." },
  NotReadableError: { text: "Your camera or microphone is in use by another program.", todo: "Close the other program and try again." },
  OverconstrainedError: { text: "Your camera cannot do what was asked of it.", todo: "Pick another camera and try again." },
  AbortError: { text: "Starting your camera or microphone was interrupted.", todo: "Try again." },
  SecurityError: { text: "The browser blocks cameras on this page.", todo: "Open the class over https, or ask your teacher." },
  InvalidStateError: { text: "Video was being set up twice at once.", todo: "Wait a moment and try again." },
  OperationError: { text: "Your browser could not set up video.", todo: "Reload the page and try again." },
});

/**
 * Codes whose meaning depends on the command: the sentence for `<code> <command>` wins over the
 * code's own.
 * @type {Readonly<Record<string, {text: string, todo: string}>>}
 */
const FOR_COMMAND = Object.freeze({
  "not_allowed media.publish": {
    text: "You cannot share video or sound right now: the class is in lecture mode, where only the teacher shares.",
    todo: "Ask the teacher if you want to speak.",
  },
  "not_allowed chat.send": { text: "You can write to everyone or privately to the staff, and only in your own room.", todo: "Pick another recipient." },
  "not_allowed hand.raise": { text: "Only students raise hands.", todo: "Nothing to do." },
  "not_allowed breakout.choose": { text: "You cannot pick a breakout room now.", todo: "The staff will place you." },
  "not_allowed breakout.help": { text: "You can ask for help from a breakout room.", todo: "In the main room, raise your hand." },
  "not_allowed participant.remove": { text: "You cannot remove this person.", todo: "Only the teacher removes an assistant; nobody removes the teacher." },
  "not_allowed media.mute": { text: "You cannot mute this person.", todo: "Only the teacher mutes an assistant; nobody mutes the teacher." },
  "limit_reached question.ask": {
    text: "You cannot ask more now: you have five questions waiting, or the question list is full.",
    todo: "Wait until the teacher answers some, then ask again.",
  },
  "limit_reached poll.open": { text: "Too many polls are open.", todo: "Close one, then open the new poll." },
  "limit_reached board.lock": { text: "The class has too many whiteboards.", todo: "Use one of the boards you have." },
  "limit_reached board.clear": { text: "The class has too many whiteboards.", todo: "Use one of the boards you have." },
  "limit_reached board.snapshot": { text: "The class has too many whiteboards.", todo: "Use one of the boards you have." },
  "bad_field chat.send": { text: "A message holds 1 to 2,000 characters.", todo: "Shorten it and send again." },
  "bad_field question.ask": { text: "A question holds 1 to 500 characters.", todo: "Shorten it and ask again." },
  "bad_field poll.open": { text: "A poll needs a question and 2 to 10 options.", todo: "Fill them in and open it again." },
});

/**
 * The sentence for an error: what happened and what to do, never the code or a library's message.
 * A code nobody listed reads as "Something went wrong".
 * @param {string} code             a protocol error code, one of the page's, or a DOMException name
 * @param {{command?: string, message?: string}} [context]   `command`: the command type that
 *   failed, e.g. "chat.send"; `message`: said instead for `check_form`, whose words are the page's
 *   own (a form it checked before sending), never the server's
 * @returns {{code: string, text: string, todo: string, sentence: string}}
 */
export function explain(code, { command = "", message = "" } = {}) {
  if (code === "check_form" && message) return { code, text: message, todo: "", sentence: message };
  const known = Object.hasOwn(MESSAGES, code);
  const entry = FOR_COMMAND[`${code} ${command}`] ?? (known ? MESSAGES[code] : MESSAGES.error);
  return { code: known ? code : "error", text: entry.text, todo: entry.todo, sentence: `${entry.text} ${entry.todo}` };
}

/**
 * The sentence for a connection that closed for good (`ConnectionStatus.error`, or none).
 * @param {{code: string} | null | undefined} error
 * @param {string} fallback   said when there is no error to explain
 * @returns {string}
 */
export function explainClosed(error, fallback) {
  return error?.code ? explain(error.code).sentence : fallback;
}
