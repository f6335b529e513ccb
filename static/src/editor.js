// CodeMirror 6 editor. Colours come from CSS custom properties so the light and
// dark themes follow the system without reconfiguring the editor.
import { closeBrackets, closeBracketsKeymap } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { bracketMatching, indentOnInput, indentUnit, syntaxHighlighting } from '@codemirror/language';
import { lintGutter, setDiagnostics } from '@codemirror/lint';
import { highlightSelectionMatches, searchKeymap } from '@codemirror/search';
import { Compartment, EditorState, Prec } from '@codemirror/state';
import {
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from '@codemirror/view';
import { columnOffset } from './diagnostics.js';
import { chrome, highlight } from './editor-theme.js';
import { editorMode } from './languages.js';

/**
 * Mount the editor in `parent`. `onRun` is bound to Ctrl/Cmd-Enter, `onChange`
 * gets the document after every edit. A `readOnly` editor (a viewer's copy of
 * the presenter's code) takes no edits but still lets its text be selected.
 */
export function createEditor(parent, { doc, language, onRun = () => {}, onChange = () => {}, readOnly = false }) {
  const mode = new Compartment();
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        indentUnit.of('    '),
        EditorState.tabSize.of(4),
        // Above the default keymap, whose Mod-Enter inserts a blank line.
        Prec.highest(keymap.of([{ key: 'Mod-Enter', run: () => (onRun(), true) }])),
        // Tab indents; Escape then Tab (or Ctrl-M) moves focus out, as CodeMirror documents.
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...searchKeymap, indentWithTab]),
        syntaxHighlighting(highlight),
        chrome,
        mode.of(editorMode(language)),
        lintGutter(),
        EditorView.contentAttributes.of({ 'aria-label': readOnly ? 'Code (read-only)' : 'Code editor' }),
        EditorState.readOnly.of(readOnly),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) onChange(update.state.doc.toString());
        }),
      ],
    }),
  });

  return {
    view,
    getCode: () => view.state.doc.toString(),
    /**
     * Replace the document; undoable like any other edit. Only the span that
     * differs is replaced, so a viewer following live edits keeps its scroll
     * position and selection.
     */
    setCode(code) {
      const current = view.state.doc.toString();
      if (code === current) return;
      let from = 0;
      const shorter = Math.min(code.length, current.length);
      while (from < shorter && code[from] === current[from]) from += 1;
      let tail = 0;
      while (tail < shorter - from && code[code.length - 1 - tail] === current[current.length - 1 - tail]) tail += 1;
      view.dispatch({ changes: { from, to: current.length - tail, insert: code.slice(from, code.length - tail) } });
    },
    setLanguage(language) {
      view.dispatch({ effects: mode.reconfigure(editorMode(language)) });
    },
    focus: () => view.focus(),
    /** Mark compiler problems (`{line, col, severity, message}`, 1-based); [] clears them. */
    mark(problems) {
      view.dispatch(setDiagnostics(view.state, problems.map((problem) => {
        const from = position(view.state.doc, problem);
        const line = view.state.doc.lineAt(from);
        return { from, to: Math.max(from, line.to), severity: problem.severity, message: problem.message };
      })));
    },
    /** Put the cursor at a 1-based line and column, scrolled into view, focused. */
    jumpTo(problem) {
      const anchor = position(view.state.doc, problem);
      view.dispatch({ selection: { anchor }, scrollIntoView: true });
      view.focus();
    },
  };
}

/** Document offset of a compiler's 1-based line and display column, clamped to the document. */
function position(doc, { line, col }) {
  const target = doc.line(Math.min(Math.max(line, 1), doc.lines));
  return target.from + columnOffset(target.text, col);
}
