// CodeMirror modes for the widget's editor, each loaded only when a snippet of
// its language is editable (the playground bundles all of them up front:
// ../languages.js). Names as the server's languages and their usual aliases.
import { StreamLanguage } from '@codemirror/language';

const cpp = () => import('@codemirror/lang-cpp').then((m) => m.cpp());
const MODES = {
  python: () => import('@codemirror/lang-python').then((m) => m.python()),
  javascript: () => import('@codemirror/lang-javascript').then((m) => m.javascript()),
  c: cpp,
  cpp,
  bash: () => import('@codemirror/legacy-modes/mode/shell').then((m) => StreamLanguage.define(m.shell)),
  ruby: () => import('@codemirror/legacy-modes/mode/ruby').then((m) => StreamLanguage.define(m.ruby)),
};
const ALIASES = { py: 'python', python3: 'python', js: 'javascript', node: 'javascript', 'c++': 'cpp', sh: 'bash', rb: 'ruby' };

/** The mode's extension for `language`, or none (plain text) for one we do not know. */
export async function languageMode(language) {
  const name = String(language).toLowerCase();
  const load = MODES[ALIASES[name] ?? name];
  return load ? load() : [];
}
