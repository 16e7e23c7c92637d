import assert from "node:assert/strict";
import { parseFlags } from "./parse_flags.ts";
import { UsageError } from "./usage_error.ts";

const SPEC = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: 7007, integer: true, min: 0, max: 65535 },
  timeout: { type: "number", min: 0.001 },
  name: { type: "string" },
  quiet: { type: "boolean", short: "q" },
} as const;

Deno.test("parseFlags() applies defaults and types", () => {
  const { flags, positionals } = parseFlags([], SPEC);
  assert.deepEqual(flags, {
    host: "127.0.0.1",
    port: 7007,
    timeout: undefined,
    name: undefined,
    quiet: false,
  });
  assert.deepEqual(positionals, []);
});

Deno.test("parseFlags() reads both --flag value and --flag=value, short flags, and positionals", () => {
  const { flags, positionals } = parseFlags(
    ["send", "--port", "80", "--timeout=2.5", "-q", "hello", "--", "--not-a-flag"],
    SPEC,
  );
  assert.equal(flags.port, 80);
  assert.equal(flags.timeout, 2.5);
  assert.equal(flags.quiet, true);
  assert.deepEqual(positionals, ["send", "hello", "--not-a-flag"]);
});

Deno.test("parseFlags() names the flag in every usage error", () => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /unknown flag '--bogus'/],
    [["-x"], /unknown flag '-x'/],
    [["--port"], /--port/],
    [["--port", "eighty"], /--port must be a whole number from 0 to 65535, got "eighty"/],
    [["--port", "65536"], /--port must be/],
    [["--port", "1.5"], /--port must be a whole number/],
    [["--port", ""], /--port must be/],
    [["--timeout", "0"], /--timeout must be a number >= 0.001/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(() => parseFlags(args, SPEC), (error: Error) => {
      assert.ok(error instanceof UsageError, `${args}: ${error}`);
      assert.match(error.message, pattern);
      return true;
    });
  }
});

Deno.test("parseFlags() accepts --help and -h without a spec entry", () => {
  assert.doesNotThrow(() => parseFlags(["--help"], SPEC));
  assert.doesNotThrow(() => parseFlags(["-h"], {}));
});

Deno.test("parseFlags() collects a repeatable flag in order, and gives [] when it is absent", () => {
  const spec = { header: { type: "string", short: "H", multiple: true } } as const;
  const given = parseFlags(["-H", "A: 1", "--header=B: 2", "x", "--header", "C: 3"], spec);
  assert.deepEqual(given.flags.header, ["A: 1", "B: 2", "C: 3"]);
  assert.deepEqual(given.positionals, ["x"]);
  assert.deepEqual(parseFlags([], spec).flags.header, []);
  assert.throws(
    () => parseFlags([], { n: { type: "number", multiple: true } }),
    /only string flags can repeat/,
  );
});
