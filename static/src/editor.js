// CodeMirror 6 editor. Colours come from CSS custom properties so the light and
// dark themes follow the system without reconfiguring the editor.
import { closeBrackets, closeBracketsKeymap } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import {
  HighlightStyle,
  bracketMatching,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
} from '@codemirror/language';
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
import { tags as t } from '@lezer/highlight';
import { editorMode } from './languages.js';

const highlight = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.moduleKeyword, t.operatorKeyword], color: 'var(--tok-keyword)' },
  { tag: [t.string, t.special(t.string), t.character], color: 'var(--tok-string)' },
  { tag: [t.number, t.bool, t.null, t.atom], color: 'var(--tok-number)' },
  { tag: [t.comment, t.lineComment, t.blockComment], color: 'var(--tok-comment)', fontStyle: 'italic' },
  { tag: [t.function(t.variableName), t.function(t.propertyName)], color: 'var(--tok-function)' },
  { tag: [t.definition(t.variableName), t.definition(t.function(t.variableName))], color: 'var(--tok-definition)' },
  { tag: [t.typeName, t.className, t.namespace, t.standard(t.variableName)], color: 'var(--tok-type)' },
  { tag: [t.processingInstruction, t.meta, t.macroName], color: 'var(--tok-meta)' },
  { tag: [t.escape, t.regexp], color: 'var(--tok-escape)' },
  { tag: t.invalid, color: 'var(--danger)' },
]);

const chrome = EditorView.theme({
  '&': { height: '100%', backgroundColor: 'var(--surface)', color: 'var(--text)' },
  '.cm-scroller': { fontFamily: 'var(--mono)', lineHeight: '1.5' },
  '.cm-content': { caretColor: 'var(--accent)' },
  '.cm-cursor, .cm-dropCursor': { borderLeftColor: 'var(--accent)' },
  '.cm-gutters': { backgroundColor: 'var(--surface)', color: 'var(--muted)', border: 'none' },
  '.cm-lineNumbers .cm-gutterElement': { padding: '0 0.75rem 0 1rem' },
  '.cm-activeLine': { backgroundColor: 'var(--active-line)' },
  '.cm-activeLineGutter': { backgroundColor: 'var(--active-line)', color: 'var(--text)' },
  '&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection': {
    backgroundColor: 'var(--selection) !important',
  },
  '.cm-matchingBracket': { backgroundColor: 'var(--bracket)', outline: 'none' },
  '&.cm-focused': { outline: 'none' },
});

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
  };
}
