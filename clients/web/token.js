// The access token in the join link: `/#token=<jwt>`. A fragment never reaches the server (nor its
// logs, nor a proxy's); a query would, so `?token=` is not accepted for the page.
//
// The payload is decoded only to learn which room to join and whom to greet; the server verifies
// the signature (docs/protocol.md, "Access tokens"). Nothing here trusts the claims.

/** The sessionStorage key that keeps the tab's token across reloads. */
export const TOKEN_STORAGE_KEY = "liveclass.token";

/**
 * The raw JWT from a location's fragment (`#token=`); a `?token=` query is ignored.
 * @param {{hash: string}} location
 * @returns {string | null}
 */
export function tokenFromLocation(location) {
  return new URLSearchParams(location.hash.replace(/^#/, "")).get("token") || null;
}

/**
 * This tab's token: from the link's fragment (which is then removed from the address bar, with any
 * `?token=` query, by `history.replaceState`, and kept in `storage`), else the one `storage` kept
 * from an earlier load of this tab (a reload). Null when there is neither.
 * @param {Location} location
 * @param {History} history
 * @param {Storage | null} storage   sessionStorage: per tab, gone when the tab closes
 * @returns {string | null}
 */
export function takeToken(location, history, storage) {
  const fromLink = tokenFromLocation(location);
  const query = new URLSearchParams(location.search);
  if (fromLink || query.has("token")) {
    query.delete("token");
    const search = query.toString();
    history.replaceState(history.state, "", `${location.pathname}${search ? `?${search}` : ""}`);
  }
  try {
    if (fromLink) storage?.setItem(TOKEN_STORAGE_KEY, fromLink);
    return fromLink ?? storage?.getItem(TOKEN_STORAGE_KEY) ?? null;
  } catch {
    return fromLink; // storage disabled: this load still joins, a reload will not
  }
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
