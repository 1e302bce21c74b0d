// The camera and microphone this browser chose (views/device_check.js), kept in localStorage for
// the next visit and opened by MediaSession (media.js). No DOM.

/** Where the chosen devices are kept: `{camera: deviceId, microphone: deviceId}`. */
export const DEVICES_STORAGE_KEY = "liveclass.devices";

/**
 * The devices this browser chose before, by source ("camera", "microphone"); null when none.
 * @param {Storage | null} storage
 * @returns {(source: string) => string | null}
 */
export function preferredDevices(storage = deviceStorage()) {
  return (source) => {
    try {
      const saved = JSON.parse(storage?.getItem(DEVICES_STORAGE_KEY) ?? "{}");
      return typeof saved?.[source] === "string" && saved[source] ? saved[source] : null;
    } catch {
      return null;
    }
  };
}

/**
 * Remember the device chosen for a source.
 * @param {Storage | null} storage
 * @param {string} source
 * @param {string} deviceId
 */
export function saveDevice(storage, source, deviceId) {
  try {
    const saved = JSON.parse(storage?.getItem(DEVICES_STORAGE_KEY) ?? "{}") ?? {};
    saved[source] = deviceId;
    storage?.setItem(DEVICES_STORAGE_KEY, JSON.stringify(saved));
  } catch {
    // storage disabled: the choice holds for this check only
  }
}

/**
 * The loudness of a time-domain sample, 0..1 (root mean square of the samples around 128).
 * @param {Uint8Array} samples   AnalyserNode.getByteTimeDomainData
 * @returns {number}
 */
export function levelOf(samples) {
  let sum = 0;
  for (const s of samples) sum += ((s - 128) / 128) ** 2;
  return samples.length ? Math.min(1, Math.sqrt(sum / samples.length) * 2) : 0;
}

/** `localStorage`, or null where reading it throws (storage disabled) or there is none (Node). */
export function deviceStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

/**
 * getUserMedia with the chosen devices asked for exactly (`ideal` is not honoured for every
 * device); when one of them is gone (unplugged: OverconstrainedError or NotFoundError), with the
 * browser's default for that kind instead.
 * @param {MediaDevices} mediaDevices
 * @param {{video?: MediaTrackConstraints | boolean, audio?: MediaTrackConstraints | boolean}} base
 * @param {{video?: string | null, audio?: string | null}} chosen   deviceIds, null: the default
 * @returns {Promise<MediaStream>}
 */
export async function openChosen(mediaDevices, base, chosen) {
  const constraints = {};
  for (const kind of ["video", "audio"]) {
    if (!base[kind]) continue;
    const own = base[kind] === true ? {} : base[kind];
    constraints[kind] = chosen[kind] ? { ...own, deviceId: { exact: chosen[kind] } } : base[kind];
  }
  try {
    return await mediaDevices.getUserMedia(constraints);
  } catch (err) {
    if (!(chosen.video || chosen.audio) || !["OverconstrainedError", "NotFoundError"].includes(err?.name)) throw err;
    return mediaDevices.getUserMedia(base);
  }
}
