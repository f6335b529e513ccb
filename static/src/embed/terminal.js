// Loaded on a snippet's first Run: the playground's terminal (and its defences
// against hostile output) inside the snippet's shadow root, with xterm's styles.
import xtermCss from '@xterm/xterm/css/xterm.css';
import { createTerminal } from '../terminal.js';
import { adoptStyles } from './styles.js';

/** Mount in `parent`, `rows` rows high (the width follows the snippet's). */
export function mountTerminal(root, parent, rows, handlers) {
  adoptStyles(root, xtermCss);
  const terminal = createTerminal(parent, handlers);
  // The cell height comes from the font xterm measured: size the pane to it, then refit.
  const cell = parent.querySelector('.xterm-rows > div')?.getBoundingClientRect().height;
  if (cell) parent.style.setProperty('--cell-height', `${cell}px`);
  terminal.reset();
  return terminal;
}
