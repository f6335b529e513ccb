// The preloaded Node launcher: node itself holds the container until "go".
//
// Started as `node --require /opt/ce/launch.js /opt/ce/launch.js`, so this
// file runs while node prepares its main module: the runtime is booted, no
// main module has been loaded yet. It announces READY on stdout, reads
// exactly one line from stdin (a JSON object, as for docker/runtime/launch),
// announces GO and returns; node then goes on exactly as `node FILE ARGS...`
// would, with FILE from the line. Nothing of this file is left for the
// program to see: its module is out of the cache, process.argv and
// process.execArgv are those of `node FILE ARGS...` (in worker threads too,
// which load this file again and return at once), and node's own
// `Module.runMain(...)` call loads FILE, so the main module, require.main,
// uncaught errors and their stack traces, exit codes and signals are node's.
//
// It reads and writes stdin and stdout by descriptor (fs.readSync and
// fs.writeSync), so process.stdin and process.stdout are still unmade when
// the program starts. The terminal's
// echo stays on (node cannot change it without making process.stdin): the
// echoed line comes before GO, and the server drops everything before GO.
// tests/integration/test_preload_conformance.py runs a corpus both ways.
'use strict';

const path = require('path');
const Module = module.constructor;

const READY = '\x1e[ce-ready]\n';
const GO = '\x1e[ce-go]\n';
const MAX_LINE = 4000; // a TTY in canonical mode cuts a line at 4095 bytes

function readLine(fs, fd) {
  // One byte at a time: what follows the line is the program's stdin.
  const line = Buffer.alloc(MAX_LINE);
  let length = 0;
  while (length < MAX_LINE && fs.readSync(fd, line, length, 1, null) === 1) {
    if (line[length] === 0x0a) break;
    length += 1;
  }
  return line.toString('utf8', 0, length).replace(/\r$/, '');
}

function refuse(fs, message) {
  fs.writeSync(2, `launch.js: ${message}\n`);
  process.exit(2);
}

function waitForGo(fs) {
  fs.writeSync(1, READY);
  const order = JSON.parse(readLine(fs, 0) || '{}');
  const argv = (order.argv || []).map(String);
  if (!order.here || argv[0] !== 'node' || argv.length < 2 || argv[1].startsWith('-')) {
    refuse(fs, `this box runs \`node FILE ARGS...\` only, not ${JSON.stringify(argv)}`);
  }
  fs.writeSync(1, GO);
  return argv;
}

function becomeMain([, file, ...args]) {
  const main = path.resolve(file);
  process.argv.splice(1, process.argv.length - 1, main, ...args);
  // Node's next step is `Module.runMain(<this file>)`. The first read of
  // runMain puts node's own function back and hands out one bound to FILE:
  // a bound function has no frame of its own, so a stack trace shows node's
  // `executeUserEntryPoint [as runMain]` under run_main_module, as usual.
  const runMain = Module.runMain;
  Object.defineProperty(Module, 'runMain', {
    configurable: true,
    enumerable: true,
    get() {
      Object.defineProperty(Module, 'runMain', {
        value: runMain, writable: true, enumerable: true, configurable: true,
      });
      return runMain.bind(Module, main);
    },
  });
}

function forget() {
  delete Module._cache[__filename];
  for (const key of Object.keys(Module._pathCache)) delete Module._pathCache[key];
}

// Worker threads inherit node's --require, and so load this file and see it
// in their execArgv too: the main thread is the one whose main module is
// still this file.
const execArgv = process.execArgv;
const isMainThread = process.argv[1] === __filename && execArgv.join(' ') === `--require ${__filename}`;
if (execArgv[0] === '--require' && execArgv[1] === __filename) execArgv.splice(0, 2);
if (isMainThread) {
  // Node's own modules that a program's first output or `require('fs')`
  // loads (streams, net, tty: 12-17 ms here), loaded now, not made: no
  // stream exists until the program makes one. Only node's internal list
  // of loaded modules (process.moduleLoadList) shows they came early.
  require('tty');
  becomeMain(waitForGo(require('fs')));
}
forget();
