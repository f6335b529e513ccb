// The watch page, `/watch/<room>`: follows a presenter's room read-only
// (protocol.md §3): their code in a read-only editor, their terminal at their
// size, their runs' outcomes in the status line. States:
//   connecting → joining (`watch` sent) → waiting ⇄ live (a run is going)
//   waiting/live → offline (the presenter dropped) → back when they resume
//   any → closed (`room_closed`) or unknown (`unknown_room`): final
// A lost socket goes back to connecting and joins again (a fresh `watching`
// and replay redraw everything).
import './app.css';
import './watch.css';
import { Connection, socketUrl } from './connection.js';
import { createEditor } from './editor.js';
import { label } from './languages.js';
import { playgroundUrl } from './share.js';
import { createStatus, describeClose, describeError, describeExit } from './status.js';
import { createTerminal } from './terminal.js';

const $ = (id) => document.getElementById(id);
const ui = {
  state: $('room-state'),
  viewers: $('viewers'),
  openCopy: $('open-copy'),
  banner: $('connection'),
  language: $('code-language'),
  size: $('terminal-size'),
};
const status = createStatus($('status'), $('limits'));

const STATE_WORDS = {
  connecting: 'Connecting…',
  joining: 'Joining the room…',
  waiting: 'Live · waiting for the presenter to run something',
  live: 'Live · the presenter is running a program',
  offline: 'The presenter is offline · waiting for them to come back',
  closed: 'This room has ended',
  unknown: 'No such room',
};
const FINAL_STATES = new Set(['closed', 'unknown']);

const CLOSE_REASONS = {
  unshared: 'The presenter stopped presenting.',
  presenter_left: 'The presenter did not come back in time.',
  expired: 'The room reached the end of its lifetime.',
  server_shutdown: 'The server is restarting. Ask the presenter for a new link.',
};

const room = decodeURIComponent(location.pathname.split('/')[2] ?? '');
let state = 'connecting';
let snippet = { language: 'python', code: '' };
let runLimits = {};

function setState(next, detail) {
  state = next;
  ui.state.dataset.state = next;
  ui.state.textContent = STATE_WORDS[next];
  ui.openCopy.disabled = next === 'unknown' || next === 'connecting' || next === 'joining';
  if (detail) status.set(FINAL_STATES.has(next) ? 'warn' : next === 'live' ? 'busy' : 'idle', detail);
}

function setViewers(count) {
  ui.viewers.textContent = count === 1 ? '1 watching' : `${count ?? 0} watching`;
}

/** `{language, code}` from a `code` or `watching` message (`code`, or the entry file of `files`). */
function snippetOf(msg) {
  const entry = Array.isArray(msg.files) && msg.files.length ? msg.files[0] : null;
  let code = msg.code;
  if (code === undefined && entry) {
    code = entry.encoding === 'base64'
      ? new TextDecoder().decode(Uint8Array.from(atob(entry.content), (c) => c.charCodeAt(0)))
      : entry.content;
  }
  return { language: String(msg.language ?? snippet.language), code: String(code ?? '') };
}

const editor = createEditor($('editor'), { doc: '', language: snippet.language, readOnly: true });

function showCode(msg) {
  const next = snippetOf(msg);
  if (next.language !== snippet.language) editor.setLanguage(next.language);
  snippet = next;
  editor.setCode(next.code);
  ui.language.textContent = msg.language ? label(next.language) : ''; // none until the first `code`
}

const terminal = createTerminal($('terminal'), { viewer: true });
// Read-only hooks for the browser tests: the terminal's text as the viewer sees it, its size.
window.__ceTerminalText = () => terminal.text();
window.__ceTerminalSize = () => terminal.size();

function showSize(tty) {
  if (!tty?.cols || !tty?.rows) return;
  terminal.resize(tty.cols, tty.rows);
  ui.size.textContent = `${tty.cols}×${tty.rows} · read-only`;
}

const handlers = {
  watching(msg) {
    showCode(msg);
    setViewers(msg.viewers);
    terminal.reset(); // the replay that follows redraws a live run's screen
    showSize(msg);
    runLimits = msg.run?.limits ?? {};
    status.setLimits(msg.run ? runLimits : null);
    const live = msg.run ? 'live' : 'waiting';
    setState(msg.presenter === false ? 'offline' : live, msg.run ? 'running…' : 'ready');
  },
  code: showCode,
  viewers(msg) {
    setViewers(msg.count);
  },
  started(msg) {
    terminal.reset();
    showSize(msg.tty);
    runLimits = msg.limits ?? {};
    status.setLimits(runLimits);
    setState('live', 'started…');
  },
  stage(msg) {
    status.set('busy', msg.stage === 'compile' ? 'compiling…' : 'running…');
  },
  resize: showSize,
  exit(msg) {
    const { tone, text } = describeExit(msg, runLimits);
    status.set(tone, `Presenter's run: ${text}`);
    if (state === 'live') setState('waiting');
  },
  presenter(msg) {
    if (!msg.online) setState('offline');
    else if (state === 'offline') setState('waiting');
  },
  room_closed(msg) {
    setState('closed', CLOSE_REASONS[msg.reason] ?? 'The room has closed.');
  },
  error(msg) {
    if (msg.code === 'unknown_room') {
      setState('unknown', 'This room does not exist or has closed. Ask the presenter for a new link.');
      return;
    }
    status.set('error', describeError(msg));
  },
};

// A viewer never sends keystrokes, resizes or acks: the terminal is the presenter's.
const connection = new Connection(socketUrl(), {
  onOpen() {
    ui.banner.hidden = true;
    if (FINAL_STATES.has(state)) return;
    if (connection.send({ type: 'watch', room })) setState('joining');
  },
  onMessage(msg) {
    handlers[msg.type]?.(msg);
  },
  onOutput(bytes) {
    terminal.write(bytes, () => {});
  },
  onClose(info) {
    if (FINAL_STATES.has(state)) return;
    setState('connecting');
    ui.banner.textContent = describeClose(info);
    ui.banner.hidden = false;
  },
});

ui.openCopy.addEventListener('click', () => {
  // A copy of the code in the viewer's own playground, to run and change freely.
  window.open(playgroundUrl(snippet), '_blank', 'noopener');
});

if (!room) setState('unknown');
else setState('connecting');
setViewers(0);
