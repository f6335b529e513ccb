// The status line lives outside the terminal and is written only from the
// server's control messages (never from program output), with textContent, so
// a program cannot forge "exited 0".

const ERROR_WORDS = {
  bad_message: 'The server did not understand the request.',
  unknown_language: 'This server does not run that language.',
  code_too_large: 'The program is too large to run.',
  limit_exceeded: 'A requested limit is above what the server allows.',
  already_running: 'A program is already running.',
  not_running: 'No program is running.',
  unauthorized: 'Not authorized to run programs here.',
  rate_limited: 'Too many runs in a short time. Wait a moment and try again.',
  busy: 'The server is busy. Try again shortly.',
  internal: 'The server hit an internal error.',
  read_only: 'You are watching a room: its programs are the presenter\'s to run.',
  unknown_room: 'That room does not exist or has closed.',
};

const CLOSE_WORDS = {
  1008: 'the server refused the connection (origin or authorization)',
  1009: 'a message was too large',
  1011: 'the server hit an internal error',
  1013: 'the server is overloaded',
};

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  // Number() drops trailing zeros: "1 MiB", "9.8 MiB".
  return `${value >= 100 ? Math.round(value) : Number(value.toFixed(1))} ${units[unit]}`;
}

export function formatDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  // Number() drops trailing zeros: "2 s", "1.25 s".
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(ms < 10_000 ? 2 : 1))} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return seconds ? `${minutes} min ${seconds} s` : `${minutes} min`;
}

/** "10 s · idle 30 s · 256 MiB · …" from a `started.limits` object; absent fields are left out. */
export function formatLimits(limits) {
  const parts = [];
  if (limits.wall_ms != null) parts.push(`${formatDuration(limits.wall_ms)} wall`);
  if (limits.idle_ms != null) parts.push(`${formatDuration(limits.idle_ms)} idle`);
  if (limits.cpu_ms != null) parts.push(`${formatDuration(limits.cpu_ms)} CPU time`);
  if (limits.memory_mb != null) parts.push(`${limits.memory_mb} MiB`);
  if (limits.cpus != null) parts.push(`${limits.cpus} CPU`);
  if (limits.pids != null) parts.push(`${limits.pids} processes`);
  if (limits.output_bytes != null) parts.push(`${formatBytes(limits.output_bytes)} output`);
  return parts.join(' · ');
}

/** `{tone, text}` for an `exit` message; `limits` (from `started`) names the limit that was hit. */
export function describeExit(exit, limits = {}) {
  const parts = [];
  let tone = 'warn';
  switch (exit.status) {
    case 'exited':
      parts.push(`exited ${exit.exit_code ?? ''}`.trim() + (exit.signal ? ` (${exit.signal})` : ''));
      if (exit.exit_code === 0 && !exit.signal) tone = 'ok';
      break;
    case 'compile_error':
      parts.push(exit.exit_code != null ? `compile_error (exit ${exit.exit_code})` : 'compile_error');
      tone = 'error';
      break;
    case 'timeout':
      if (exit.limit === 'cpu') {
        parts.push(limits.cpu_ms != null ? `timeout: ${formatDuration(limits.cpu_ms)} of CPU time used` : 'timeout: CPU time used up');
      } else {
        parts.push(limits.wall_ms != null ? `timeout after ${formatDuration(limits.wall_ms)}` : 'timeout');
      }
      break;
    case 'idle_timeout':
      parts.push(limits.idle_ms != null
        ? `idle_timeout: no input or output for ${formatDuration(limits.idle_ms)}`
        : 'idle_timeout: no input or output for too long');
      break;
    case 'oom':
      parts.push(limits.memory_mb != null ? `oom: over ${limits.memory_mb} MiB of memory` : 'oom: out of memory');
      tone = 'error';
      break;
    case 'output_limit':
      parts.push(limits.output_bytes != null
        ? `output_limit: over ${formatBytes(limits.output_bytes)} of output`
        : 'output_limit: too much output');
      break;
    case 'killed':
      parts.push('killed');
      break;
    default:
      parts.push(String(exit.status));
      tone = 'error';
  }
  if (exit.wall_ms != null) parts.push(formatDuration(exit.wall_ms));
  if (exit.memory_peak_bytes != null) parts.push(formatBytes(exit.memory_peak_bytes));
  if (exit.truncated) parts.push('output truncated');
  if (exit.message) parts.push(exit.message);
  return { tone, text: parts.join(' · ') };
}

/** Plain words for an `error` message, keeping the server's own message as detail. */
export function describeError({ code, message, field }) {
  const words = ERROR_WORDS[code] ?? 'The server refused the request.';
  const detail = [message, field && `(field: ${field})`].filter(Boolean).join(' ');
  return detail && detail !== words ? `${words} ${detail}` : words;
}

export function describeClose({ code, retryInMs }) {
  const why = CLOSE_WORDS[code] ? ` (${CLOSE_WORDS[code]})` : '';
  return `Connection to the server lost${why}. Reconnecting in ${formatDuration(retryInMs)}…`;
}

/** Renders into the status element (`tone` is a CSS hook) and the limits element. */
export function createStatus(stateEl, limitsEl) {
  return {
    set(tone, text) {
      stateEl.dataset.tone = tone;
      stateEl.textContent = text;
    },
    setLimits(limits) {
      limitsEl.textContent = limits ? `Limits: ${formatLimits(limits)}` : '';
    },
  };
}
