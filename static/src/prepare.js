// Compiles the program while its author pauses typing (`prepare`), so that the
// Run that follows skips its compile. Compiled languages only; one `prepare` at
// a time, and only files it has not sent already: the server answers each with
// `prepared` (or an `error` carrying its `id`) and never shows anything of it.
import { canonical } from './languages.js';

const PAUSE_MS = 700;
const COMPILED = new Set(['c', 'cpp']);

/**
 * `send(message)` → whether it went out; `program()` → the `language` and
 * `code` or `files` a Run would send; `idle()` → whether no run is active.
 */
export function createPrepare({ send, program, idle }) {
  let timer = null;
  let sent = 0;
  let underWay = null; // the `id` of the prepare awaiting its answer
  let lastSent = null; // the program last sent, as JSON

  function sendIfNew() {
    const request = program();
    if (!COMPILED.has(canonical(request.language)) || !idle() || underWay !== null) return;
    const key = JSON.stringify(request);
    if (key === lastSent) return;
    const id = `prepare-${++sent}`;
    if (send({ type: 'prepare', ...request, id })) {
      underWay = id;
      lastSent = key;
    }
  }

  return {
    /** The code, its language or the files changed, or a run ended: wait for a pause. */
    schedule() {
      clearTimeout(timer);
      timer = setTimeout(sendIfNew, PAUSE_MS);
    },
    /** A `prepared` or an `error` came: true if it answers the prepare under way. */
    answered(message) {
      if (underWay === null || message.id !== underWay) return false;
      underWay = null;
      this.schedule(); // the code may have changed meanwhile
      return true;
    },
    /** A new connection: the server knows nothing of what was sent before. */
    reset() {
      clearTimeout(timer);
      underWay = null;
      lastSent = null;
    },
  };
}
