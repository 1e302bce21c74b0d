// The wire codec: one MessagePack map per binary WebSocket frame (docs/protocol.md, "Transport").
//
// The vendored UMD bundle (vendor/msgpack.min.js, @msgpack/msgpack 3.1.3) is loaded by a classic
// <script> before the app's modules and defines the global `MessagePack`. This module is the only
// place that reads that global, so the rest of the app imports plain functions.

function library() {
  const lib = globalThis.MessagePack;
  if (!lib) {
    throw new Error("MessagePack is not loaded: include /static/vendor/msgpack.min.js before the app");
  }
  return lib;
}

/**
 * Encode one message (a plain object with a string `t`) into the bytes of a binary frame.
 * @param {Record<string, unknown>} message
 * @returns {Uint8Array}
 */
export function encodeFrame(message) {
  return library().encode(message);
}

/**
 * Decode the bytes of a binary frame into a message. Throws when the bytes are not MessagePack
 * or the value is not a map with a string `t`.
 * @param {ArrayBuffer | Uint8Array} bytes
 * @returns {Record<string, any>}
 */
export function decodeFrame(bytes) {
  const value = library().decode(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes);
  if (value === null || typeof value !== "object" || Array.isArray(value) || typeof value.t !== "string") {
    throw new Error("frame is not a map with a string `t`");
  }
  return value;
}
