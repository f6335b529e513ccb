// Starter programs per language: a hello world and an interactive one that
// reads a line from the terminal, so a first visit shows both output and input.
import { canonical } from './languages.js';

export const EXAMPLE_KINDS = [
  { id: 'hello', label: 'Hello, world' },
  { id: 'input', label: 'Ask for a name' },
];

const EXAMPLES = {
  python: {
    hello: 'print("Hello, world!")\n',
    input: [
      'name = input("What\'s your name? ")',
      'print(f"Hello, {name}!")',
      '',
    ].join('\n'),
  },
  javascript: {
    hello: 'console.log("Hello, world!");\n',
    input: [
      'const readline = require("node:readline");',
      '',
      'const rl = readline.createInterface({ input: process.stdin, output: process.stdout });',
      'rl.question("What\'s your name? ", (name) => {',
      '  console.log(`Hello, ${name}!`);',
      '  rl.close();',
      '});',
      '',
    ].join('\n'),
  },
  c: {
    hello: [
      '#include <stdio.h>',
      '',
      'int main(void) {',
      '    printf("Hello, world!\\n");',
      '    return 0;',
      '}',
      '',
    ].join('\n'),
    input: [
      '#include <stdio.h>',
      '#include <string.h>',
      '',
      'int main(void) {',
      '    char name[100];',
      '    printf("What\'s your name? ");',
      '    fflush(stdout);',
      '    if (fgets(name, sizeof name, stdin) == NULL) return 1;',
      '    name[strcspn(name, "\\n")] = \'\\0\';',
      '    printf("Hello, %s!\\n", name);',
      '    return 0;',
      '}',
      '',
    ].join('\n'),
  },
  cpp: {
    hello: [
      '#include <iostream>',
      '',
      'int main() {',
      '    std::cout << "Hello, world!\\n";',
      '}',
      '',
    ].join('\n'),
    input: [
      '#include <iostream>',
      '#include <string>',
      '',
      'int main() {',
      '    std::string name;',
      '    std::cout << "What\'s your name? " << std::flush;',
      '    std::getline(std::cin, name);',
      '    std::cout << "Hello, " << name << "!\\n";',
      '}',
      '',
    ].join('\n'),
  },
  bash: {
    hello: 'echo "Hello, world!"\n',
    input: [
      'read -rp "What\'s your name? " name',
      'echo "Hello, $name!"',
      '',
    ].join('\n'),
  },
  ruby: {
    hello: 'puts "Hello, world!"\n',
    input: [
      'print "What\'s your name? "',
      'name = gets&.chomp',
      'puts "Hello, #{name}!"',
      '',
    ].join('\n'),
  },
};

/** The example program, or '' for a language we have no example for. */
export function example(language, kind = 'hello') {
  return EXAMPLES[canonical(language)]?.[kind] ?? '';
}

/**
 * Which example `code` is ('hello', 'input'), or undefined once the user has
 * edited it. Empty code counts as the hello example: there is nothing to lose.
 */
export function exampleKind(language, code) {
  if (code.trim() === '') return 'hello';
  const examples = EXAMPLES[canonical(language)] ?? {};
  return Object.keys(examples).find((kind) => examples[kind] === code);
}
