// The access token in the join link: `/#token=<jwt>` (or `/?token=<jwt>` as a fallback).
//
// The payload is decoded only to learn which room to join and whom to greet; the server verifies
// the signature (docs/protocol.md, "Access tokens"). Nothing here trusts the claims.

/**
 * The raw JWT from a location's fragment (`#token=`) or, failing that, its query (`?token=`).
 * @param {{hash: string, search: string}} location
 * @returns {string | null}
 */
export function tokenFromLocation(location) {
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, "")).get("token");
  if (fromHash) return fromHash;
  return new URLSearchParams(location.search).get("token") || null;
}

/**
 * Decode a base64url string (RFC 4648 §5, padding optional) into UTF-8 text.
 * @param {string} segment
 * @returns {string}
 */
function base64UrlToText(segment) {
  const base64 = segment.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

/**
 * The unverified claims of a JWT (RFC 7519): `{sub, name, exp, grants: {room, role, ...}, ...}`.
 * Throws an Error with a readable message when the token is not a JWT or names no room.
 * @param {string} token
 * @returns {{sub?: string, name?: string, exp?: number, grants: {room: string, role?: string}}}
 */
export function decodeTokenClaims(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("the link's token is not a JWT");
  let claims;
  try {
    claims = JSON.parse(base64UrlToText(parts[1]));
  } catch {
    throw new Error("the link's token cannot be read");
  }
  if (!claims || typeof claims !== "object" || typeof claims.grants?.room !== "string") {
    throw new Error("the link's token names no room");
  }
  return claims;
}
