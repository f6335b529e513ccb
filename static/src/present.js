// "Present": this playground's connection opens a room (protocol.md §3) that
// others follow at its watch link, read-only: the editor's code as it changes
// and every run started here, output included. States:
//   off → opening (`share` sent) → live (`shared` received) → off (`unshare`)
//   live → reconnecting (socket lost) → opening (`share` with room and key) → live
// The room's key stays in this tab's sessionStorage, so a reload (or a dropped
// connection) takes the same room back within the server's resume window.
import { toCanvas } from 'qrcode';
import './present.css';
import { copyText } from './share.js';

// Viewers see edits within a second: one `code` per pause in typing, not per key.
const CODE_DEBOUNCE_MS = 150;
const STORED_ROOM = 'ce.present.room';
const QR_SIZE_PX = 176;
// Errors that answer a `share`: anything else arriving while opening is someone else's.
const SHARE_REFUSALS = new Set(['busy', 'rate_limited', 'unknown_room', 'unauthorized', 'bad_message', 'internal']);

const REFUSAL_WORDS = {
  busy: 'The server has no room left for another live room. Try again in a few minutes.',
  rate_limited: 'You already have as many live rooms as one client may open. Stop one first.',
  unknown_room: 'Your earlier room has closed. Press Present to open a new one.',
};

// `room_closed.reason`, as the presenter reads it.
const CLOSED_WORDS = {
  unshared: 'you stopped presenting',
  presenter_left: 'you were away longer than the server waits',
  expired: 'it reached its maximum lifetime',
  server_shutdown: 'the server restarted',
};

/** `/replay/<id>` for a recording URL `…/api/v1/recordings/<id>.cast`, or null. */
export function replayPath(recordingUrl) {
  const match = /\/recordings\/([A-Za-z0-9_-]+)\.cast$/.exec(new URL(recordingUrl, location.href).pathname);
  return match ? `/replay/${match[1]}` : null;
}

function viewersText(count) {
  if (!count) return 'No one is watching yet.';
  return count === 1 ? '1 person is watching.' : `${count} people are watching.`;
}

function loadStoredRoom() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORED_ROOM) ?? 'null');
    return stored && typeof stored.room === 'string' && typeof stored.key === 'string' ? stored : null;
  } catch {
    return null;
  }
}

function storeRoom(room) {
  try {
    if (room) sessionStorage.setItem(STORED_ROOM, JSON.stringify(room));
    else sessionStorage.removeItem(STORED_ROOM);
  } catch {
    // Storage refused (privacy mode): resuming after a reload is lost, nothing else.
  }
}

/**
 * The Present control. `send(msg)` sends a control message (false when the
 * socket is down); `snippet()` is the editor's `{language, code}`.
 * The page calls `connected()` on every (re)connection, `disconnected()` when
 * the socket drops, `codeChanged()` after edits and language changes, and
 * `onMessage(msg)` with every control message: true when the message was a
 * refusal to present, which concerns nothing else on the page.
 */
export function createPresenter({ send, snippet }) {
  const $ = (id) => document.getElementById(id);
  const ui = {
    button: $('present'),
    panel: $('present-panel'),
    url: $('present-url'),
    copy: $('present-copy'),
    qr: $('present-qr'),
    viewers: $('present-viewers'),
    note: $('present-note'),
    replay: $('present-replay'),
    replayLink: $('present-replay-link'),
    downloadLink: $('present-download-link'),
    stop: $('present-stop'),
  };

  let state = 'off';
  let room = loadStoredRoom(); // {room, key} while a room is ours (open or being taken back)
  let codeTimer = null;
  let socketOpen = false;

  function setState(next, note = '') {
    state = next;
    ui.button.setAttribute('aria-pressed', String(state !== 'off'));
    ui.button.textContent = state === 'off' ? 'Present' : 'Presenting';
    ui.button.disabled = state === 'opening';
    ui.panel.dataset.state = state;
    ui.stop.disabled = state === 'off';
    ui.note.textContent = note;
    if (state === 'off') ui.panel.hidden = !note; // keep a refusal readable
  }

  function sendCode() {
    clearTimeout(codeTimer);
    codeTimer = null;
    if (state === 'live') send({ type: 'code', ...snippet() });
  }

  async function showRoom(watchUrl) {
    ui.url.value = watchUrl;
    ui.panel.hidden = false;
    ui.qr.hidden = false;
    try {
      await toCanvas(ui.qr, watchUrl, { width: QR_SIZE_PX, margin: 1, errorCorrectionLevel: 'M' });
      ui.qr.dataset.encoded = watchUrl; // what the code says, for the tests
    } catch {
      ui.qr.hidden = true; // a link too long for a QR code: the text link still works
    }
  }

  function open() {
    if (!socketOpen) {
      ui.panel.hidden = false;
      ui.note.textContent = 'Not connected to the server yet: Present again once it is back.';
      return;
    }
    setState('opening', room ? 'Taking your room back…' : 'Opening a room…');
    ui.panel.hidden = false;
    send(room ? { type: 'share', room: room.room, key: room.key } : { type: 'share' });
  }

  function close(note = '') {
    room = null;
    storeRoom(null);
    clearTimeout(codeTimer);
    delete ui.qr.dataset.encoded;
    setState('off', note);
  }

  const handlers = {
    shared(msg) {
      room = { room: msg.room, key: msg.key };
      storeRoom(room);
      setState('live');
      ui.viewers.textContent = viewersText(0);
      showRoom(msg.watch_url);
      sendCode(); // viewers joining now see the code at once
    },
    viewers(msg) {
      if (state === 'live') ui.viewers.textContent = viewersText(msg.count);
    },
    room_closed(msg) {
      if (state !== 'off') close(`Your room has closed: ${CLOSED_WORDS[msg.reason] ?? msg.reason}.`);
    },
    exit(msg) {
      const path = msg.recording && replayPath(msg.recording);
      if (!path) return;
      ui.replayLink.href = path;
      ui.downloadLink.href = msg.recording;
      ui.replay.hidden = false;
    },
    error(msg) {
      if (state !== 'opening' || !SHARE_REFUSALS.has(msg.code)) return false;
      close(REFUSAL_WORDS[msg.code] ?? `The room could not be opened: ${msg.message ?? msg.code}.`);
      return true;
    },
  };

  ui.button.addEventListener('click', () => {
    if (state === 'off') open();
    else ui.panel.hidden = false;
  });
  ui.stop.addEventListener('click', () => {
    send({ type: 'unshare' });
    close();
    ui.button.focus();
  });
  ui.copy.addEventListener('click', async () => {
    ui.url.select();
    ui.note.textContent = (await copyText(ui.url.value))
      ? 'Watch link copied to the clipboard.'
      : 'Copy the watch link above.';
  });

  setState('off');
  return {
    connected() {
      socketOpen = true;
      if (room) open(); // take the room back: after a drop, or after a reload of this tab
    },
    disconnected() {
      socketOpen = false;
      if (state === 'live' || state === 'opening') {
        setState('reconnecting', 'Connection lost. Your viewers are waiting; reconnecting…');
      }
    },
    codeChanged() {
      if (state !== 'live') return;
      clearTimeout(codeTimer);
      codeTimer = setTimeout(sendCode, CODE_DEBOUNCE_MS);
    },
    onMessage(msg) {
      return handlers[msg.type]?.(msg) === true;
    },
  };
}
