// Keys a phone's on-screen keyboard lacks, as a bar under the terminal: shown
// on touch screens only, each button types its key into the terminal.

const KEYS = [
  { label: 'Ctrl-C', data: '\x03', title: 'Interrupt the program (Ctrl-C)' },
  { label: 'Ctrl-D', data: '\x04', title: 'End of input (Ctrl-D)' },
  { label: 'Tab', data: '\t', title: 'Tab' },
  { label: 'Esc', data: '\x1b', title: 'Escape' },
  { label: '←', data: '\x1b[D', title: 'Left arrow' },
  { label: '↑', data: '\x1b[A', title: 'Up arrow' },
  { label: '↓', data: '\x1b[B', title: 'Down arrow' },
  { label: '→', data: '\x1b[C', title: 'Right arrow' },
];

function isTouchScreen() {
  return window.matchMedia('(pointer: coarse)').matches || navigator.maxTouchPoints > 0;
}

/** Fill `bar` with the keys; `type(data)` sends one. The bar stays hidden without a touch screen. */
export function createKeyBar(bar, type) {
  bar.replaceChildren(...KEYS.map(({ label, data, title }) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'key';
    button.textContent = label;
    button.title = title;
    button.setAttribute('aria-label', title);
    // pointerdown keeps the focus (and the phone's keyboard) on the terminal.
    button.addEventListener('pointerdown', (event) => event.preventDefault());
    button.addEventListener('click', () => type(data));
    return button;
  }));
  bar.hidden = !isTouchScreen();
}
