// View preferences remembered per browser (localStorage): the font size, the
// projector mode (large fonts, high contrast) and the terminal's screen-reader
// mode. Applied as attributes and a CSS variable on <html>, so the stylesheet
// does the looks.

const STORAGE_KEY = 'ce.preferences';
export const FONT_SIZES = [12, 14, 16, 18, 20, 24, 28, 32];
const DEFAULTS = { fontSize: 14, projector: false, screenReader: true };
// Projector mode never shows text smaller than this, whatever the chosen size.
const PROJECTOR_MIN_FONT = 24;

function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}');
    return {
      fontSize: FONT_SIZES.includes(saved.fontSize) ? saved.fontSize : DEFAULTS.fontSize,
      projector: typeof saved.projector === 'boolean' ? saved.projector : DEFAULTS.projector,
      screenReader: typeof saved.screenReader === 'boolean' ? saved.screenReader : DEFAULTS.screenReader,
    };
  } catch {
    return { ...DEFAULTS }; // storage blocked or a damaged value: the defaults
  }
}

function save(prefs) {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(prefs));
  } catch {
    // Private windows may refuse storage; the choice then lasts for this page only.
  }
}

/** The font size in effect: the chosen one, raised in projector mode. */
export function effectiveFontSize(prefs) {
  return prefs.projector ? Math.max(prefs.fontSize, PROJECTOR_MIN_FONT) : prefs.fontSize;
}

/**
 * Bind the controls (`font-size` select, `projector` and `screen-reader`
 * checkboxes); `apply(prefs)` runs now and after every change.
 */
export function createPreferences($, apply) {
  const prefs = load();
  const fontSize = $('font-size');
  const projector = $('projector');
  const screenReader = $('screen-reader');
  fontSize.replaceChildren(...FONT_SIZES.map((size) => new Option(`${size} px`, String(size))));

  function render() {
    fontSize.value = String(prefs.fontSize);
    projector.checked = prefs.projector;
    screenReader.checked = prefs.screenReader;
    const root = document.documentElement;
    root.toggleAttribute('data-projector', prefs.projector);
    root.style.setProperty('--code-size', `${effectiveFontSize(prefs)}px`);
    apply({ ...prefs, fontSize: effectiveFontSize(prefs) });
  }

  function update(change) {
    Object.assign(prefs, change);
    save(prefs);
    render();
  }

  fontSize.addEventListener('change', () => update({ fontSize: Number(fontSize.value) }));
  projector.addEventListener('change', () => update({ projector: projector.checked }));
  screenReader.addEventListener('change', () => update({ screenReader: screenReader.checked }));
  render();
  return { current: () => ({ ...prefs, fontSize: effectiveFontSize(prefs) }) };
}
