// The classroom as this participant sees it: the welcome snapshot, folded with the events,
// presence and tally frames that follow (docs/protocol.md, "Session", "Commands and the events
// they cause", "Presence", "Vote tallies"). No DOM and no sockets: frames in, a model out, so it runs under Node as well.

/** How many chat messages the model keeps (the snapshot carries the last 200). */
const CHAT_KEEP = 500;

/** @param {string | undefined} role */
export function isStaffRole(role) {
  return role === "teacher" || role === "assistant";
}

/** The media sources a participant publishes (docs/protocol.md, "Media"). */
export const MEDIA_SOURCES = ["camera", "microphone", "screen"];
const SOURCE_WORDS = { camera: "camera", microphone: "microphone", screen: "screen share" };

/**
 * The protocol's question order: pinned first, then open before answered, then votes (most
 * first), then age (oldest first; question ids are numbered in the order asked).
 */
export function compareQuestions(a, b) {
  return (
    Number(b.pinned) - Number(a.pinned) ||
    Number(a.answered) - Number(b.answered) ||
    b.votes - a.votes ||
    a.question_id - b.question_id
  );
}

/** `ms` as "m:ss" (or "h:mm:ss" from an hour), for the breakout countdown. */
export function formatDuration(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

export class RoomModel {
  constructor() {
    /** Bumped by every welcome: ids from a new snapshot may name other things (a wiped server). */
    this.epoch = 0;
    /** Our clock behind the server's, in ms (welcome's `server_time_ms` minus Date.now()). */
    this.clockOffsetMs = 0;
    this.reset();
  }

  reset() {
    /** @type {{identity: string, name: string, role: string, can_publish: boolean, can_subscribe: boolean} | null} */
    this.me = null;
    this.roomId = "";
    /** The class's display name (RoomView `class_name`, `room.named`); "" until it has one. */
    this.className = "";
    this.locked = false;
    /** The class link this page's token names (staff, dev pages), and whether it was revoked. */
    this.inviteId = this.inviteId ?? null;
    this.inviteRevoked = this.inviteRevoked ?? false;
    /** The waiting room is on; `waiting`: who waits, first come first (staff only). */
    this.waitingRoom = false;
    /** @type {{identity: string, name: string}[]} */
    this.waiting = [];
    /** @type {{reason: string, by: string} | null} */
    this.ended = null;
    /** Why this participant was removed, once it was. */
    this.removedReason = null;
    this.chatMutedAll = false;
    /** @type {Set<string>} */
    this.chatMuted = new Set();
    /** @type {{identity: string, name: string}[]} the raised-hand queue, first raised first */
    this.hands = [];
    /** @type {{id: number, ts: number, from: string, name: string, role: string, text: string, thread: string|null}[]} */
    this.chat = [];
    /** @type {Map<number, {question_id: number, author: string, name: string, text: string, ts: number, votes: number, voted: boolean, answered: boolean, pinned: boolean}>} */
    this.questions = new Map();
    /** @type {Map<number, Poll>} in the order opened */
    this.polls = new Map();
    /** @type {Map<string, object>} who is online now (presence, not log) */
    this.roster = new Map();
    this.online = 0;
    /** @type {Map<string, {identity: string, name: string, role: string}>} everyone seen, online or not */
    this.people = new Map();
    /** @type {Set<string>} identities removed from this session */
    this.removed = new Set();
    /** @type {Set<string>} whiteboards students may not write */
    this.lockedBoards = new Set();
    /** @type {Map<string, number>} per board, the id of the last `board.cleared` event seen */
    this.boardClears = new Map();
    /** @type {{board: string, id: number, ts: number, by: string}[]} snapshots saved (staff only), oldest first */
    this.boardSnapshots = [];
    /** "discussion" (anyone with the can_publish grant publishes) or "lecture" (staff only, in the main room) */
    this.mediaMode = "discussion";
    /** @type {Map<string, Set<string>>} identity -> the sources staff muted for it */
    this.mediaMuted = new Map();
    /** @type {Set<string>} sources muted for every student */
    this.mediaMutedAll = new Set();
    /** @type {Set<string>} students staff let publish whatever the mode */
    this.mediaPermitted = new Set();
    /** @type {string|null} the identity in the spotlight */
    this.spotlight = null;
    /** "video" or "board": what staff put on every page's stage (docs/protocol.md, "The stage") */
    this.stage = "board";
    /** counts the `stage.changed` events folded, so a page knows a new staff choice arrived */
    this.stageChanges = 0;
    /** @type {string[]} the open breakout rooms, in opening order */
    this.breakouts = [];
    /** @type {Map<string, string>} identity -> its breakout room (absent: the main room) */
    this.breakoutOf = new Map();
    this.resetBreakouts();
    /** @type {{round: number, room: string, board: string}[]} the latest closed round's boards */
    this.gallery = [];
    /** Whether staff shared the gallery with students. */
    this.galleryShared = false;
  }

  /** The open round's fields (docs/protocol.md, "Breakout rooms"); nothing open after this. */
  resetBreakouts() {
    this.breakouts = [];
    this.breakoutOf = new Map();
    /** The latest round opened (0: never); its rooms while `breakouts` is not empty. */
    this.breakoutRound = this.breakoutRound ?? 0;
    /** @type {string[]} the open rooms' boards, in the order of `breakouts` (`br<round>-<i>`) */
    this.breakoutBoards = [];
    /** @type {number|null} when the open rooms close (server clock, epoch ms), or null: no timer */
    this.breakoutEndsAt = null;
    /** Seconds before `breakoutEndsAt` that the page warns everyone. */
    this.breakoutWarnS = 60;
    this.breakoutSelfSelect = false;
    /** @type {number|null} the self-select cap per room */
    this.breakoutCap = null;
    /** @type {{identity: string, room: string}[]} the help queue, oldest first (a student holds only their own) */
    this.breakoutHelp = [];
  }

  get isStaff() {
    return isStaffRole(this.me?.role);
  }

  /** Where I am: my breakout room's name, or null for the main room. */
  get place() {
    return this.me ? this.breakoutOf.get(this.me.identity) ?? null : null;
  }

  /** The board of an open breakout room (`br<round>-<i>`), or `main` for null. */
  boardOf(room) {
    if (room == null) return "main";
    const i = this.breakouts.indexOf(room);
    return i >= 0 ? this.breakoutBoards[i] ?? room : "main";
  }

  /** The server's clock now (epoch ms), from the offset measured at the last welcome/resume. */
  serverNow(now = Date.now()) {
    return now + this.clockOffsetMs;
  }

  /** Milliseconds until the breakout rooms close (never below 0), or null without a timer. */
  breakoutRemainingMs(now = Date.now()) {
    if (this.breakoutEndsAt === null || !this.breakouts.length) return null;
    return Math.max(0, this.breakoutEndsAt - this.serverNow(now));
  }

  /** Whether the countdown is inside its warning (`warn_s` before the end). */
  breakoutWarning(now = Date.now()) {
    const left = this.breakoutRemainingMs(now);
    return left !== null && left <= this.breakoutWarnS * 1000;
  }

  /** Students in each open room and in the main room: `Map<room|null, identity[]>` of the people known. */
  breakoutCounts() {
    const counts = new Map(this.breakouts.map((r) => [r, 0]));
    for (const [identity, room] of this.breakoutOf) {
      if (counts.has(room) && this.roleOf(identity) === "student") counts.set(room, counts.get(room) + 1);
    }
    return counts;
  }

  /** The conversations' room labels seen in chat and Q&A, for the staff's room filter. */
  knownRooms() {
    const rooms = new Set(this.breakouts);
    for (const m of this.chat) if (m.room) rooms.add(m.room);
    for (const q of this.questions.values()) if (q.room) rooms.add(q.room);
    return [...rooms];
  }

  /** Whether I may see this board in the gallery (staff always; students once it is shared). */
  get galleryVisible() {
    return this.gallery.length > 0 && (this.isStaff || this.galleryShared);
  }

  // -- session frames -----------------------------------------------------------------------------

  /** A `welcome`: replace everything with the snapshot. */
  applyWelcome(frame) {
    this.reset();
    this.epoch += 1;
    this.measureClock(frame);
    this.me = frame.you;
    this.applyRoomView(frame.room);
    this.remember(frame.you);
    for (const h of this.hands) this.remember(h);
    for (const m of this.chat) this.remember({ identity: m.from, name: m.name, role: m.role });
    this.applyRoster(frame.roster, frame.online);
  }

  /**
   * A `view`: my place changed (docs/protocol.md, "Breakout rooms"); the RoomView is replaced,
   * who I am, who is online and the people seen stay. Events after `last_id` follow.
   */
  applyView(frame) {
    const { me, roster, online, people, epoch, clockOffsetMs, gallery } = this;
    const round = this.breakoutRound;
    this.reset();
    Object.assign(this, { me, roster, online, people, epoch, clockOffsetMs });
    this.breakoutRound = round;
    this.applyRoomView(frame.room);
    // A student's view holds the last round's boards only once staff share them; keep the ones
    // this page saw close, so that sharing them later (an event without the list) shows them.
    if (!this.gallery.length) this.gallery = gallery;
    for (const h of this.hands) this.remember(h);
    for (const m of this.chat) this.remember({ identity: m.from, name: m.name, role: m.role });
  }

  /** The server's clock minus ours, from a frame's `server_time_ms` (welcome, resumed). */
  measureClock(frame) {
    if (typeof frame.server_time_ms === "number") this.clockOffsetMs = frame.server_time_ms - Date.now();
  }

  /** Replace the log state with a RoomView (welcome, view). */
  applyRoomView(room) {
    this.roomId = room.room_id;
    this.className = room.class_name ?? "";
    this.waitingRoom = Boolean(room.waiting_room);
    this.waiting = (room.waiting ?? []).map(({ identity, name }) => ({ identity, name }));
    this.locked = Boolean(room.locked);
    this.ended = room.ended ?? null;
    this.chatMutedAll = Boolean(room.chat_muted_all);
    this.chatMuted = new Set(room.chat_muted ?? []);
    this.hands = (room.hands ?? []).map(({ identity, name, room: place }) => ({ identity, name, room: place ?? null }));
    this.chat = (room.chat ?? []).map((m) => ({ ...m, thread: m.thread ?? null, room: m.room ?? null, broadcast: Boolean(m.broadcast) }));
    for (const q of room.questions ?? []) this.questions.set(q.question_id, { ...q, room: q.room ?? null });
    for (const p of room.polls ?? []) this.polls.set(p.poll_id, pollFromSnapshot(p));
    this.lockedBoards = new Set(room.locked_boards ?? []);
    const media = room.media ?? {};
    this.mediaMode = media.mode ?? "discussion";
    for (const { identity, source } of media.muted ?? []) this.setMediaMuted(identity, source, true);
    this.mediaMutedAll = new Set(media.muted_all ?? []);
    this.mediaPermitted = new Set(media.permitted ?? []);
    this.spotlight = media.spotlight ?? null;
    this.stage = room.stage === "video" ? "video" : "board";
    const b = room.breakouts ?? {};
    this.breakouts = [...(b.rooms ?? [])];
    this.breakoutOf = new Map(Object.entries(b.members ?? {}));
    this.breakoutRound = b.round ?? (this.breakouts.length ? 1 : 0);
    this.breakoutBoards = [...(b.boards ?? this.breakouts)];
    this.breakoutEndsAt = b.ends_at ?? null;
    this.breakoutWarnS = b.warn_s ?? 60;
    this.breakoutSelfSelect = Boolean(b.self_select);
    this.breakoutCap = b.cap ?? null;
    this.breakoutHelp = (b.help ?? []).map(({ identity, room: r }) => ({ identity, room: r }));
    this.gallery = (b.gallery ?? []).map(({ round, room: r, board }) => ({ round, room: r, board }));
    this.galleryShared = Boolean(b.gallery_shared);
  }

  /** A `resumed`: the log state stays (the missed events follow); presence is replaced. */
  applyResumed(frame) {
    this.measureClock(frame);
    this.me = frame.you;
    this.remember(frame.you);
    this.applyRoster(frame.roster, frame.online);
  }

  /** A `presence` frame: who joined, who left, how many are online. */
  applyPresence(frame) {
    for (const p of frame.joined ?? []) {
      this.roster.set(p.identity, p);
      this.remember(p);
    }
    for (const identity of frame.left ?? []) this.roster.delete(identity);
    if (typeof frame.online === "number") this.online = frame.online;
  }

  /**
   * A `tally`: the current votes of the questions listed (docs/protocol.md, "Vote tallies"). In a
   * large room it replaces the other participants' vote events; `voted` follows our own events.
   */
  applyTally(frame) {
    for (const { question_id, votes } of frame.questions ?? []) {
      const q = this.questions.get(question_id);
      if (q) q.votes = votes;
    }
  }

  applyRoster(roster, online) {
    this.roster = new Map();
    for (const p of roster ?? []) {
      this.roster.set(p.identity, p);
      this.remember(p);
    }
    this.online = typeof online === "number" ? online : this.roster.size;
  }

  remember({ identity, name, role }) {
    if (!identity) return;
    const known = this.people.get(identity);
    this.people.set(identity, { identity, name: name ?? known?.name ?? identity, role: role ?? known?.role ?? "" });
  }

  nameOf(identity) {
    return this.people.get(identity)?.name ?? identity;
  }

  // -- events -------------------------------------------------------------------------------------

  /**
   * Fold one `event` frame into the model.
   * @param {{id: number, ts: number, type: string, data: object}} event
   * @returns {{kind: string, text: string, code?: string} | null} a notice worth showing the user,
   *   if any (`code` names it for the toast's data-code; else `kind` does)
   */
  applyEvent(event) {
    const handler = EVENT_HANDLERS[event.type];
    if (!handler) return null; // an event type this client does not know yet
    return handler(this, event.data ?? {}, event) ?? null;
  }

  // -- media rules (rooms/media.py, mirrored to draw the controls; the SFU enforces them) ---------

  roleOf(identity) {
    return this.roster.get(identity)?.role ?? this.people.get(identity)?.role ?? "";
  }

  setMediaMuted(identity, source, muted) {
    const sources = this.mediaMuted.get(identity) ?? new Set();
    if (muted) sources.add(source);
    else sources.delete(source);
    if (sources.size) this.mediaMuted.set(identity, sources);
    else this.mediaMuted.delete(identity);
  }

  /** Whether staff muted this participant's `source` on its own (not through "mute all"). */
  isMediaMutedAlone(identity, source) {
    return this.mediaMuted.get(identity)?.has(source) ?? false;
  }

  /** Whether staff muted this participant's `source`, on its own or for every student. */
  isMediaMuted(identity, source) {
    if (this.isMediaMutedAlone(identity, source)) return true;
    return this.mediaMutedAll.has(source) && !isStaffRole(this.roleOf(identity));
  }

  /** The sources staff muted for this participant, in MEDIA_SOURCES order. */
  mediaMutedSources(identity) {
    return MEDIA_SOURCES.filter((source) => this.isMediaMuted(identity, source));
  }

  /**
   * Whether this participant may publish now: staff by their grant; a student the staff permitted
   * always; another student with the grant in discussion mode or in a breakout room.
   * @param {{identity: string, role: string, can_publish?: boolean}} person
   */
  mayPublish(person) {
    if (!person) return false;
    const grant = person.can_publish !== false;
    if (isStaffRole(person.role)) return grant;
    if (this.mediaPermitted.has(person.identity)) return true;
    return grant && (this.mediaMode === "discussion" || this.breakoutOf.has(person.identity));
  }

  /**
   * Whether I may mute this participant: staff mute students and (the teacher only) assistants;
   * nobody mutes the teacher.
   */
  canMuteMedia(identity) {
    const role = this.roleOf(identity);
    if (!this.isStaff || role === "teacher") return false;
    return role === "assistant" ? this.me?.role === "teacher" : true;
  }

  // -- derived views ------------------------------------------------------------------------------

  /** Questions in the protocol's order. */
  sortedQuestions() {
    return [...this.questions.values()].sort(compareQuestions);
  }

  /** Online participants: staff first, then by name. */
  onlineParticipants() {
    const rank = (p) => (p.role === "teacher" ? 0 : p.role === "assistant" ? 1 : 2);
    return [...this.roster.values()].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  }

  /** 1-based position of an identity in the hand queue, or 0. */
  handPosition(identity) {
    return this.hands.findIndex((h) => h.identity === identity) + 1;
  }

  /** Whether a participant's chat is muted (the room-wide mute applies to students only). */
  isChatMuted(identity, role) {
    return this.chatMuted.has(identity) || (this.chatMutedAll && role === "student");
  }

  /** Students a staff member can write to privately: online ones and those with a thread. */
  privateThreadStudents() {
    const ids = new Set();
    for (const p of this.roster.values()) if (p.role === "student") ids.add(p.identity);
    for (const p of this.people.values()) if (p.role === "student") ids.add(p.identity);
    for (const m of this.chat) if (m.thread) ids.add(m.thread);
    for (const id of this.removed) ids.delete(id);
    return [...ids]
      .map((identity) => ({ identity, name: this.nameOf(identity) }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * The counts to draw for a poll, or null when this participant may not see them yet.
   * Staff see the live tally; everyone sees the final tally once the poll is closed.
   * @returns {{counts: number[], voters: number} | null}
   */
  pollResults(poll) {
    if (!poll.open && poll.tally) return { counts: poll.tally, voters: poll.voters ?? 0 };
    if (!poll.tally) return null;
    // Staff hold every voter's current choices (snapshot `answers` + `poll.answered` events),
    // so a changed answer replaces the old one instead of being counted twice.
    const counts = poll.options.map(() => 0);
    for (const choices of poll.answers.values()) {
      for (const i of choices) if (i >= 0 && i < counts.length) counts[i] += 1;
    }
    return { counts, voters: poll.answers.size };
  }
}

/**
 * @typedef {{poll_id: number, question: string, options: string[], multiple: boolean, open: boolean,
 *   mine: number[], tally: number[] | null, voters: number | null,
 *   answers: Map<string, number[]>}} Poll
 * `tally`/`voters` are the final ones once closed; `answers` holds each voter's current choices
 * (staff only: from the snapshot's `answers`, then `poll.answered` events), from which
 * `pollResults` computes the live tally.
 */

function pollFromSnapshot(p) {
  return {
    poll_id: p.poll_id,
    question: p.question,
    options: [...p.options],
    multiple: Boolean(p.multiple),
    open: Boolean(p.open),
    mine: [...(p.mine ?? [])],
    tally: p.tally ? [...p.tally] : null,
    voters: p.voters ?? null,
    answers: new Map(Object.entries(p.answers ?? {}).map(([who, c]) => [who, [...c]])),
  };
}

/** @type {Record<string, (m: RoomModel, data: any, event: any) => ({kind: string, text: string} | void)>} */
const EVENT_HANDLERS = {
  "participant.joined"(m, d) {
    m.remember(d);
    if (isStaffRole(d.role)) m.mediaPermitted.delete(d.identity); // staff publish by their grant
    if (d.role === "teacher") m.mediaMuted.delete(d.identity); // nobody mutes the teacher
  },

  "chat.message"(m, d, ev) {
    m.chat.push({ id: ev.id, ts: ev.ts, from: d.from, name: d.name, role: d.role, text: d.text, thread: d.thread ?? null,
      room: d.room ?? null, broadcast: Boolean(d.broadcast) });
    if (m.chat.length > CHAT_KEEP) m.chat.splice(0, m.chat.length - CHAT_KEEP);
    m.remember({ identity: d.from, name: d.name, role: d.role });
  },

  "hand.raised"(m, d) {
    if (!m.handPosition(d.identity)) m.hands.push({ identity: d.identity, name: d.name, room: d.room ?? null });
    m.remember(d);
  },

  "hand.lowered"(m, d) {
    m.hands = m.hands.filter((h) => h.identity !== d.identity);
  },

  "hand.called"(m, d) {
    m.hands = m.hands.filter((h) => h.identity !== d.identity);
    if (d.identity === m.me?.identity) {
      return { kind: "called", text: `${m.nameOf(d.by)} called on you` };
    }
    return { kind: "info", text: `${m.nameOf(d.by)} called on ${d.name}` };
  },

  "hands.cleared"(m) {
    m.hands = [];
  },

  "question.asked"(m, d, ev) {
    m.questions.set(d.question_id, {
      question_id: d.question_id,
      author: d.author,
      name: d.name,
      text: d.text,
      room: d.room ?? null,
      ts: ev.ts,
      votes: 0,
      voted: false,
      answered: false,
      pinned: false,
    });
  },

  "question.upvoted"(m, d) {
    const q = m.questions.get(d.question_id);
    if (!q) return;
    q.votes += 1;
    if (d.identity === m.me?.identity) q.voted = true;
  },

  "question.unvoted"(m, d) {
    const q = m.questions.get(d.question_id);
    if (!q) return;
    q.votes = Math.max(0, q.votes - 1);
    if (d.identity === m.me?.identity) q.voted = false;
  },

  "question.answered"(m, d) {
    const q = m.questions.get(d.question_id);
    if (q) q.answered = true;
  },

  "question.dismissed"(m, d) {
    m.questions.delete(d.question_id);
  },

  "question.pinned"(m, d) {
    const q = m.questions.get(d.question_id);
    if (q) q.pinned = Boolean(d.pinned);
  },

  "poll.opened"(m, d) {
    const staff = m.isStaff;
    m.polls.set(d.poll_id, {
      poll_id: d.poll_id,
      question: d.question,
      options: [...d.options],
      multiple: Boolean(d.multiple),
      open: true,
      mine: [],
      tally: staff ? d.options.map(() => 0) : null,
      voters: staff ? 0 : null,
      answers: new Map(),
    });
  },

  "poll.answered"(m, d) {
    const poll = m.polls.get(d.poll_id);
    if (!poll) return;
    if (d.identity === m.me?.identity) poll.mine = [...d.choices];
    // A new answer replaces the voter's previous one, so keep only the latest choices per voter.
    if (poll.open && poll.tally) poll.answers.set(d.identity, [...d.choices]);
  },

  "poll.closed"(m, d) {
    const poll = m.polls.get(d.poll_id);
    if (!poll) return;
    poll.open = false;
    poll.tally = [...d.tally];
    poll.voters = d.voters;
    poll.answers = new Map();
  },

  "chat.muted"(m, d) {
    if (d.identity == null) {
      m.chatMutedAll = Boolean(d.muted);
      if (!d.muted) m.chatMuted.clear(); // unmute all lifts individual mutes too
    } else if (d.muted) {
      m.chatMuted.add(d.identity);
    } else {
      m.chatMuted.delete(d.identity);
    }
  },

  "participant.removed"(m, d) {
    m.removed.add(d.identity);
    m.roster.delete(d.identity);
    m.hands = m.hands.filter((h) => h.identity !== d.identity);
    m.mediaPermitted.delete(d.identity);
    m.breakoutOf.delete(d.identity);
    m.breakoutHelp = m.breakoutHelp.filter((h) => h.identity !== d.identity);
    if (m.spotlight === d.identity) m.spotlight = null;
    if (d.identity === m.me?.identity) {
      m.removedReason = d.reason ?? "";
      return { kind: "removed", text: d.reason ? `You were removed: ${d.reason}` : "You were removed from the class" };
    }
    return { kind: "info", text: `${m.nameOf(d.identity)} was removed` };
  },

  "room.waiting_room_set"(m, d) {
    m.waitingRoom = Boolean(d.enabled);
  },

  "participant.waiting"(m, d) {
    if (!m.waiting.some((w) => w.identity === d.identity)) m.waiting.push({ identity: d.identity, name: d.name });
    return { kind: "info", text: `${d.name} is waiting to join`, code: "waiting" };
  },

  "participant.waiting_left"(m, d) {
    m.waiting = m.waiting.filter((w) => w.identity !== d.identity);
  },

  "participant.admitted"(m, d) {
    m.waiting = m.waiting.filter((w) => w.identity !== d.identity);
  },

  "invite.revoked"(m, d) {
    if (d.invite_id === m.inviteId) m.inviteRevoked = true;
  },

  "participant.denied"(m, d) {
    m.waiting = m.waiting.filter((w) => w.identity !== d.identity);
  },

  "room.named"(m, d) {
    m.className = d.class_name ?? "";
  },

  "room.locked"(m, d) {
    m.locked = Boolean(d.locked);
  },

  "board.locked"(m, d) {
    if (d.locked) m.lockedBoards.add(d.board);
    else m.lockedBoards.delete(d.board);
    const what = d.board === "main" ? "the whiteboard" : `whiteboard ${d.board}`;
    return { kind: "info", text: `${m.nameOf(d.by)} ${d.locked ? "locked" : "unlocked"} ${what}` };
  },

  "board.cleared"(m, d, ev) {
    m.boardClears.set(d.board, ev.id);
    const what = d.board === "main" ? "the whiteboard" : `whiteboard ${d.board}`;
    return { kind: "info", text: `${m.nameOf(d.by)} cleared ${what}` };
  },

  "board.snapshot_saved"(m, d, ev) {
    m.boardSnapshots.push({ board: d.board, id: ev.id, ts: ev.ts, by: d.by });
  },

  "media.mode_changed"(m, d) {
    m.mediaMode = d.mode;
    const lecture = d.mode === "lecture";
    if (d.by === m.me?.identity) return;
    if (m.isStaff) return { kind: "info", code: "media-mode", text: `${m.nameOf(d.by)} switched to ${lecture ? "lecture" : "discussion"} mode` };
    return {
      kind: "info",
      code: "media-mode",
      text: lecture
        ? "Lecture mode: only the staff share video and sound now"
        : "Discussion mode: you may share your camera and microphone",
    };
  },

  "media.muted"(m, d) {
    const me = m.me?.identity;
    const wasMuted = me ? m.isMediaMuted(me, d.source) : false;
    if (d.identity != null) {
      m.setMediaMuted(d.identity, d.source, Boolean(d.muted));
    } else if (d.muted) {
      m.mediaMutedAll.add(d.source);
    } else {
      // Unmuting every student lifts each student's own mute of that source too.
      m.mediaMutedAll.delete(d.source);
      for (const identity of [...m.mediaMuted.keys()]) {
        if (!isStaffRole(m.roleOf(identity))) m.setMediaMuted(identity, d.source, false);
      }
    }
    const what = SOURCE_WORDS[d.source] ?? d.source;
    const aimsAtMe = d.identity === me || (d.identity == null && !m.isStaff);
    if (aimsAtMe && d.by !== me && wasMuted !== m.isMediaMuted(me, d.source)) {
      return d.muted
        ? { kind: "info", code: "media-muted", text: `${m.nameOf(d.by)} muted your ${what}` }
        : { kind: "info", code: "media-unmuted", text: `${m.nameOf(d.by)} unmuted your ${what}` };
    }
  },

  "media.permitted"(m, d) {
    if (d.allowed) m.mediaPermitted.add(d.identity);
    else m.mediaPermitted.delete(d.identity);
    if (d.identity !== m.me?.identity) return;
    return d.allowed
      ? { kind: "info", code: "media-permitted", text: `${m.nameOf(d.by)} lets you share your camera and microphone` }
      : { kind: "info", code: "media-revoked", text: `${m.nameOf(d.by)} took back your permission to share video and sound` };
  },

  "media.spotlighted"(m, d) {
    m.spotlight = d.identity ?? null;
  },

  "stage.changed"(m, d) {
    m.stage = d.view === "video" ? "video" : "board";
    m.stageChanges += 1;
  },

  "breakout.opened"(m, d, ev) {
    m.resetBreakouts();
    m.breakoutRound = d.round ?? m.breakoutRound + 1;
    m.breakouts = [...d.rooms];
    m.breakoutBoards = [...(d.boards ?? d.rooms)];
    for (const [identity, room] of Object.entries(d.members ?? {})) {
      if (room != null && m.breakouts.includes(room)) m.breakoutOf.set(identity, room);
    }
    m.breakoutEndsAt = d.duration_s ? ev.ts + d.duration_s * 1000 : null;
    m.breakoutWarnS = d.warn_s ?? 60;
    m.breakoutSelfSelect = Boolean(d.self_select);
    m.breakoutCap = d.cap ?? null;
    m.galleryShared = false;
    const mine = m.place;
    const where = mine ? ` You are in ${mine}.` : m.breakoutSelfSelect && !m.isStaff ? " Pick a room." : "";
    return { kind: "info", code: "breakout", text: `Breakout rooms are open: ${d.rooms.join(", ")}.${where}` };
  },

  "breakout.assigned"(m, d) {
    let notice;
    for (const [identity, room] of Object.entries(d.members ?? {})) {
      const moved = EVENT_HANDLERS["breakout.moved"](m, { identity, room, by: d.by });
      if (moved) notice = moved;
    }
    return notice;
  },

  "breakout.moved"(m, d) {
    if (d.room == null) m.breakoutOf.delete(d.identity);
    else if (m.breakouts.includes(d.room)) m.breakoutOf.set(d.identity, d.room);
    m.breakoutHelp = m.breakoutHelp.filter((h) => h.identity !== d.identity);
    if (d.identity === m.me?.identity) {
      return { kind: "info", code: "breakout", text: d.room == null ? "You are back in the main room" : `You are now in breakout room ${d.room}` };
    }
  },

  "breakout.timer_set"(m, d, ev) {
    const before = m.breakoutEndsAt;
    m.breakoutEndsAt = d.remaining_s == null ? null : ev.ts + d.remaining_s * 1000;
    if (d.by === m.me?.identity) return;
    if (m.breakoutEndsAt === null) return { kind: "info", code: "breakout", text: "The breakout timer was removed" };
    const longer = before === null || m.breakoutEndsAt > before;
    return { kind: "info", code: "breakout", text: `Breakout rooms ${longer ? "extended" : "shortened"}: ${formatDuration(d.remaining_s * 1000)} left` };
  },

  "breakout.help_asked"(m, d) {
    if (!m.breakoutHelp.some((h) => h.identity === d.identity)) m.breakoutHelp.push({ identity: d.identity, room: d.room });
    if (m.isStaff && d.identity !== m.me?.identity) {
      return { kind: "info", code: "breakout-help", text: `${m.nameOf(d.identity)} asks for help in ${d.room}` };
    }
  },

  "breakout.help_cleared"(m, d) {
    m.breakoutHelp = m.breakoutHelp.filter((h) => h.identity !== d.identity);
  },

  "breakout.closed"(m, d) {
    const wasAway = m.place !== null;
    const round = d.round ?? m.breakoutRound;
    if (m.breakouts.length) m.gallery = m.breakouts.map((room, i) => ({ round, room, board: m.breakoutBoards[i] ?? room }));
    m.galleryShared = false;
    m.resetBreakouts();
    const why = d.reason === "timer" ? "Time is up: breakout rooms closed" : "Breakout rooms closed";
    return { kind: "info", code: "breakout", text: wasAway ? `${why}: you are back in the main room` : why };
  },

  "breakout.boards_shared"(m, d) {
    m.galleryShared = Boolean(d.shared);
    if (!m.isStaff && d.shared) return { kind: "info", code: "breakout", text: "The staff shared the breakout rooms' boards" };
  },

  "session.ended"(m, d) {
    m.ended = { reason: d.reason ?? "", by: d.by };
    return { kind: "ended", text: d.reason ? `The session ended: ${d.reason}` : "The session ended" };
  },
};
