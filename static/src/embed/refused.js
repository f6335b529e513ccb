// What the server sends as /embed.js to a page whose origin it does not allow:
// each <ce-snippet> shows its code and says why it cannot run, instead of the
// widget failing silently. It holds nothing of the widget itself.
import snippetCss from './snippet.css';
import { snippetCode } from './source.js';
import { adoptStyles } from './styles.js';
import themeCss from '../theme.css';

const SERVER = new URL('.', import.meta.url).href;

class RefusedSnippet extends HTMLElement {
  connectedCallback() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({ mode: 'open' });
    adoptStyles(root, themeCss);
    adoptStyles(root, snippetCss);
    const box = document.createElement('div');
    box.className = 'snippet';
    const code = document.createElement('pre');
    code.className = 'code';
    code.textContent = snippetCode(this.textContent);
    const why = document.createElement('p');
    why.className = 'outcome';
    why.dataset.tone = 'error';
    why.setAttribute('role', 'alert');
    why.textContent = `This snippet cannot run: the Code Executor at ${SERVER} does not allow pages of `
      + `${location.origin}. Its administrator can add this origin to CE_ALLOWED_ORIGINS.`;
    box.append(code, why);
    root.append(box);
  }

  get output() {
    return '';
  }
}

if (!customElements.get('ce-snippet')) customElements.define('ce-snippet', RefusedSnippet);
