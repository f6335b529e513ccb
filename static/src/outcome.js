// A run's outcome in plain words, for the one dim line the terminal gets after
// each run (the footer keeps the developer details). Built only from the
// server's `exit` message and the `started.limits`, never from program output.
import { formatBytes, formatDuration } from './status.js';

// Every signal a program can die of, in the words a student needs.
const SIGNAL_WORDS = {
  SIGSEGV: 'Segmentation fault — your program read or wrote memory it does not own',
  SIGBUS: 'Bus error — your program accessed memory at an impossible address',
  SIGFPE: 'Arithmetic error — your program divided an integer by zero (or overflowed one)',
  SIGILL: 'Illegal instruction — the program tried to run something the processor cannot',
  SIGABRT: 'Aborted — the program stopped itself (a failed assert, or abort())',
  SIGTRAP: 'Stopped at a trap (a breakpoint or a compiler-inserted check)',
  SIGSYS: 'Stopped: the program made a system call that is not allowed here',
  SIGPIPE: 'Stopped: the program wrote to a pipe nobody reads',
  SIGXCPU: 'Stopped: the program used up its CPU time',
  SIGXFSZ: 'Stopped: the program wrote a file larger than allowed',
  SIGINT: 'Interrupted (Ctrl-C)',
  SIGQUIT: 'Quit (Ctrl-\\)',
  SIGTERM: 'Terminated',
  SIGKILL: 'Killed',
  SIGHUP: 'Hung up: the terminal went away',
  SIGALRM: 'Stopped by its own alarm timer',
  SIGUSR1: 'Ended by signal SIGUSR1',
  SIGUSR2: 'Ended by signal SIGUSR2',
};

function exitedWords({ exit_code: code, signal, message }) {
  if (signal) return SIGNAL_WORDS[signal] ?? `Ended by signal ${signal}`;
  if (message) return `Finished with exit code ${code} — ${message}`;
  return code === 0 ? 'Finished' : `Finished with exit code ${code} (non-zero: something went wrong)`;
}

function timeoutWords(exit, limits) {
  if (exit.limit === 'cpu') {
    return limits.cpu_ms != null
      ? `Stopped after ${formatDuration(limits.cpu_ms)} of CPU time (an endless loop?)`
      : 'Stopped: used up its CPU time (an endless loop?)';
  }
  if (exit.limit === 'idle') return idleWords(limits);
  // The compile stage has its own time limit, not the run's wall clock.
  if (exit.stage === 'compile') return 'Stopped: compiling took too long';
  return limits.wall_ms != null
    ? `Stopped: the run took longer than ${formatDuration(limits.wall_ms)}`
    : 'Stopped: the run took too long';
}

function idleWords(limits) {
  return limits.idle_ms != null
    ? `Stopped: no input or output for ${formatDuration(limits.idle_ms)}`
    : 'Stopped: no input or output for too long';
}

/** One sentence for an `exit` message; `limits` are the run's effective limits (from `started`). */
export function plainOutcome(exit, limits = {}) {
  switch (exit.status) {
    case 'exited':
      return exitedWords(exit);
    case 'compile_error':
      return 'Did not compile — see the errors above (marked in the editor)';
    case 'timeout':
      return timeoutWords(exit, limits);
    case 'idle_timeout':
      return idleWords(limits);
    case 'oom':
      return limits.memory_mb != null
        ? `Stopped: used more than ${limits.memory_mb} MiB of memory`
        : 'Stopped: used too much memory';
    case 'output_limit':
      return limits.output_bytes != null
        ? `Output limit of ${formatBytes(limits.output_bytes)} reached — the program was stopped`
        : 'Output limit reached — the program was stopped';
    case 'killed':
      // A message says who stopped it when it was not you (gVisor's process limit).
      return exit.message ? `Stopped: ${exit.message}` : 'Stopped by you';
    case 'error':
      return `The server could not run the program${exit.message ? `: ${exit.message}` : ''}`;
    default:
      return `Ended: ${exit.status}`;
  }
}

/** The line as terminal text: dim, attributes reset before and after. */
export function outcomeLine(text) {
  // Control characters out: the server's `message` is shown, never interpreted.
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  return `\x1b[0m\x1b[2m— ${clean} —\x1b[0m\r\n`;
}
