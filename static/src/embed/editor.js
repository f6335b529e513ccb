// Loaded for an `editable` snippet: a small CodeMirror editor (no search, no
// autocompletion), coloured like the playground's.
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { bracketMatching, indentOnInput, indentUnit, syntaxHighlighting } from '@codemirror/language';
import { Compartment, EditorState, Prec } from '@codemirror/state';
import { EditorView, drawSelection, keymap, lineNumbers } from '@codemirror/view';
import { chrome, highlight } from '../editor-theme.js';
import { languageMode } from './modes.js';

/** Mount in `parent` (inside a shadow root: CodeMirror puts its styles there). Ctrl/Cmd-Enter runs. */
export function mountEditor(parent, { doc, language, label, onRun }) {
  const mode = new Compartment();
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        indentUnit.of('    '),
        EditorState.tabSize.of(4),
        Prec.highest(keymap.of([{ key: 'Mod-Enter', run: () => (onRun(), true) }])),
        // Tab indents; Escape then Tab moves focus out, as CodeMirror documents.
        keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
        syntaxHighlighting(highlight),
        chrome,
        mode.of([]),
        EditorView.contentAttributes.of({ 'aria-label': label }),
      ],
    }),
  });
  languageMode(language).then(
    (extension) => view.dispatch({ effects: mode.reconfigure(extension) }),
    () => {}, // no colours is still an editor
  );
  return { getCode: () => view.state.doc.toString(), focus: () => view.focus() };
}
