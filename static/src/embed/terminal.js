// Loaded on a snippet's first Run: the playground's terminal (and its defences
// against hostile output) inside the snippet's shadow root, with xterm's styles.
import xtermCss from '@xterm/xterm/css/xterm.css';
import { createTerminal } from '../terminal.js';
import { adoptStyles } from './styles.js';

export function mountTerminal(root, parent, handlers) {
  adoptStyles(root, xtermCss);
  return createTerminal(parent, handlers);
}
