// Pure logic of the playground page, run by Node's own test runner
// (`node --test tests/js/`, driven by tests/unit/test_page_logic.py).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { columnOffset, parseCompilerOutput } from '../../static/src/diagnostics.js';
import { outcomeLine, plainOutcome } from '../../static/src/outcome.js';
import { splitArgs } from '../../static/src/runoptions.js';
import { decodeFragment, encodeFragment } from '../../static/src/share.js';
import { createTypeAhead } from '../../static/src/typeahead.js';

const LIMITS = { wall_ms: 900_000, idle_ms: 300_000, cpu_ms: 10_000, memory_mb: 256, output_bytes: 1 << 20 };

test('every exit status has its sentence', () => {
  const said = (exit) => plainOutcome({ exit_code: null, signal: null, ...exit }, LIMITS);
  assert.equal(said({ status: 'exited', exit_code: 0 }), 'Finished');
  assert.match(said({ status: 'exited', exit_code: 3 }), /exit code 3/);
  assert.equal(said({ status: 'exited', exit_code: 139, signal: 'SIGSEGV' }),
    'Segmentation fault — your program read or wrote memory it does not own');
  assert.match(said({ status: 'exited', signal: 'SIGFPE' }), /divided an integer by zero/);
  assert.match(said({ status: 'exited', signal: 'SIGWINCH' }), /signal SIGWINCH/);
  assert.match(said({ status: 'compile_error', exit_code: 1 }), /Did not compile/);
  assert.equal(said({ status: 'timeout', limit: 'cpu' }), 'Stopped after 10 s of CPU time (an endless loop?)');
  assert.equal(said({ status: 'timeout', limit: 'wall' }), 'Stopped: the run took longer than 15 min');
  assert.equal(said({ status: 'timeout' }), 'Stopped: the run took longer than 15 min');
  assert.equal(said({ status: 'timeout', limit: 'wall', stage: 'compile' }), 'Stopped: compiling took too long');
  assert.equal(said({ status: 'idle_timeout', limit: 'idle' }), 'Stopped: no input or output for 5 min');
  assert.equal(said({ status: 'oom' }), 'Stopped: used more than 256 MiB of memory');
  assert.match(said({ status: 'output_limit' }), /^Output limit of 1 MiB reached/);
  assert.equal(said({ status: 'killed' }), 'Stopped by you');
  assert.equal(said({ status: 'killed', message: 'the program started more processes than its limit allows' }),
    'Stopped: the program started more processes than its limit allows');
  assert.match(said({ status: 'error', message: 'engine down' }), /could not run the program: engine down/);
});

test('the outcome line is dim and carries no control characters from the message', () => {
  const line = outcomeLine('bad\x1b]52;c;AAAA\x07news');
  assert.ok(line.startsWith('\x1b[0m\x1b[2m') && line.endsWith('\x1b[0m\r\n'));
  assert.ok(!line.slice(8, -6).includes('\x1b') && !line.includes('\x07'));
});

test("GCC's messages are parsed with their file, line, column and severity", () => {
  const output = [
    "/work/main.c: In function 'main':",
    "\x1b[01m\x1b[K/work/main.c:3:17:\x1b[m\x1b[K \x1b[01;31m\x1b[Kerror: \x1b[m\x1b[Kexpected ';' before 'return'",
    "main.c:7:5: warning: unused variable 'x' [-Wunused-variable]",
    'util.c:2: note: declared here',
    "/usr/bin/ld: main.c:(.text+0x1): undefined reference to 'f'",
  ].join('\r\n');
  assert.deepEqual(parseCompilerOutput(output), [
    { file: 'main.c', line: 3, col: 17, severity: 'error', message: "expected ';' before 'return'" },
    { file: 'main.c', line: 7, col: 5, severity: 'warning', message: "unused variable 'x' [-Wunused-variable]" },
    { file: 'util.c', line: 2, col: 1, severity: 'info', message: 'declared here' },
  ]);
});

test('display columns count a tab to the next multiple of 8', () => {
  assert.equal(columnOffset('abc', 1), 0);
  assert.equal(columnOffset('abc', 3), 2);
  assert.equal(columnOffset('\tx', 9), 1);
  assert.equal(columnOffset('ab', 99), 2);
});

test('arguments split on spaces, quotes group words', () => {
  assert.deepEqual(splitArgs(`one "two words"  'three' ""`), ['one', 'two words', 'three', '']);
  assert.deepEqual(splitArgs('   '), []);
});

test('a share link round-trips, and a damaged one says so', () => {
  const snippet = { language: 'python', code: 'print("héllo")\n' };
  assert.deepEqual(decodeFragment(encodeFragment(snippet)), { ...snippet, damaged: false });
  assert.equal(decodeFragment('#lang=python&code=%%%bad').damaged, true);
  assert.equal(decodeFragment('#lang=python&code=_w').damaged, true); // not UTF-8
  assert.equal(decodeFragment('#lang=python').damaged, true);
  assert.equal(decodeFragment('').damaged, false);
});

test('type-ahead keeps keys in order and is bounded', () => {
  const keys = createTypeAhead();
  assert.ok(keys.keep(new Uint8Array([97, 98])));
  assert.ok(keys.keep(new Uint8Array([13])));
  assert.deepEqual([...keys.take()], [97, 98, 13]);
  assert.equal(keys.take().length, 0);
  assert.ok(!keys.keep(new Uint8Array(64 * 1024 + 1)));
});
