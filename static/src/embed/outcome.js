// A run's end in plain words, for the line under a snippet's terminal. Written
// only from the server's `exit` message, never from program output, so a
// program cannot forge it.
import { formatBytes, formatDuration } from '../status.js';

function ended(exit) {
  const code = exit.exit_code;
  if (exit.signal) return { tone: 'warn', text: `The program was ended by the signal ${exit.signal}.` };
  if (code === 0) return { tone: 'ok', text: 'The program finished successfully (exit code 0).' };
  return { tone: 'warn', text: `The program finished with exit code ${code}.` };
}

const WORDS = {
  exited: ended,
  compile_error: () => ({ tone: 'error', text: 'The code did not compile: the compiler’s messages are above.' }),
  timeout: (exit, limits) => ({
    tone: 'warn',
    text: limits.wall_ms != null
      ? `Stopped: the program ran longer than its ${formatDuration(limits.wall_ms)}.`
      : 'Stopped: the program ran longer than its time limit.',
  }),
  idle_timeout: (exit, limits) => ({
    tone: 'warn',
    text: `Stopped: the program printed nothing and read nothing for ${
      limits.idle_ms != null ? formatDuration(limits.idle_ms) : 'too long'}.`,
  }),
  oom: (exit, limits) => ({
    tone: 'error',
    text: `Stopped: the program used more than its ${limits.memory_mb != null ? `${limits.memory_mb} MiB of ` : ''}memory.`,
  }),
  output_limit: (exit, limits) => ({
    tone: 'warn',
    text: `Stopped: the program printed more than ${limits.output_bytes != null ? formatBytes(limits.output_bytes) : 'its output limit'}.`,
  }),
  killed: (exit) => (exit.message
    ? { tone: 'error', text: `Stopped: ${exit.message}.` }
    : { tone: 'warn', text: 'Stopped.' }),
};

/** `{tone, text}` for an `exit` message; `limits` (from `started`) names the limit that was hit. */
export function describeOutcome(exit, limits = {}) {
  const words = WORDS[exit.status]?.(exit, limits)
    ?? { tone: 'error', text: 'The server could not run the program.' };
  const details = [];
  if (exit.wall_ms != null) details.push(formatDuration(exit.wall_ms));
  if (exit.truncated) details.push('output cut short');
  if (exit.message) details.push(exit.message);
  return { tone: words.tone, text: details.length ? `${words.text} (${details.join(' · ')})` : words.text };
}
