// The dev pages' HTTP calls: JSON on success, `{error, message}` JSON on failure.

/**
 * GET a JSON document. Throws an Error whose message reads "<error>: <message>" when the server
 * answers with an error document, or names the HTTP status otherwise.
 * @param {string} url
 * @returns {Promise<any>}
 */
export async function fetchJson(url) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
  } catch {
    throw new Error("cannot reach the server");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON; reported below by status
  }
  if (!response.ok || body === null || body.error) {
    if (body?.error) throw new Error(body.message ? `${body.error}: ${body.message}` : body.error);
    throw new Error(`the server answered ${response.status} ${response.statusText}`.trim());
  }
  return body;
}
