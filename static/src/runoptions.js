// The optional run panels: standard input (sent when the run starts), command
// line arguments, and extra files in tabs (the run then sends `files`, the
// editor's code first as the entry point).

const DEFAULT_ENTRY = 'main';
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Split an argument line like a shell would for words and quotes: `a "b c" 'd'` → [a, b c, d]. */
export function splitArgs(line) {
  const args = [];
  let current = null;
  let quote = null;
  for (const char of line) {
    if (quote) {
      if (char === quote) quote = null;
      else current += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      current ??= '';
    } else if (/\s/.test(char)) {
      if (current !== null) args.push(current);
      current = null;
    } else {
      current = (current ?? '') + char;
    }
  }
  if (current !== null) args.push(current);
  return args;
}

/** The entry file name of each language, from `/api/v1/languages` (empty when unreachable). */
async function entryFiles() {
  try {
    const response = await fetch('/api/v1/languages', { headers: { Accept: 'application/json' } });
    if (!response.ok) return {};
    return Object.fromEntries((await response.json()).map((lang) => [lang.name, lang.entry_file]));
  } catch {
    return {};
  }
}

/**
 * Wire the panels found by id (`stdin-input`, `args-input`, `file-tabs`,
 * `file-name`, `file-content`, `file-add`, `file-remove`, `file-editor`,
 * `file-note`, and `run-options`, the <details> around them).
 * `onFilesChange()` is called when an extra file is added, removed, renamed or edited.
 */
export function createRunOptions($, { onFilesChange = () => {} } = {}) {
  const stdin = $('stdin-input');
  const args = $('args-input');
  const tabs = $('file-tabs');
  const name = $('file-name');
  const content = $('file-content');
  const fileEditor = $('file-editor');
  const note = $('file-note');
  const files = []; // [{name, content}]
  let active = -1;
  let entries = {};
  entryFiles().then((found) => { entries = found; });

  function renderTabs() {
    tabs.replaceChildren(...files.map((file, index) => {
      const tab = document.createElement('button');
      tab.type = 'button';
      tab.className = 'file-tab';
      tab.setAttribute('role', 'tab');
      tab.setAttribute('aria-selected', String(index === active));
      tab.textContent = file.name || '(unnamed)';
      tab.addEventListener('click', () => select(index));
      return tab;
    }));
    fileEditor.hidden = active < 0;
    if (active >= 0) {
      name.value = files[active].name;
      content.value = files[active].content;
    }
  }

  function select(index) {
    active = index;
    renderTabs();
    content.focus();
  }

  $('file-add').addEventListener('click', () => {
    let n = files.length + 1;
    while (files.some((file) => file.name === `file${n}.txt`)) n += 1;
    files.push({ name: `file${n}.txt`, content: '' });
    select(files.length - 1);
    name.focus();
    name.select();
    onFilesChange();
  });
  $('file-remove').addEventListener('click', () => {
    if (active < 0) return;
    files.splice(active, 1);
    active = Math.min(active, files.length - 1);
    renderTabs();
    onFilesChange();
  });
  name.addEventListener('input', () => {
    files[active].name = name.value.trim();
    tabs.children[active].textContent = files[active].name || '(unnamed)';
    note.textContent = NAME_PATTERN.test(files[active].name)
      ? '' : 'Use letters, digits, dot, dash or underscore (up to 64).';
    onFilesChange();
  });
  content.addEventListener('input', () => {
    files[active].content = content.value;
    onFilesChange();
  });

  return {
    /** The `run` message's program fields: `code` alone, or `files` with the code first. */
    program(language, code) {
      const extra = files.filter((file) => file.name);
      if (extra.length === 0) return { code };
      const entry = entries[language] ?? DEFAULT_ENTRY;
      return { files: [{ name: entry, content: code }, ...extra.map((f) => ({ name: f.name, content: f.content }))] };
    },
    /** Open the extra file `fileName` with its 1-based `line` selected (a compiler message was clicked). */
    show(fileName, line) {
      const index = files.findIndex((file) => file.name === fileName);
      if (index < 0) return;
      $('run-options').open = true;
      select(index);
      const lines = content.value.split('\n');
      const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
      content.setSelectionRange(start, start + (lines[line - 1]?.length ?? 0));
    },
    /** Whether `name` is one of the extra files (not the editor's entry file). */
    isExtraFile: (fileName) => files.some((file) => file.name === fileName),
    /** `stdin` and `args` when the panels have any. */
    input() {
      const fields = {};
      if (stdin.value) fields.stdin = stdin.value;
      const words = splitArgs(args.value);
      if (words.length) fields.args = words;
      return fields;
    },
  };
}
