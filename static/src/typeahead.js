// Keys typed after Run but before the program started: kept, in order, and
// handed over once the run has started (bounded: a stuck start cannot grow it).

const MAX_TYPEAHEAD_BYTES = 64 * 1024;

export function createTypeAhead() {
  let chunks = [];
  let size = 0;
  return {
    /** Keep `bytes`; false when the buffer is full and they were dropped. */
    keep(bytes) {
      if (size + bytes.length > MAX_TYPEAHEAD_BYTES) return false;
      chunks.push(bytes);
      size += bytes.length;
      return true;
    },
    /** Everything kept, as one array, and empty again. */
    take() {
      const all = new Uint8Array(size);
      let offset = 0;
      for (const chunk of chunks) {
        all.set(chunk, offset);
        offset += chunk.length;
      }
      chunks = [];
      size = 0;
      return all;
    },
    clear() {
      chunks = [];
      size = 0;
    },
  };
}
