// <ce-snippet language="python">print(input("name? "))</ce-snippet>: a runnable
// snippet for any page the server allows. This entry holds only the element;
// the terminal (on the first Run) and the editor (for `editable`) load lazily.
import { describeError } from '../status.js';
import { describeOutcome } from './outcome.js';
import { startRun } from './run.js';
import snippetCss from './snippet.css';
import { snippetCode } from './source.js';
import { adoptStyles } from './styles.js';
import themeCss from '../theme.css';

const DEFAULT_ROWS = 12;
const MIN_ROWS = 2;
const MAX_ROWS = 60;
// The server this file came from: the default for every snippet's `server`.
const OWN_SERVER = new URL('.', import.meta.url).href;

const TEMPLATE = `
<div class="snippet" part="snippet">
  <div class="source"></div>
  <div class="bar">
    <button class="run" type="button">Run</button>
    <button class="stop" type="button" hidden>Stop</button>
    <span class="language"></span>
  </div>
  <div class="terminal" hidden></div>
  <p class="outcome" role="status" aria-live="polite"></p>
</div>`;

function serverBase(attribute) {
  if (!attribute) return OWN_SERVER;
  return new URL(attribute.endsWith('/') ? attribute : `${attribute}/`, location.href).href;
}

function unreachable(server) {
  return `Could not connect to the Code Executor at ${server}: it is not running there, or it `
    + `does not allow pages of ${location.origin} (its administrator can add this origin to CE_ALLOWED_ORIGINS).`;
}

export class CeSnippet extends HTMLElement {
  #ui = null;
  #code = '';
  #editor = null; // a promise of the editor, for `editable`
  #terminal = null; // a promise of the terminal, from the first Run on
  #terminalNow = null; // the terminal once loaded
  #run = null; // the active run: {phase: 'starting' | 'queued' | 'started', limits, socket}

  connectedCallback() {
    if (this.#ui) return; // moved in the page: keep its state
    this.#code = snippetCode(this.textContent);
    const root = this.attachShadow({ mode: 'open' });
    adoptStyles(root, themeCss);
    adoptStyles(root, snippetCss);
    root.innerHTML = TEMPLATE;
    const $ = (selector) => root.querySelector(selector);
    this.#ui = { root, source: $('.source'), run: $('.run'), stop: $('.stop'), terminal: $('.terminal'), outcome: $('.outcome') };
    $('.language').textContent = this.language;
    this.style.setProperty('--rows', String(this.rows));
    this.#ui.run.addEventListener('click', () => this.run());
    this.#ui.stop.addEventListener('click', () => this.stop());
    this.#showSource();
    if (!this.language) this.#say('error', 'This snippet has no language: add language="python" (or another) to <ce-snippet>.');
    this.#updateControls();
  }

  disconnectedCallback() {
    // Leaving the page ends the run: the server kills it when its socket closes.
    this.#run?.socket?.close();
  }

  get language() {
    return (this.getAttribute('language') ?? '').trim();
  }

  get rows() {
    const rows = Number.parseInt(this.getAttribute('rows') ?? '', 10);
    return Number.isFinite(rows) ? Math.min(Math.max(rows, MIN_ROWS), MAX_ROWS) : DEFAULT_ROWS;
  }

  /** The terminal's text so far (trailing blank lines dropped); '' before the first Run. */
  get output() {
    return this.#terminalNow?.text() ?? '';
  }

  /** Run the code as it is now (edited, for `editable`). */
  async run() {
    if (this.#run || !this.language) return;
    let server;
    try {
      server = serverBase(this.getAttribute('server'));
    } catch {
      this.#say('error', `The server attribute "${this.getAttribute('server')}" is not a URL.`);
      return;
    }
    const run = { phase: 'starting', limits: {}, socket: null, tty: null };
    this.#run = run;
    this.#updateControls();
    this.#say('busy', 'Starting…');
    // An editor that failed to load left the code as written.
    const code = this.#editor ? await this.#editor.then((editor) => editor.getCode(), () => this.#code) : this.#code;
    let terminal;
    try {
      terminal = await this.#mountTerminal();
    } catch {
      this.#end('error', `Could not load the terminal from ${server}; reload the page to try again.`);
      return;
    }
    if (this.#run !== run) return; // stopped while the terminal loaded
    terminal.reset();
    run.tty = terminal.size();
    // Callbacks of this run's socket are ignored once another run is the current one.
    const current = () => this.#run === run;
    run.socket = startRun(server, { language: this.language, code, tty: run.tty }, {
      onMessage: (msg) => {
        if (current()) this.#handlers[msg.type]?.(msg);
      },
      onOutput: (bytes) => {
        if (current()) terminal.write(bytes, () => {});
      },
      onClose: ({ opened, exited }) => {
        if (exited || !current()) return;
        if (!opened) this.#end('error', unreachable(server));
        else this.#end('error', 'The connection to the server was lost; the run is over.');
      },
    });
    terminal.focus();
  }

  /** Stop the running program (status `killed`). */
  stop() {
    if (!this.#run) return;
    if (!this.#run.socket) {
      this.#end('warn', 'Stopped before the program started.'); // the terminal was still loading
      return;
    }
    if (this.#run.phase === 'started') {
      this.#run.socket.send({ type: 'kill' });
      return;
    }
    // Not started yet (starting or queued): leaving is how a run is withdrawn.
    this.#run.socket.close();
    this.#end('warn', 'Stopped before the program started.');
  }

  #handlers = {
    queued: (msg) => this.#say('busy', `Waiting for a free slot (position ${msg.position})…`),
    started: (msg) => {
      if (!this.#run) return;
      this.#run.phase = 'started';
      this.#run.limits = msg.limits ?? {};
      this.#say('busy', 'Running…');
      this.#updateControls();
      // Resizes while starting were not sent (no run to resize yet): catch up.
      const { cols, rows } = this.#terminalNow.size();
      if (cols !== this.#run.tty.cols || rows !== this.#run.tty.rows) this.#run.socket.send({ type: 'resize', cols, rows });
    },
    stage: (msg) => this.#say('busy', msg.stage === 'compile' ? 'Compiling…' : 'Running…'),
    exit: (msg) => {
      const { tone, text } = describeOutcome(msg, this.#run?.limits);
      this.#end(tone, text);
      this.dispatchEvent(new CustomEvent('ce-exit', { detail: msg, bubbles: true, composed: true }));
    },
    error: (msg) => {
      // Keystrokes racing the end of a run: harmless.
      if (msg.code === 'not_running') return;
      const started = this.#run?.phase === 'started';
      // An error before `started` means the run was refused: nothing else will come.
      if (!started) {
        this.#run?.socket?.close();
        this.#end('error', describeError(msg));
      } else {
        this.#say('error', describeError(msg));
      }
    },
  };

  #showSource() {
    const { source } = this.#ui;
    const pre = document.createElement('pre');
    pre.className = 'code';
    pre.textContent = this.#code; // for `editable`, until the editor is there
    source.replaceChildren(pre);
    if (!this.hasAttribute('editable')) return;
    source.classList.add('editor');
    // Mounted in place: CodeMirror finds the shadow root from its parent, for its styles.
    this.#editor = import('./editor.js').then(({ mountEditor }) => {
      source.replaceChildren();
      return mountEditor(source, {
        doc: this.#code,
        language: this.language,
        label: `${this.language} code, editable`,
        onRun: () => this.run(),
      });
    });
    this.#editor.catch(() => {
      source.replaceChildren(pre);
      this.#say('error', 'Could not load the editor; the code runs as shown.');
    });
  }

  #mountTerminal() {
    this.#terminal ??= import('./terminal.js').then(({ mountTerminal }) => {
      this.#ui.terminal.hidden = false;
      this.#terminalNow = mountTerminal(this.#ui.root, this.#ui.terminal, this.rows, {
        isActive: () => this.#run?.phase === 'started',
        onInput: (bytes) => {
          if (this.#run?.phase === 'started') this.#run.socket.sendBytes(bytes);
        },
        onResize: ({ cols, rows }) => {
          if (this.#run?.phase === 'started') this.#run.socket.send({ type: 'resize', cols, rows });
        },
      });
      return this.#terminalNow;
    });
    this.#terminal.catch(() => {
      this.#terminal = null; // a later Run tries again
    });
    return this.#terminal;
  }

  #end(tone, text) {
    this.#run = null;
    this.#say(tone, text);
    this.#updateControls();
  }

  #say(tone, text) {
    this.#ui.outcome.dataset.tone = tone;
    this.#ui.outcome.textContent = text;
  }

  #updateControls() {
    const running = this.#run !== null;
    this.#ui.run.disabled = running || !this.language;
    this.#ui.stop.hidden = !running;
  }
}

if (!customElements.get('ce-snippet')) customElements.define('ce-snippet', CeSnippet);
