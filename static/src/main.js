// Wires the editor, the terminal and the WebSocket together and keeps the run's
// state: idle → starting (→ queued) → started → idle on `exit`.
import './app.css';
import { Connection, socketUrl } from './connection.js';
import { createCompileLog, createProblemList } from './diagnostics.js';
import { createEditor } from './editor.js';
import { EXAMPLE_KINDS, example, exampleKind } from './examples.js';
import { createKeyBar } from './keybar.js';
import { DEFAULT_LANGUAGE, FALLBACK_LANGUAGES, canonical, label } from './languages.js';
import { outcomeLine, plainOutcome } from './outcome.js';
import { createPreferences } from './preferences.js';
import { createPrepare } from './prepare.js';
import { createRunOptions } from './runoptions.js';
import { copyText, decodeFragment, encodeFragment, shareUrl } from './share.js';
import { createPresenter } from './present.js';
import { createStatus, describeClose, describeError, describeExit } from './status.js';
import { createTerminal } from './terminal.js';
import { createTypeAhead } from './typeahead.js';

// Acks are coalesced: one per output frame would double the message count for chatty programs.
const ACK_FLUSH_BYTES = 16 * 1024;
const ACK_FLUSH_MS = 20;
const FRAGMENT_DEBOUNCE_MS = 300;

const $ = (id) => document.getElementById(id);
const runKeys = /Mac|iPhone|iPad/.test(navigator.platform) ? '⌘↵' : 'Ctrl+↵';
const ui = {
  language: $('language'),
  example: $('example'),
  run: $('run'),
  stop: $('stop'),
  share: $('share'),
  sharePanel: $('share-panel'),
  shareUrl: $('share-url'),
  shareNote: $('share-note'),
  shareClose: $('share-close'),
  banner: $('connection'),
};

const status = createStatus($('status'), $('limits'));

let serverReady = false; // `hello` received on the current connection
// The status line shows a run's outcome (or refusal) until the next run; connection
// news only fills it when there is no outcome to keep.
let hasOutcome = false;
// The active run: {phase: 'starting' | 'queued' | 'started', limits, tty}, or null.
let run = null;
let generation = 0; // tags output writes so late terminal callbacks never ack a newer run
let pendingAck = 0;
let ackTimer = null;
const typeAhead = createTypeAhead();
const compileLog = createCompileLog();
// An extra file changed: the program to compile ahead did too (`prepare` is below).
const runOptions = createRunOptions($, { onFilesChange: () => prepare.schedule() });
let hinted = false; // the "press Run" hint was shown since the last run ended (or the page opened)

// --- language picker -------------------------------------------------------

/** Offer the server's languages; false when the current choice is not among them. */
function fillLanguages(names, versions = {}) {
  const current = ui.language.value;
  ui.language.replaceChildren(
    ...names.map((name) => new Option(label(name, versions[name]), name)),
  );
  // Keep the choice across a refill; server names may differ from ours (`node` vs `javascript`).
  const match = names.find((name) => name === current)
    ?? names.find((name) => canonical(name) === canonical(current));
  if (match) ui.language.value = match;
  return match !== undefined;
}

async function addVersions(names) {
  try {
    const response = await fetch('/api/v1/languages', { headers: { Accept: 'application/json' } });
    if (!response.ok) return;
    const list = await response.json();
    const versions = Object.fromEntries(list.map((lang) => [lang.name, lang.version]));
    fillLanguages(names, versions);
  } catch {
    // Versions only decorate the labels; the picker already works without them.
  }
}

// --- editor and URL fragment -----------------------------------------------

const initial = decodeFragment(location.hash);
ui.language.replaceChildren(
  ...FALLBACK_LANGUAGES.map((name) => new Option(label(name), name)),
);
if (initial.language && !FALLBACK_LANGUAGES.includes(initial.language)) {
  ui.language.append(new Option(label(initial.language), initial.language));
}
ui.language.value = initial.language ?? DEFAULT_LANGUAGE;
if (initial.damaged) {
  status.set('warn', 'This share link is damaged (its code could not be read): showing the example instead.');
  hasOutcome = true;
}

let fragmentTimer = null;
const editor = createEditor($('editor'), {
  doc: initial.code ?? example(ui.language.value),
  language: ui.language.value,
  onRun: startRun,
  onChange() {
    clearTimeout(fragmentTimer);
    fragmentTimer = setTimeout(saveFragment, FRAGMENT_DEBOUNCE_MS);
    presenter.codeChanged();
    prepare.schedule();
  },
});

function snippet() {
  return { language: ui.language.value, code: editor.getCode() };
}

// Compiling ahead: the Run after a pause in typing skips its compile.
const prepare = createPrepare({
  send: (msg) => connection.send(msg),
  program: () => ({
    language: ui.language.value,
    ...runOptions.program(ui.language.value, editor.getCode()),
  }),
  idle: () => serverReady && run === null,
});

// Presenting: the room follows this editor and this connection's runs.
const presenter = createPresenter({ send: (msg) => connection.send(msg), snippet });

function saveFragment() {
  // replaceState: keeps the link current without a history entry per keystroke.
  history.replaceState(null, '', encodeFragment(snippet()));
}

let previousLanguage = ui.language.value;
ui.language.addEventListener('change', () => {
  const kind = exampleKind(previousLanguage, editor.getCode());
  previousLanguage = ui.language.value;
  editor.setLanguage(ui.language.value);
  if (kind) editor.setCode(example(ui.language.value, kind));
  saveFragment();
  presenter.codeChanged();
  prepare.schedule();
});

ui.example.replaceChildren(
  new Option('Load example…', '', true, true),
  ...EXAMPLE_KINDS.map(({ id, label: text }) => new Option(text, id)),
);
ui.example.options[0].disabled = true;
ui.example.addEventListener('change', () => {
  editor.setCode(example(ui.language.value, ui.example.value));
  ui.example.selectedIndex = 0; // a menu of actions, not a setting
  editor.focus();
});

window.addEventListener('hashchange', () => {
  const { language, code, damaged } = decodeFragment(location.hash);
  if (damaged) status.set('warn', 'This share link is damaged (its code could not be read): the editor was left as it was.');
  if (language && [...ui.language.options].some((o) => o.value === language)) {
    ui.language.value = language;
    previousLanguage = language;
    editor.setLanguage(language);
  }
  if (code !== undefined) editor.setCode(code);
});

// --- share -----------------------------------------------------------------

ui.share.addEventListener('click', async () => {
  saveFragment();
  const url = shareUrl(snippet());
  ui.shareUrl.value = url;
  ui.sharePanel.hidden = false;
  ui.shareUrl.focus();
  ui.shareUrl.select();
  ui.shareNote.textContent = (await copyText(url))
    ? 'Link copied to the clipboard.'
    : 'Copy the link above to share this snippet.';
});
ui.shareClose.addEventListener('click', () => {
  ui.sharePanel.hidden = true;
  ui.share.focus();
});

// --- terminal ---------------------------------------------------------------

let terminal = null;
const preferences = createPreferences($, ({ fontSize, screenReader }) => {
  terminal?.setFontSize(fontSize);
  terminal?.setScreenReader(screenReader);
  terminal?.refreshTheme();
});
terminal = createTerminal($('terminal'), {
  ...preferences.current(),
  isActive: () => run?.phase === 'started',
  onInput(bytes) {
    if (run?.phase === 'started') connection.sendBytes(bytes);
    else if (run) typeAhead.keep(bytes); // sent once the run has started
    else if (!hinted) {
      // Between runs nobody reads stdin: say what to do instead of swallowing keys.
      hinted = true;
      terminal.notice(outcomeLine(`No program is running: press Run (${runKeys}) to start it.`));
    }
  },
  onResize({ cols, rows }) {
    if (run?.phase === 'started') connection.send({ type: 'resize', cols, rows });
  },
});
// Read-only hooks for the browser tests: the terminal's text as the user sees it, its size.
window.__ceTerminalText = () => terminal.text();
window.__ceTerminalSize = () => terminal.size();
createKeyBar($('key-bar'), (data) => terminal.input(data));
const problems = createProblemList($('problems'), (problem) => {
  if (runOptions.isExtraFile(problem.file)) runOptions.show(problem.file, problem.line);
  else editor.jumpTo(problem);
});

function showProblems() {
  compileLog.stop();
  const found = compileLog.problems();
  editor.mark(found.filter((problem) => !runOptions.isExtraFile(problem.file)));
  problems.show(found);
}

function acknowledge(tag, bytes) {
  if (!run || tag !== generation) return; // the run these bytes belonged to is over
  pendingAck += bytes;
  if (pendingAck >= ACK_FLUSH_BYTES) flushAck();
  else ackTimer ??= setTimeout(flushAck, ACK_FLUSH_MS);
}

function flushAck() {
  clearTimeout(ackTimer);
  ackTimer = null;
  if (run && pendingAck > 0) connection.send({ type: 'ack', bytes: pendingAck });
  pendingAck = 0;
}

// --- runs -------------------------------------------------------------------

function updateControls() {
  ui.run.disabled = !serverReady || run !== null;
  ui.stop.disabled = run === null;
}

function startRun() {
  if (!serverReady || run) return;
  terminal.reset();
  generation += 1;
  pendingAck = 0;
  const tty = terminal.size();
  const sent = connection.send({
    type: 'run',
    language: ui.language.value,
    ...runOptions.program(ui.language.value, editor.getCode()),
    ...runOptions.input(),
    tty,
    flow_control: true,
  });
  if (!sent) return;
  typeAhead.clear();
  compileLog.clear();
  editor.mark([]);
  problems.show([]);
  run = { phase: 'starting', limits: {}, tty };
  hasOutcome = false;
  status.set('busy', 'starting…');
  status.setLimits(null);
  updateControls();
  terminal.focus();
}

function endRun() {
  typeAhead.clear();
  clearTimeout(ackTimer);
  ackTimer = null;
  pendingAck = 0;
  run = null;
  updateControls();
}

ui.run.addEventListener('click', startRun);
ui.stop.addEventListener('click', () => {
  if (run) connection.send({ type: 'kill' });
  terminal.focus();
});

const handlers = {
  hello(msg) {
    serverReady = true;
    const wanted = ui.language.value;
    const names = (msg.languages ?? []).map(String);
    const offered = names.length === 0 || fillLanguages(names);
    if (names.length) addVersions(names);
    editor.setLanguage(ui.language.value);
    previousLanguage = ui.language.value;
    if (!offered) status.set('warn', `This server does not run ${label(wanted)}; choose another language.`);
    else if (!hasOutcome) status.set('idle', 'ready');
    updateControls();
    prepare.reset();
    prepare.schedule();
  },
  prepared(msg) {
    prepare.answered(msg);
  },
  queued(msg) {
    if (!run) return;
    run.phase = 'queued';
    status.set('busy', `queued (position ${msg.position})`);
  },
  started(msg) {
    if (!run) return;
    run.phase = 'started';
    run.limits = msg.limits ?? {};
    status.setLimits(run.limits);
    status.set('busy', 'started…');
    // Resizes while starting were not sent (no run to resize yet): catch up.
    const { cols, rows } = terminal.size();
    if (cols !== run.tty.cols || rows !== run.tty.rows) connection.send({ type: 'resize', cols, rows });
    const early = typeAhead.take();
    if (early.length) connection.sendBytes(early);
  },
  stage(msg) {
    if (!run) return;
    status.set('busy', msg.stage === 'compile' ? 'compiling…' : 'running…');
    if (msg.stage === 'compile') compileLog.start();
    else showProblems();
  },
  exit(msg) {
    const { tone, text } = describeExit(msg, run?.limits);
    status.set(tone, text);
    showProblems();
    terminal.notice(outcomeLine(plainOutcome(msg, run?.limits)));
    hinted = false;
    hasOutcome = true;
    endRun();
    prepare.schedule();
  },
  error(msg) {
    // Keystrokes or acks racing the end of a run: harmless, not worth a message.
    if (msg.code === 'not_running' && !run) return;
    // A compile ahead that was refused: the Run will compile, nothing to tell.
    if (prepare.answered(msg)) return;
    // An error before `started` means the run was refused.
    if (run && run.phase !== 'started') endRun();
    status.set('error', describeError(msg));
    hasOutcome = true;
  },
};

const connection = new Connection(socketUrl(), {
  onOpen() {
    ui.banner.hidden = true;
    if (!hasOutcome) status.set('busy', 'connected, waiting for the server…');
    presenter.connected();
  },
  onMessage(msg) {
    if (presenter.onMessage(msg)) return; // a refusal to present: its panel says why
    handlers[msg.type]?.(msg);
  },
  onOutput(bytes) {
    const tag = generation;
    compileLog.feed(bytes);
    terminal.write(bytes, (n) => acknowledge(tag, n));
  },
  onClose(info) {
    const wasRunning = run !== null;
    serverReady = false;
    presenter.disconnected();
    endRun();
    ui.banner.textContent = describeClose(info);
    ui.banner.hidden = false;
    if (wasRunning) {
      status.set('error', 'connection lost during the run');
      hasOutcome = true;
    } else if (!hasOutcome) {
      status.set('error', 'disconnected');
    }
  },
});

$('run-keys').textContent = runKeys;
updateControls();
