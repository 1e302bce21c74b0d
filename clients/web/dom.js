// Building and updating DOM without markup strings: user text only ever reaches the page through
// textContent, attributes and properties, never innerHTML.

/**
 * Create an element.
 *   el("button", {class: "btn", testid: "qa-ask", onclick: fn}, "Ask")
 * Props: `class`, `text` (textContent), `testid` (data-testid), `data-*`/`aria-*`/`role`/`for`
 * (attributes), `on<event>` (listeners); anything else is set as a property (type, value, hidden,
 * disabled, checked, name, placeholder, maxLength, ...). Children: nodes or strings; null and false
 * are skipped.
 * @returns {HTMLElement}
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "testid") node.dataset.testid = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "for") {
      node.setAttribute(key, String(value));
    } else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else node[key] = value;
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

/** Replace an element's children. */
export function replaceChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** The element with a data-testid inside root (or the document). */
export function byTestId(testid, root = document) {
  return root.querySelector(`[data-testid="${testid}"]`);
}

const KEY = Symbol("key");

/**
 * Make container's children match items, in order, reusing the element made for each key so
 * that focus, scroll and half-filled inputs survive updates.
 * @template T
 * @param {Element} container
 * @param {T[]} items
 * @param {(item: T) => string | number} keyOf
 * @param {(item: T) => HTMLElement} create     builds the element for a new key
 * @param {(node: HTMLElement, item: T) => void} update   brings an element up to date
 */
export function reconcile(container, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of container.children) existing.set(child[KEY], child);
  let cursor = container.firstElementChild;
  for (const item of items) {
    const key = String(keyOf(item));
    let node = existing.get(key);
    if (node) existing.delete(key);
    else {
      node = create(item);
      node[KEY] = key;
    }
    update(node, item);
    if (node === cursor) cursor = cursor.nextElementSibling;
    else container.insertBefore(node, cursor);
  }
  for (const node of existing.values()) node.remove();
}
