// xterm.js terminal: program output in, keystrokes out. Everything here treats
// the program's output as hostile: it may not reach the clipboard, the page
// title or an arbitrary link without the user saying so.
import { FitAddon } from '@xterm/addon-fit';
import { ImageAddon } from '@xterm/addon-image';
import { Terminal } from '@xterm/xterm';

// ANSI palettes per scheme; background and foreground come from the stylesheet
// (--term-bg, --term-fg) so the pane around the terminal matches it.
const PALETTES = {
  light: {
    selectionBackground: '#b6d3f7', selectionInactiveBackground: '#d9e4f2',
    black: '#24292f', red: '#c42b1c', green: '#116329', yellow: '#7d4e00',
    blue: '#0550ae', magenta: '#8250df', cyan: '#1b7c83', white: '#6e7781',
    brightBlack: '#57606a', brightRed: '#a40e26', brightGreen: '#1a7f37', brightYellow: '#633c01',
    brightBlue: '#218bff', brightMagenta: '#a475f9', brightCyan: '#3192aa', brightWhite: '#8c959f',
  },
  dark: {
    selectionBackground: '#2f4f7a', selectionInactiveBackground: '#2a3545',
    black: '#484f58', red: '#ff7b72', green: '#3fb950', yellow: '#d29922',
    blue: '#58a6ff', magenta: '#bc8cff', cyan: '#39c5cf', white: '#b1bac4',
    brightBlack: '#6e7681', brightRed: '#ffa198', brightGreen: '#56d364', brightYellow: '#e3b341',
    brightBlue: '#79c0ff', brightMagenta: '#d2a8ff', brightCyan: '#56d4dd', brightWhite: '#f0f6fc',
  },
};

const RESIZE_DEBOUNCE_MS = 120;

// Inline images (iTerm2's OSC 1337) are decoded to pixels and nothing
// else; these bound what one program's output can make the browser hold. The
// server's output cap bounds the bytes before that.
const IMAGE_LIMITS = {
  pixelLimit: 4 * 1024 * 1024, // one image: e.g. 2048 × 2048
  storageLimit: 64, // MB for every image on screen and in the scrollback
  iipSizeLimit: 8 * 1024 * 1024, // bytes of one OSC 1337 sequence
  // No SIXEL: one decoder fewer for a program's output to reach; plots come
  // as PNG in OSC 1337.
  sixelSupport: false,
  // No answers about the window's pixel size: the program gets only what it asked the TTY.
  enableSizeReports: false,
};

// Read where the terminal sits: custom properties inherit, into a shadow root too.
function cssVar(element, name) {
  return getComputedStyle(element).getPropertyValue(name).trim();
}

function theme(element, dark) {
  const background = cssVar(element, '--term-bg');
  const foreground = cssVar(element, '--term-fg');
  return {
    // Projector mode is light text on black whatever the system's scheme.
    ...PALETTES[dark || document.documentElement.hasAttribute('data-projector') ? 'dark' : 'light'],
    background, foreground, cursor: foreground, cursorAccent: background,
  };
}

/** Open `url` from an OSC 8 hyperlink, only for http(s) and only after the user agrees. */
function openLink(_event, text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return;
  if (window.confirm(`The program printed a link to:\n\n${url.href}\n\nOpen it in a new tab?`)) {
    window.open(url.href, '_blank', 'noopener,noreferrer');
  }
}

/**
 * Keys the page takes before xterm sees them (returning false hands the key to
 * the browser):
 * - Copy/paste as in desktop terminals: Ctrl+Shift+C/V always, Ctrl+C copies
 *   only while text is selected (otherwise it is ^C), Ctrl+V pastes; the
 *   browser's copy/paste events are then handled by xterm.
 * - Tab moves focus out while no program runs, and during a run right after
 *   Escape (Escape still reaches the program), like CodeMirror's editor.
 */
function pageKeys(term, isActive) {
  let escaped = false;
  return (event) => {
    if (event.type !== 'keydown') return true;
    const afterEscape = escaped;
    escaped = event.key === 'Escape';
    if (event.key === 'Tab' && !event.ctrlKey && !event.altKey && !event.metaKey) {
      return isActive() && !afterEscape;
    }
    if (!event.ctrlKey || event.altKey || event.metaKey) return true;
    const key = event.key.toLowerCase();
    if (key === 'c' && event.shiftKey) {
      event.preventDefault(); // not a native copy key (and DevTools' shortcut in Chromium)
      if (term.hasSelection()) navigator.clipboard?.writeText(term.getSelection()).catch(() => {});
      return false;
    }
    if (key === 'c' && term.hasSelection()) {
      // Let the native copy happen first, then drop the selection so the next Ctrl+C interrupts.
      setTimeout(() => term.clearSelection(), 0);
      return false;
    }
    return key !== 'v';
  };
}

/**
 * Mount the terminal in `parent`.
 * - `onInput(bytes)`: keystrokes and pastes, as UTF-8 bytes.
 * - `onResize({cols, rows})`: after the pane changed size (debounced).
 * - `isActive()`: whether a program is running and should get every key.
 * - `viewer`: a watcher's copy of someone else's terminal: it takes no input
 *   and keeps the size `resize()` gives it (the presenter's), not the pane's.
 *   Output passes through the same defences.
 */
export function createTerminal(parent, {
  onInput = () => {}, onResize = () => {}, isActive = () => false, viewer = false,
  fontSize = 14, screenReader = true,
}) {
  const dark = window.matchMedia('(prefers-color-scheme: dark)');
  const term = new Terminal({
    // Read from the stylesheet so the terminal uses the page's font stack; nothing is downloaded.
    fontFamily: cssVar(parent, '--mono'),
    fontSize,
    // The output is mirrored into a live region a screen reader can read.
    screenReaderMode: screenReader,
    lineHeight: 1.15,
    cursorBlink: true,
    scrollback: 5000,
    theme: theme(parent, dark.matches),
    linkHandler: { activate: openLink },
    disableStdin: viewer,
    cursorInactiveStyle: viewer ? 'none' : 'outline',
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.loadAddon(new ImageAddon(IMAGE_LIMITS));

  // OSC 52 would let the program write the user's clipboard: swallow it.
  term.parser.registerOscHandler(52, () => true);
  // Window titles (OSC 0/1/2) arrive through onTitleChange, which we never
  // subscribe to, so the program cannot rename the tab.

  term.attachCustomKeyEventHandler(pageKeys(term, isActive));

  const encoder = new TextEncoder();
  term.onData((data) => onInput(encoder.encode(data)));
  // Some mouse reports are raw bytes, not text: send them unencoded.
  term.onBinary((data) => onInput(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));

  term.open(parent);
  if (!viewer) fit.fit();

  dark.addEventListener('change', () => {
    term.options.theme = theme(parent, dark.matches);
  });

  if (!viewer) {
    let resizeTimer;
    new ResizeObserver(() => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => fit.fit(), RESIZE_DEBOUNCE_MS);
    }).observe(parent);
  }
  term.onResize(({ cols, rows }) => onResize({ cols, rows }));

  return {
    size: () => ({ cols: term.cols, rows: term.rows }),
    /** Write output bytes; `consumed(n)` runs once the terminal has processed them. */
    write(bytes, consumed) {
      term.write(bytes, () => consumed(bytes.length));
    },
    reset() {
      term.reset();
      if (!viewer) fit.fit();
    },
    /** A viewer's terminal takes the presenter's size. */
    resize(cols, rows) {
      if (cols !== term.cols || rows !== term.rows) term.resize(cols, rows);
    },
    focus: () => term.focus(),
    /** Type as if from the keyboard (the touch key bar). */
    input: (data) => term.input(data, true),
    /** A line from the page itself (not the program), started on a fresh line. */
    notice(text) {
      term.write(term.buffer.active.cursorX > 0 ? `\r\n${text}` : text);
    },
    setFontSize(size) {
      term.options.fontSize = size;
      if (!viewer) fit.fit();
    },
    setScreenReader(on) {
      term.options.screenReaderMode = on;
    },
    /** Re-read the colours from the stylesheet (after a theme or projector-mode change). */
    refreshTheme() {
      term.options.theme = theme(parent, dark.matches);
    },
    /** The whole buffer as plain text, wrapped rows joined (trailing blank lines dropped). */
    text() {
      const buffer = term.buffer.active;
      const lines = [];
      for (let i = 0; i < buffer.length; i += 1) {
        const line = buffer.getLine(i);
        const text = line?.translateToString(!buffer.getLine(i + 1)?.isWrapped) ?? '';
        if (line?.isWrapped && lines.length) lines[lines.length - 1] += text;
        else lines.push(text);
      }
      return lines.join('\n').replace(/\n+$/, '');
    },
  };
}
