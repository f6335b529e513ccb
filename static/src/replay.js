// The replay page, `/replay/<id>`: plays the asciicast v2 recording
// `/api/v1/recordings/<id>.cast` with asciinema-player (bundled here, never
// fetched from elsewhere) and offers the file for download. The recording is
// fetched first so a missing one gets a plain answer instead of the player's
// generic error. The player draws the output itself; like the terminal's,
// nothing in it reaches the clipboard or the page title.
import * as AsciinemaPlayer from 'asciinema-player';
import 'asciinema-player/dist/bundle/asciinema-player.css';
import './app.css';
import './replay.css';
import { createStatus } from './status.js';

const $ = (id) => document.getElementById(id);
const status = createStatus($('status'), $('limits'));
const id = decodeURIComponent(location.pathname.split('/')[2] ?? '');
const castUrl = `/api/v1/recordings/${encodeURIComponent(id)}.cast`;

const MISSING = 'This recording is not kept any more (old recordings are removed to make room), or the link is wrong.';

/** The header line's title and start time, for the toolbar. */
function describeHeader(cast) {
  try {
    const header = JSON.parse(cast.slice(0, cast.indexOf('\n')));
    const when = header.timestamp ? new Date(header.timestamp * 1000).toLocaleString() : '';
    return [header.title || 'Recorded run', when, `${header.width}×${header.height}`].filter(Boolean).join(' · ');
  } catch {
    return 'Recorded run';
  }
}

async function load() {
  $('download').href = castUrl;
  let response;
  try {
    response = await fetch(castUrl);
  } catch {
    status.set('error', 'The server could not be reached. Check your connection and reload the page.');
    return;
  }
  if (response.status === 404) {
    status.set('warn', MISSING);
    $('download').hidden = true;
    return;
  }
  if (!response.ok) {
    status.set('error', `The recording could not be loaded (HTTP ${response.status}). Reload to try again.`);
    return;
  }
  const cast = await response.text();
  $('recording-title').textContent = describeHeader(cast);
  const player = AsciinemaPlayer.create({ data: cast }, $('player'), {
    autoPlay: true,
    idleTimeLimit: 2,
    fit: 'both',
    controls: true, // always shown: a replay is watched, paused and sought
    terminalFontFamily: getComputedStyle(document.documentElement).getPropertyValue('--mono'),
  });
  status.set('busy', 'playing…');
  player.addEventListener('ended', () => {
    status.set('ok', 'played to the end · press ▶ to watch again');
    document.body.dataset.replay = 'ended';
  });
}

load();
