// Prints what a page downloads for the embed widget, gzipped, from esbuild's
// metafile: before the first Run (the entry and what it imports statically;
// with an editable Python snippet, the editor and its mode too), and what the
// first Run adds (the terminal). Called by build-assets.sh.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const [metafilePath, goalKiB] = process.argv.slice(2);
const { outputs } = JSON.parse(readFileSync(metafilePath, 'utf8'));
const gz = (file) => gzipSync(readFileSync(file), { level: 9 }).length;

const byEntry = (suffix) => {
  const hit = Object.keys(outputs).find((file) => file.endsWith('.js') && outputs[file].entryPoint?.endsWith(suffix));
  if (!hit) throw new Error(`no output for the entry point ${suffix}`);
  return hit;
};

/** `file` and every chunk it imports statically, recursively. */
function closure(file, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const { path, kind } of outputs[file].imports) if (kind === 'import-statement') closure(path, seen);
  return seen;
}

const kib = (files) => (Array.from(files).reduce((sum, file) => sum + gz(file), 0) / 1024).toFixed(1);
const entry = closure(byEntry('embed/embed.js'));
const editable = new Set(entry);
closure(byEntry('embed/editor.js'), editable);
closure(byEntry('@codemirror/lang-python/dist/index.js'), editable);
const terminal = closure(byEntry('embed/terminal.js'), new Set());
for (const file of entry) terminal.delete(file);

const before = Number(kib(editable));
console.error(`[assets] widget, gzipped: ${kib(entry)} KiB before the first Run (static snippets), `
  + `${before} KiB with an editable Python snippet (goal: under ${goalKiB} KiB); the first Run adds ${kib(terminal)} KiB (the terminal)`);
if (before >= Number(goalKiB)) console.error(`[assets] WARNING: the widget is over its ${goalKiB} KiB goal before the first Run`);
