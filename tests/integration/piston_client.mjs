// Drives the npm `piston-client` package, unchanged, against a server: one scenario per run.
// Usage: node piston_client.mjs <server URL> <scenario>; prints the client's answer as JSON.
import { piston } from "piston-client";

const [server, scenario] = process.argv.slice(2);
const client = piston({ server });

const scenarios = {
  runtimes: () => client.runtimes(),
  hello: () =>
    client.execute("python", "import sys\nprint('hello', input(), sys.argv[1:])", {
      stdin: "world",
    }),
  compileError: () => client.execute("c", "int main( { return 0; }\n"),
  runtimeError: () => client.execute("python", "import sys\nprint('dying')\nsys.exit(3)"),
  timeout: () => client.execute("python", "while True:\n    pass\n", { runTimeout: 1000 }),
};

console.log(JSON.stringify(await scenarios[scenario]()));
