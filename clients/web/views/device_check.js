// The camera and microphone check: pick the devices, see yourself, watch the microphone's level.
// On the join page before entering, and on the classroom page from the video panel. The choice is
// kept for the browser (localStorage) and MediaSession opens those devices (../media.js).
//
// It holds the devices only while it is shown: `stop()` ends its tracks (the camera light goes
// off) and closes its AudioContext.

import { deviceStorage, levelOf, openChosen, preferredDevices, saveDevice } from "../devices.js";
import { el, replaceChildren } from "../dom.js";
import { explain } from "../messages.js";

/** How often the level meter is read. */
const LEVEL_INTERVAL_MS = 100;

/**
 * @param {{mediaDevices?: MediaDevices, storage?: Storage | null}} [options]   `storage`: where
 *   the choice is kept (default: localStorage)
 * @returns {{node: HTMLElement, start: () => Promise<void>, stop: () => void}}
 */
export function mountDeviceCheck({ mediaDevices = globalThis.navigator?.mediaDevices, storage = null } = {}) {
  const store = storage ?? deviceStorage();
  const preferred = preferredDevices(store);
  const camera = el("select", { testid: "device-camera", "aria-label": "Camera" });
  const microphone = el("select", { testid: "device-microphone", "aria-label": "Microphone" });
  const preview = el("video", { class: "device-preview", testid: "device-preview", autoplay: true, muted: true, playsInline: true });
  const level = el("meter", { class: "device-level", testid: "device-level", min: 0, max: 1, value: 0, "aria-label": "Microphone level" });
  const status = el("p", { class: "muted-text", testid: "device-status", role: "status" });
  const node = el("div", { class: "device-check", testid: "device-check" },
    preview,
    el("label", {}, "Camera", camera),
    el("label", {}, "Microphone", microphone),
    el("label", {}, "Microphone level (speak to see it move)", level),
    status);

  let stream = null;
  let audio = null;
  let meterTimer = null;
  let generation = 0;

  function release() {
    clearInterval(meterTimer);
    meterTimer = null;
    audio?.close().catch(() => {});
    audio = null;
    for (const track of stream?.getTracks() ?? []) track.stop();
    stream = null;
    preview.srcObject = null;
    level.value = 0;
  }

  async function fill(select, kind, current) {
    const devices = (await mediaDevices.enumerateDevices()).filter((d) => d.kind === kind);
    replaceChildren(select, devices.map((d, i) =>
      el("option", { value: d.deviceId, text: d.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}` })));
    if (current) select.value = current;
  }

  function meter(track) {
    const Context = globalThis.AudioContext ?? globalThis.webkitAudioContext;
    if (!Context) return;
    audio = new Context();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 512;
    audio.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const samples = new Uint8Array(analyser.fftSize);
    meterTimer = setInterval(() => {
      analyser.getByteTimeDomainData(samples);
      level.value = levelOf(samples);
      level.dataset.heard = String(level.value > 0.01 || level.dataset.heard === "true");
    }, LEVEL_INTERVAL_MS);
  }

  /** Open the chosen (or remembered) devices and show them. */
  async function start() {
    const mine = ++generation;
    release();
    level.dataset.heard = "false";
    status.textContent = "Starting your camera and microphone…";
    if (!mediaDevices) {
      status.textContent = explain("no_devices").sentence;
      return;
    }
    const cameraId = camera.value || preferred("camera");
    const microphoneId = microphone.value || preferred("microphone");
    try {
      const opened = await openChosen(mediaDevices, { video: true, audio: true }, { video: cameraId, audio: microphoneId });
      if (mine !== generation) {
        for (const track of opened.getTracks()) track.stop();
        return;
      }
      stream = opened;
      const [video] = opened.getVideoTracks();
      const [sound] = opened.getAudioTracks();
      // Device labels are readable once access is granted.
      await fill(camera, "videoinput", video?.getSettings().deviceId);
      await fill(microphone, "audioinput", sound?.getSettings().deviceId);
      preview.srcObject = new MediaStream(video ? [video] : []);
      preview.play?.()?.catch(() => {});
      if (sound) meter(sound);
      status.textContent = "Check that you see yourself and that the bar moves when you speak.";
    } catch (err) {
      if (mine === generation) status.textContent = explain(err?.name ?? "error").sentence;
    }
  }

  camera.addEventListener("change", () => {
    saveDevice(store, "camera", camera.value);
    start();
  });
  microphone.addEventListener("change", () => {
    saveDevice(store, "microphone", microphone.value);
    start();
  });

  return {
    node,
    start,
    stop() {
      generation += 1;
      release();
    },
  };
}

/**
 * The classroom page's "Check camera and microphone" dialog: the devices are released when it
 * closes, so MediaSession can open the chosen ones.
 * @param {HTMLElement} host
 * @returns {() => void} opens the dialog
 */
export function mountDeviceDialog(host) {
  const check = mountDeviceCheck();
  const done = el("button", { type: "submit", class: "btn btn-primary", testid: "device-done", text: "Done" });
  const dialog = el("dialog", { class: "dialog", testid: "device-dialog", "aria-labelledby": "device-title" },
    el("form", { method: "dialog" },
      el("h2", { class: "dialog-title", id: "device-title", text: "Camera and microphone" }),
      check.node,
      el("div", { class: "dialog-actions" }, done)));
  host.append(dialog);
  dialog.addEventListener("close", () => check.stop());
  return () => {
    dialog.showModal();
    check.start();
  };
}
