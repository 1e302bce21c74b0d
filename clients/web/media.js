// This page's media through the room's SFU (docs/protocol.md, "Media"): two RTCPeerConnections
// signalled over the Connection. The publish connection offers this page's camera, microphone and
// screen (one `sendonly` transceiver each, added when first turned on; the SFU answers); the
// subscribe connection answers the SFU's offers, one at a time, and maps each m-line (by its MID)
// to the producer the offer names.
//
// The SFU gathers all its candidates before it offers or answers, so this page too waits for ICE
// gathering to complete (bounded) before it sends an SDP rather than trickling (`media.candidate`).
//
// Stopping the camera or the screen share ends the local track (the camera light goes off) and
// unpublishes it (`media.unpublish`): the SFU removes it for everyone at once. Starting it again
// reuses its m-line: a new offer on the same connection names it in `sources`.
//
// A connection that has not connected CONNECT_TIMEOUT_MS after its SDP exchange (the SFU announced
// an address this browser cannot reach, a firewall drops UDP), or that failed, is a media problem:
// `problem` says so and `onError` reports it once, until a connection connects or `retry()`.
// Without it the page would say "No media yet" forever while it tries again in the background.
//
// When the SFU worker holding the room's media is lost, the server sends `media.reset`: both
// connections are replaced and the same local tracks published again. Staff mutes and lecture
// mode are carried out by the SFU (it stops forwarding); this page only draws them.
//
// No DOM here: the tiles and buttons are views/media.js. RTCPeerConnection and mediaDevices are
// injectable.

import { openChosen, preferredDevices } from "./devices.js";

/** How long an SDP waits for this page's ICE gathering before it goes with what it has. */
const GATHER_TIMEOUT_MS = 3000;
/** How long a peer connection may take to connect after its SDP exchange before the page says
 * media cannot connect (ICE and DTLS on a working path take well under 2 s, with TURN a few). */
export const CONNECT_TIMEOUT_MS = 8000;
/** How often the connection-quality indicator samples getStats(). */
export const QUALITY_INTERVAL_MS = 2000;

export const SOURCES = ["camera", "microphone", "screen"];
const LABELS = { camera: "Start camera", microphone: "Turn on microphone", screen: "Share screen" };
const STOP_LABELS = { camera: "Stop camera", microphone: "Turn off microphone", screen: "Stop sharing" };
const CAMERA = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } };

/**
 * Resolve once `pc` has gathered every ICE candidate, or after `timeoutMs` (gathering can hang on
 * an unreachable STUN/TURN server; the SDP then carries the candidates found so far).
 * @param {RTCPeerConnection} pc
 * @param {number} timeoutMs
 * @param {{setTimeout: Function, clearTimeout: Function}} timers
 * @returns {Promise<void>}
 */
export function iceGatheringComplete(pc, timeoutMs = GATHER_TIMEOUT_MS, timers = globalThis) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      timers.clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = timers.setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/**
 * @typedef {{level: "unknown"|"good"|"fair"|"poor", rttMs: number|null, lossPct: number|null,
 *   fps: number|null}} Quality
 * `rttMs`: the selected candidate pair's round-trip time (the worse connection's); `lossPct`: the
 * share of packets lost since the last sample, received (inbound-rtp) or reported by the SFU
 * (remote-inbound-rtp), whichever is worse; `fps`: the best frame rate decoded from any video
 * received (one slow publisher is that publisher's problem; all slow is ours).
 */

const NO_QUALITY = Object.freeze({ level: "unknown", rttMs: null, lossPct: null, fps: null });

/**
 * Rate a sample: poor above 10 % loss, 400 ms RTT or below 5 fps; fair above 2 %, 150 ms or below
 * 15 fps; otherwise good. Unknown while nothing is measured (no media yet).
 * @param {{rttMs: number|null, lossPct: number|null, fps: number|null}} sample
 * @returns {Quality["level"]}
 */
export function rateQuality({ rttMs, lossPct, fps }) {
  if (rttMs === null && lossPct === null && fps === null) return "unknown";
  const loss = lossPct ?? 0;
  const rtt = rttMs ?? 0;
  if (loss > 10 || rtt > 400 || (fps !== null && fps < 5)) return "poor";
  if (loss > 2 || rtt > 150 || (fps !== null && fps < 15)) return "fair";
  return "good";
}

/**
 * What went wrong, for a toast: a protocol error (CommandError: `code` is a string) or a browser
 * one (DOMException: `name`, e.g. NotAllowedError when the camera is refused).
 * The page words it from `code` (../messages.js); `command` is the command that failed, if one did.
 * @returns {{code: string, message: string, label: string, command: string}}
 */
function describeError(err, label) {
  const code = typeof err?.code === "string" ? err.code : err?.name ?? "error";
  return { code, message: err?.message ?? String(err), label: err?.label || label, command: err?.command ?? "" };
}

/**
 * @typedef {{producer_id: string, identity: string, kind: "audio"|"video", source: string,
 *   mid: string, track: MediaStreamTrack}} RemoteTrack
 */

/**
 * A send-only transceiver for `track`. A camera is sent with three temporal layers (L1T3) where the
 * browser can: the SFU then sends a student on a slow link the base layer alone, a quarter of the
 * frames, rather than pause the video (docs/protocol.md, `media.layers`). A browser that cannot
 * refuses the mode (W3C webrtc-svc: `addTransceiver` throws OperationError); one that
 * does not know the member ignores it and sends one layer.
 * @param {RTCPeerConnection} pc
 * @param {MediaStreamTrack} track
 * @returns {RTCRtpTransceiver}
 */
export function addSendTransceiver(pc, track) {
  if (track.kind === "video" && temporalLayers() !== false) {
    try {
      return pc.addTransceiver(track, { direction: "sendonly", sendEncodings: [{ scalabilityMode: "L1T3" }] });
    } catch {
      // Refused after all: send one layer.
    }
  }
  return pc.addTransceiver(track, { direction: "sendonly" });
}

/**
 * Whether this browser's VP8 encoder sends temporal layers (L1T3), as its codec capabilities say;
 * null when they do not say (Chromium lists no `scalabilityModes` there, yet sends L1T3).
 * @returns {boolean | null}
 */
function temporalLayers() {
  const codecs = globalThis.RTCRtpSender?.getCapabilities?.("video")?.codecs ?? [];
  const vp8 = codecs.filter((c) => c.mimeType.toLowerCase() === "video/vp8");
  if (!vp8.some((c) => Array.isArray(c.scalabilityModes))) return null;
  return vp8.some((c) => c.scalabilityModes.includes("L1T3"));
}

export class MediaSession {
  /**
   * @param {object} options
   * @param {(type: string, fields: object, label: string) => Promise<object>} options.request
   *   sends a command and resolves with its whole `ack` (Connection.request)
   * @param {() => void} options.onChange   something the view shows changed
   * @param {(err: {code: string, message: string, label: string, command: string}) => void} options.onError
   * @param {MediaDevices} [options.mediaDevices]
   * @param {(source: string) => string | null} [options.preferredDevice]   the deviceId chosen
   *   for "camera" or "microphone" (the device check), or null for the browser's default
   * @param {typeof RTCPeerConnection} [options.RTCPeerConnection]
   */
  constructor({
    request,
    onChange,
    onError,
    mediaDevices = globalThis.navigator?.mediaDevices,
    preferredDevice = preferredDevices(),
    RTCPeerConnection = globalThis.RTCPeerConnection,
  }) {
    this.preferredDevice = preferredDevice;
    this.request = request;
    this.onChange = onChange;
    this.onError = onError;
    this.mediaDevices = mediaDevices;
    this.RTCPeerConnection = RTCPeerConnection;

    /** Whether a joined WebSocket carries our signaling now. */
    this.live = false;
    this.iceServers = [];
    this.canPublish = false;
    this.canSubscribe = false;
    /** Whether the room's rules let us publish now (see setMayPublish). */
    this.mayPublish = true;
    /** How many `media.reset` frames were carried out. */
    this.resets = 0;
    /** @type {{code: string, label: string} | null} why media cannot connect now, if it cannot */
    this.problem = null;
    /** @type {Map<RTCPeerConnection, any>} the connect deadline of each connection not yet connected */
    this.connectTimers = new Map();

    /** @type {Record<string, MediaStreamTrack|null>} this page's tracks, kept across reconnects */
    this.local = { camera: null, microphone: null, screen: null };
    /** Sources being started (waiting for a device or the SFU). */
    this.starting = new Set();

    // Work begun on a connection that has since been replaced stops at its next step: each step
    // checks the connection it works on is still the current one.

    /** @type {RTCPeerConnection|null} */
    this.publishPc = null;
    /** @type {Map<string, RTCRtpTransceiver>} the publish connection's transceiver per source */
    this.senders = new Map();
    /** Sources unpublished on the publish connection (their m-line kept for the next start). */
    this.unpublished = new Set();
    this.publishQueue = Promise.resolve();

    /** @type {RTCPeerConnection|null} */
    this.subscribePc = null;
    this.offerQueue = Promise.resolve();
    /** The last subscribe offer answered. */
    this.offerVersion = 0;
    /** Whether the SFU acknowledged media.subscribe on the current connection. */
    this.subscribed = false;
    /** @type {Map<string, RemoteTrack>} what the SFU forwards to us, by producer id */
    this.remote = new Map();
    /** @type {Map<string, "all"|"base"|"paused">} videos our link cannot take in full, by
     * producer id (`media.layers`; absent: all) */
    this.layers = new Map();
    /** Whether the user paused everyone else's video (sound only): one click, `media.view`. */
    this.othersVideoPaused = false;
    /** @type {string[]|null} the producer ids of the video tiles on screen (null: not known) */
    this.visibleVideos = null;
    this.sentView = "all";

    /** @type {Quality} */
    this.quality = NO_QUALITY;
    this.qualityTimer = null;
    /** inbound-rtp counters at the last sample, by stats id */
    this.lastCounters = new Map();
  }

  // -- lifecycle: the signaling connection comes and goes ------------------------------------------

  /**
   * A `welcome` or `resumed`: a new WebSocket, so new peer connections (the SFU closed the old
   * ones with the old socket). Subscribes, and publishes again whatever was on.
   * @param {{iceServers: RTCIceServer[], me: {can_publish: boolean, can_subscribe: boolean}}} session
   */
  connected({ iceServers, me }) {
    this.live = true;
    this.iceServers = iceServers ?? [];
    this.canPublish = Boolean(me?.can_publish);
    this.canSubscribe = Boolean(me?.can_subscribe);
    this.restart();
  }

  /**
   * A `media.reset`: the SFU worker that held the room's media was lost, and our connections with
   * it. Publish the same local tracks and subscribe again, on new connections, over the same
   * WebSocket.
   */
  reset() {
    if (!this.live) return;
    this.resets += 1;
    this.restart();
  }

  restart() {
    this.closePublish();
    this.closeSubscribe();
    if (this.canSubscribe) this.subscribe();
    if (this.canPublish) this.republish();
    this.startQualityTimer();
    this.onChange();
  }

  /**
   * Whether the room's rules let this page publish now (lecture mode without the teacher's
   * permission does not). While they do not, tracks that are on stay on here but are not offered
   * again after a reconnect (the SFU would refuse them); they are offered once allowed.
   * @param {boolean} allowed
   */
  setMayPublish(allowed) {
    if (allowed === this.mayPublish) return;
    this.mayPublish = allowed;
    if (allowed && this.live && this.canPublish) this.republish();
  }

  /** The socket dropped (we will reconnect): the SFU has closed our connections. */
  disconnected() {
    if (!this.live && !this.publishPc && !this.subscribePc) return;
    this.live = false;
    this.closePublish();
    this.closeSubscribe();
    this.onChange();
  }

  /** The class is over for this page: close everything and release the devices. */
  stop() {
    this.disconnected();
    for (const source of SOURCES) {
      this.local[source]?.stop();
      this.local[source] = null;
    }
    clearInterval(this.qualityTimer);
    this.qualityTimer = null;
    this.problem = null;
    this.onChange();
  }

  /** Try media again now, on new connections (the "Retry media" button). */
  retry() {
    this.problem = null;
    if (this.live) this.restart();
    else this.onChange();
  }

  closePublish() {
    this.forgetDeadline(this.publishPc);
    this.publishPc?.close();
    this.publishPc = null;
    this.senders = new Map();
    this.unpublished = new Set();
  }

  closeSubscribe() {
    this.forgetDeadline(this.subscribePc);
    this.subscribePc?.close();
    this.subscribePc = null;
    this.remote = new Map();
    this.layers = new Map();
    this.offerVersion = 0;
    this.lastCounters = new Map();
    this.quality = NO_QUALITY;
  }

  /**
   * A peer connection with this session's ICE servers that calls `onFailed` if its ICE or DTLS
   * fails (the SFU closes its side then).
   * @param {RTCBundlePolicy} bundlePolicy
   * @param {() => void} onFailed
   */
  newPeerConnection(bundlePolicy, onFailed) {
    const pc = new this.RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected") {
        this.forgetDeadline(pc);
        this.problem = null;
      } else if (pc.connectionState === "failed") {
        this.forgetDeadline(pc);
        this.cannotConnect("Connect video and sound");
        onFailed(pc);
      }
      this.onChange();
    });
    return pc;
  }

  /**
   * The SDP exchange of `pc` is done: it must connect within CONNECT_TIMEOUT_MS, or media cannot
   * connect (reported once; the page keeps trying).
   * @param {RTCPeerConnection} pc
   */
  expectConnected(pc) {
    if (pc.connectionState === "connected" || this.connectTimers.has(pc)) return;
    this.connectTimers.set(pc, setTimeout(() => {
      this.connectTimers.delete(pc);
      const current = pc === this.publishPc || pc === this.subscribePc;
      if (current && pc.connectionState !== "connected") this.cannotConnect("Connect video and sound");
    }, CONNECT_TIMEOUT_MS));
  }

  forgetDeadline(pc) {
    if (!pc || !this.connectTimers.has(pc)) return;
    clearTimeout(this.connectTimers.get(pc));
    this.connectTimers.delete(pc);
  }

  cannotConnect(label) {
    if (this.problem) return;
    this.problem = { code: "media_failed", label };
    this.onError({ code: "media_failed", message: "no media connection connected", label, command: "" });
    this.onChange();
  }

  // -- publishing ---------------------------------------------------------------------------------

  /** Whether a source is on: published (or being published) and not disabled. */
  /** Pause (or show again) everyone else's video, keeping their sound. */
  setOthersVideoPaused(paused) {
    this.othersVideoPaused = paused;
    this.sendView();
    this.onChange();
  }

  /**
   * The video tiles on screen changed: the SFU sends only those videos (a phone showing two
   * tiles does not pull sixteen streams).
   * @param {string[]|null} producerIds
   */
  setVisibleVideos(producerIds) {
    this.visibleVideos = producerIds;
    this.sendView();
  }

  /** Tell the SFU which videos this page shows (`media.view`), when that changed. */
  sendView() {
    if (!this.subscribed) return;
    const video = this.othersVideoPaused ? "none" : this.visibleVideos === null ? "all" : [...this.visibleVideos].sort();
    const key = JSON.stringify(video);
    if (key === JSON.stringify(this.sentView)) return;
    this.sentView = video;
    this.request("media.view", { video }, "Choose videos").catch(() => {
      if (JSON.stringify(this.sentView) === key) this.sentView = null; // sent again next time
    });
  }

  isOn(source) {
    const track = this.local[source];
    return Boolean(track && track.enabled && track.readyState === "live");
  }

  /**
   * Turn a source on or off. On opens the device and publishes the track (a new offer to the SFU:
   * a new transceiver the first time, the source's own m-line after that). Off stops the camera
   * or the screen share for real (see `stopSource`); the microphone is muted and unmuted by
   * disabling its track (the SFU then forwards silence).
   * @param {"camera"|"microphone"|"screen"} source
   * @returns {Promise<void>}
   */
  async toggle(source) {
    const track = this.local[source];
    if (track && track.readyState === "live") {
      if (source === "microphone") {
        track.enabled = !track.enabled;
        this.onChange();
      } else {
        await this.stopSource(source);
      }
      return;
    }
    if (this.starting.has(source)) return;
    if (!this.canPublish) {
      this.onError({ code: "no_publish_grant", message: "you may not publish media in this room", label: LABELS[source], command: "" });
      return;
    }
    this.starting.add(source);
    this.onChange();
    try {
      const fresh = await this.openDevice(source);
      this.local[source] = fresh;
      // The browser's own "stop sharing" (or an unplugged camera) ends a track: stop it here too.
      fresh.addEventListener("ended", () => {
        if (this.local[source] === fresh) this.stopSource(source);
      });
      const transceiver = this.senders.get(source);
      if (transceiver?.currentDirection && !this.unpublished.has(source)) {
        await transceiver.sender.replaceTrack(fresh); // its m-line is published already
      } else if (this.live) {
        await this.negotiatePublish(LABELS[source]);
      }
    } catch (err) {
      this.onError(describeError(err, LABELS[source]));
    } finally {
      this.starting.delete(source);
      this.onChange();
    }
  }

  /**
   * Stop a source: end its track (the device is released), send nothing more on its m-line, and
   * unpublish it at the SFU, which removes it from everyone's page. Runs in turn with the
   * publish negotiations. Errors go to `onError`.
   * @param {"camera"|"microphone"|"screen"} source
   * @returns {Promise<void>}
   */
  stopSource(source) {
    const track = this.local[source];
    this.local[source] = null;
    track?.stop();
    this.onChange();
    const run = this.publishQueue.then(async () => {
      const pc = this.publishPc;
      const transceiver = this.senders.get(source);
      // Never published on this connection, or started again meanwhile: nothing to unpublish.
      if (!pc || !transceiver?.currentDirection || this.unpublished.has(source) || this.local[source]) return;
      await transceiver.sender.replaceTrack(null);
      this.unpublished.add(source);
      if (this.live) await this.request("media.unpublish", { source }, STOP_LABELS[source]);
    });
    this.publishQueue = run.catch(() => {});
    return run.catch((err) => this.onError(describeError(err, STOP_LABELS[source])));
  }

  /** @returns {Promise<MediaStreamTrack>} */
  async openDevice(source) {
    if (!this.mediaDevices) throw Object.assign(new Error("this browser gives no access to cameras"), { code: "no_devices" });
    if (source === "screen") {
      const stream = await this.mediaDevices.getDisplayMedia({ video: true, audio: false });
      return stream.getVideoTracks()[0];
    }
    // The device picked in the device check, or the default when it is gone.
    const chosen = this.preferredDevice(source);
    const stream = source === "camera"
      ? await openChosen(this.mediaDevices, { video: CAMERA }, { video: chosen })
      : await openChosen(this.mediaDevices, { audio: true }, { audio: chosen });
    return source === "camera" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
  }

  /** Offer every local track on the publish connection again (after a reconnect or a failure). */
  republish() {
    if (!this.mayPublish) return;
    if (!SOURCES.some((source) => this.local[source]?.readyState === "live")) return;
    this.negotiatePublish("Publish media").catch((err) => this.onError(describeError(err, "Publish media")));
  }

  /**
   * Offer every local track not yet on the publish connection and apply the SFU's answer.
   * Negotiations run one at a time. Rejects with what went wrong.
   * @param {string} label  what the user tried, for error messages
   */
  negotiatePublish(label) {
    const run = this.publishQueue.then(() => this.publish(label));
    this.publishQueue = run.catch(() => {});
    return run;
  }

  async publish(label) {
    if (!this.live) return;
    // One transport for every track we offer: the SFU bundles (and it gathers only once).
    if (!this.publishPc) this.publishPc = this.newPeerConnection("max-bundle", (pc) => this.publishFailed(pc));
    const pc = this.publishPc;
    const added = [];
    const republishing = [];
    for (const source of SOURCES) {
      const track = this.local[source];
      if (!track || track.readyState !== "live") continue;
      const transceiver = this.senders.get(source);
      if (!transceiver) {
        this.senders.set(source, addSendTransceiver(pc, track));
        added.push(source);
      } else if (!transceiver.currentDirection || this.unpublished.has(source)) {
        // Offered before and refused (see rollBack), or stopped (see stopSource): offer it
        // again with the new track, on its own m-line.
        if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
        if (this.unpublished.delete(source)) republishing.push(source);
        added.push(source);
      }
    }
    if (!added.length) return;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringComplete(pc);
      if (pc !== this.publishPc) return;
      // Every m-line but those of stopped sources: naming one would publish it again.
      const sources = {};
      for (const [source, transceiver] of this.senders) {
        if (transceiver.mid && !this.unpublished.has(source)) sources[transceiver.mid] = source;
      }
      const ack = await this.request("media.publish", { sdp: pc.localDescription.sdp, sources }, label);
      if (pc !== this.publishPc) return;
      await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp });
      this.expectConnected(pc);
    } catch (err) {
      if (pc !== this.publishPc) return; // replaced meanwhile; the new one offers everything
      for (const source of republishing) this.unpublished.add(source); // still unpublished there
      await this.rollBack(pc, added);
      throw err;
    }
  }

  /**
   * The offer adding `sources` failed (e.g. `not_allowed` in lecture mode): roll it back and
   * release their tracks, so the source reads as off and the next try starts clean. Their
   * transceivers stay, without a track, for that next try: stopping one after a rollback does
   * not keep it out of later offers in Chromium, which offers it again under the next mid in
   * place of the transceiver added then.
   */
  async rollBack(pc, sources) {
    if (pc.signalingState === "have-local-offer") {
      await pc.setLocalDescription({ type: "rollback" }).catch(() => {});
    }
    for (const source of sources) {
      await this.senders.get(source)?.sender.replaceTrack(null).catch(() => {});
      this.local[source]?.stop();
      this.local[source] = null;
    }
  }

  publishFailed(pc) {
    if (pc !== this.publishPc) return;
    this.closePublish();
    this.republish();
  }

  // -- subscribing --------------------------------------------------------------------------------

  subscribe() {
    // "balanced": the answerer follows the BUNDLE group of the SFU's offer.
    const pc = this.newPeerConnection("balanced", (failed) => this.subscribeFailed(failed));
    this.subscribePc = pc;
    this.subscribed = false;
    pc.addEventListener("track", () => this.onChange());
    this.sentView = "all"; // a new connection starts with every video
    this.request("media.subscribe", {}, "Receive video").then(
      () => {
        // Offers follow once someone else publishes.
        if (pc === this.subscribePc) this.subscribed = true;
        this.sendView();
      },
      (err) => {
        if (pc === this.subscribePc) this.onError(describeError(err, "Receive video"));
      },
    );
  }

  subscribeFailed(pc) {
    if (pc !== this.subscribePc) return;
    this.closeSubscribe();
    this.onChange();
    if (this.live && this.canSubscribe) this.subscribe();
  }

  /**
   * A `media.layers`: the SFU forwards less of some videos because our link cannot take them.
   * @param {{producers: Record<string, "all"|"base"|"paused">}} frame
   */
  handleLayers({ producers }) {
    for (const [producerId, layer] of Object.entries(producers ?? {})) {
      if (layer === "all") this.layers.delete(producerId);
      else this.layers.set(producerId, layer);
    }
    this.onChange();
  }

  /**
   * A `media.offer`: answer it once the offers before it are answered.
   * @param {{version: number, sdp: string, producers: Record<string, {producer_id: string, identity: string, kind: string, source: string}>}} offer
   */
  handleOffer(offer) {
    const pc = this.subscribePc;
    if (!pc) return;
    this.offerQueue = this.offerQueue
      .then(() => this.answer(pc, offer))
      .catch((err) => {
        if (pc === this.subscribePc) this.onError(describeError(err, "Receive video"));
      });
  }

  async answer(pc, { version, sdp, producers }) {
    if (pc !== this.subscribePc) return;
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await iceGatheringComplete(pc);
    if (pc !== this.subscribePc) return;
    // The m-lines the offer names carry these producers; the others are inactive (reused later).
    const remote = new Map();
    for (const transceiver of pc.getTransceivers()) {
      const producer = producers?.[transceiver.mid];
      if (producer) remote.set(producer.producer_id, { ...producer, mid: transceiver.mid, track: transceiver.receiver.track });
    }
    this.remote = remote;
    this.onChange();
    await this.request("media.answer", { version, sdp: pc.localDescription.sdp }, "Receive video");
    if (pc !== this.subscribePc) return;
    this.offerVersion = version;
    this.expectConnected(pc);
  }

  // -- connection quality -------------------------------------------------------------------------

  startQualityTimer() {
    if (this.qualityTimer !== null) return;
    this.qualityTimer = setInterval(() => {
      this.sampleQuality().catch(() => {});
    }, QUALITY_INTERVAL_MS);
  }

  /** Read both connections' getStats() into `quality`. */
  async sampleQuality() {
    const subscribePc = this.subscribePc;
    let rttMs = null;
    let lossPct = null;
    let fps = null;
    const counters = new Map();
    let lost = 0;
    let got = 0;
    for (const pc of [this.publishPc, subscribePc]) {
      if (!pc || pc.connectionState !== "connected") continue;
      const stats = await pc.getStats();
      for (const s of stats.values()) {
        if (s.type === "transport" && s.selectedCandidatePairId) {
          const rtt = stats.get(s.selectedCandidatePairId)?.currentRoundTripTime;
          if (typeof rtt === "number") rttMs = Math.max(rttMs ?? 0, rtt * 1000);
        } else if (s.type === "inbound-rtp") {
          const now = { lost: s.packetsLost ?? 0, received: s.packetsReceived ?? 0 };
          const before = this.lastCounters.get(s.id) ?? { lost: 0, received: 0 };
          counters.set(s.id, now);
          lost += Math.max(0, now.lost - before.lost);
          got += Math.max(0, now.received - before.received);
          if (s.kind === "video" && typeof s.framesPerSecond === "number") fps = Math.max(fps ?? 0, s.framesPerSecond);
        } else if (s.type === "remote-inbound-rtp" && typeof s.fractionLost === "number") {
          lossPct = Math.max(lossPct ?? 0, s.fractionLost * 100);
        }
      }
    }
    if (subscribePc !== this.subscribePc) return; // replaced while we read: its counters are gone
    if (lost + got > 0) lossPct = Math.max(lossPct ?? 0, (100 * lost) / (lost + got));
    this.lastCounters = counters;
    const sample = { rttMs, lossPct, fps };
    const quality = { level: rateQuality(sample), ...sample };
    if (JSON.stringify(quality) === JSON.stringify(this.quality)) return;
    this.quality = quality;
    this.onChange();
  }
}
