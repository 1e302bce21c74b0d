// A panel whose module loads only when the page asks for it (after the class is Live): on a slow
// link its bytes and requests do not stand between the student and the class. Until it is there
// it draws nothing, and what is asked of it meanwhile runs, in order, once it is.

/**
 * @template V
 * @param {() => Promise<V & {render: () => void}>} load   imports the module and mounts the panel
 * @param {() => void} onLoaded   called once the panel is mounted (e.g. to draw it)
 * @returns {{load: () => Promise<V>, call: (method: string, ...args: unknown[]) => void,
 *   render: () => void, readonly view: V | null}}
 */
export function deferred(load, onLoaded = () => {}) {
  /** @type {V | null} */
  let view = null;
  /** @type {Promise<V> | null} */
  let loading = null;
  /** @type {[string, unknown[]][]} */
  const calls = [];
  return {
    /** Import and mount the panel (once); a failed import is tried again on the next call. */
    load() {
      loading ??= load().then(
        (mounted) => {
          view = mounted;
          for (const [method, args] of calls.splice(0)) mounted[method](...args);
          onLoaded();
          return mounted;
        },
        (err) => {
          loading = null;
          throw err;
        },
      );
      return loading;
    },
    /** Call a method of the panel now, or once it is mounted. */
    call(method, ...args) {
      if (view) view[method](...args);
      else calls.push([method, args]);
    },
    render() {
      view?.render();
    },
    get view() {
      return view;
    },
  };
}
