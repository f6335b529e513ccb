// What the page knows about each language the server may offer: a display label
// and the CodeMirror mode. The server's names are authoritative; aliases map the
// names a server might use onto the same entry.
import { cpp } from '@codemirror/lang-cpp';
import { javascript } from '@codemirror/lang-javascript';
import { python } from '@codemirror/lang-python';
import { StreamLanguage } from '@codemirror/language';
import { ruby } from '@codemirror/legacy-modes/mode/ruby';
import { shell } from '@codemirror/legacy-modes/mode/shell';

const KNOWN = {
  python: { label: 'Python', mode: () => python(), aliases: ['py', 'python3'] },
  javascript: { label: 'JavaScript', mode: () => javascript(), aliases: ['js', 'node', 'nodejs'] },
  c: { label: 'C', mode: () => cpp(), aliases: [] },
  cpp: { label: 'C++', mode: () => cpp(), aliases: ['c++', 'cxx'] },
  bash: { label: 'Bash', mode: () => StreamLanguage.define(shell), aliases: ['sh', 'shell'] },
  ruby: { label: 'Ruby', mode: () => StreamLanguage.define(ruby), aliases: ['rb'] },
};

export const DEFAULT_LANGUAGE = 'python';

/** Languages shown before the server's `hello` arrives. */
export const FALLBACK_LANGUAGES = Object.keys(KNOWN);

/** The page's own id for a server language name (`node` → `javascript`), or the name itself. */
export function canonical(name) {
  const lower = String(name).toLowerCase();
  if (lower in KNOWN) return lower;
  const hit = Object.entries(KNOWN).find(([, info]) => info.aliases.includes(lower));
  return hit ? hit[0] : lower;
}

export function label(name, version) {
  const base = KNOWN[canonical(name)]?.label ?? name;
  return version ? `${base} ${version}` : base;
}

/** A CodeMirror extension for the language; plain text for ones we do not know. */
export function editorMode(name) {
  return KNOWN[canonical(name)]?.mode() ?? [];
}
