// Stylesheets for a shadow root, built once per page and shared by every
// snippet. Constructed sheets need no <style> element, so a page's CSP
// `style-src` need not allow inline styles for the widget's own.
const sheets = new Map();

/** Add `cssText` (a bundled stylesheet's text) to `root`'s adopted sheets. */
export function adoptStyles(root, cssText) {
  let sheet = sheets.get(cssText);
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(cssText);
    sheets.set(cssText, sheet);
  }
  if (!root.adoptedStyleSheets.includes(sheet)) root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
}
