// The dev pages' HTTP calls: JSON on success, `{error, message}` JSON on failure.

import { explain } from "./messages.js";

/**
 * GET a JSON document. Throws an Error whose `code` is the server's error code (`connect_failed`
 * when it cannot be reached, `error` for an answer that is not JSON) and whose message is that
 * code's plain sentence (./messages.js), never the server's words.
 * @param {string} url
 * @returns {Promise<any>}
 */
export async function fetchJson(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
  } catch {
    throw plainError("connect_failed");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON; reported below by status
  }
  if (!response.ok || body === null || body.error) {
    throw plainError(typeof body?.error === "string" ? body.error : "error");
  }
  return body;
}

function plainError(code) {
  return Object.assign(new Error(explain(code).sentence), { code });
}
