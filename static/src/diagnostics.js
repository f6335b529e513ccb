// Compiler messages (GCC and G++ print `file:line:col: error: text`) read back
// from the compile stage's terminal output, so the editor can mark the lines
// and a list under it can jump to them.

// The compile stage of a student's program prints a few KiB; past this the rest is not read.
const MAX_LOG_CHARS = 64 * 1024;
const MAX_PROBLEMS = 50;
// GCC counts display columns with tabs every 8 (-ftabstop's default).
const TAB_STOP = 8;

// CSI and OSC sequences (GCC colours its output on a TTY).
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;
const LINE = /^(?:\.\/)?([^\s:][^:]*):(\d+):(?:(\d+):)? (fatal error|error|warning|note): (.*)$/;

/** `{file, line, col, severity, message}` for each compiler message, in order. */
export function parseCompilerOutput(text) {
  const problems = [];
  for (const raw of text.replace(ESCAPES, '').split(/\r?\n|\r/)) {
    const match = LINE.exec(raw.trim());
    if (!match) continue;
    const [, file, line, col, kind, message] = match;
    problems.push({
      file: file.split('/').pop(),
      line: Number(line),
      col: col ? Number(col) : 1,
      severity: kind === 'note' ? 'info' : kind === 'warning' ? 'warning' : 'error',
      message,
    });
    if (problems.length === MAX_PROBLEMS) break;
  }
  return problems;
}

/** The 0-based character offset in `text` of GCC's 1-based display column `col`. */
export function columnOffset(text, col) {
  let display = 1;
  for (let i = 0; i < text.length; i += 1) {
    if (display >= col) return i;
    display = text[i] === '\t' ? display + TAB_STOP - ((display - 1) % TAB_STOP) : display + 1;
  }
  return text.length;
}

/** Collects the compile stage's output as text (bounded). */
export function createCompileLog() {
  let decoder = null;
  let text = '';
  return {
    start() {
      decoder = new TextDecoder();
      text = '';
    },
    /** Forget the last run's messages (a run without a compile stage has none). */
    clear() {
      decoder = null;
      text = '';
    },
    stop() {
      if (decoder) text += decoder.decode();
      decoder = null;
    },
    feed(bytes) {
      if (decoder && text.length < MAX_LOG_CHARS) text += decoder.decode(bytes, { stream: true });
    },
    problems: () => parseCompilerOutput(text),
  };
}

/**
 * The list of problems under the editor: one button per message, which
 * `jump({line, col})`s there. Empty and hidden when there are none.
 */
export function createProblemList(element, jump) {
  return {
    show(problems) {
      element.replaceChildren(...problems.map((problem) => {
        const item = document.createElement('li');
        const button = document.createElement('button');
        button.type = 'button';
        button.className = `problem problem-${problem.severity}`;
        button.textContent = `${problem.file}:${problem.line}:${problem.col} ${problem.severity}: ${problem.message}`;
        button.addEventListener('click', () => jump(problem));
        item.append(button);
        return item;
      }));
      element.hidden = problems.length === 0;
    },
  };
}
