import assert from "node:assert/strict";

// runMain decides exit codes and output, so it is tested in a real process.
const RUN_MAIN = new URL("./run_main.ts", import.meta.url).href;
const USAGE_ERROR = new URL("./usage_error.ts", import.meta.url).href;

async function runProgram(body: string, args: string[] = []) {
  const program = `
    import { runMain } from "${RUN_MAIN}";
    import { UsageError } from "${USAGE_ERROR}";
    runMain("usage: prog [serve]", async (args) => { ${body} });
  `;
  // `deno eval` would grant every permission, so the program runs from a file, with none.
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, program);
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", file, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() => Deno.remove(file));
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

Deno.test("runMain() prints usage to stdout and exits 0 for --help and -h", async () => {
  for (const flag of ["--help", "-h"]) {
    const result = await runProgram(`throw new Error("main must not run");`, ["serve", flag]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, "usage: prog [serve]\n");
    assert.equal(result.stderr, "");
  }
});

Deno.test("runMain() reports a UsageError on one stderr line, exit 2", async () => {
  const result = await runProgram(`throw new UsageError("unknown command \\"x\\"");`);
  assert.equal(result.code, 2);
  assert.equal(result.stderr, 'error: unknown command "x" (see --help)\n');
});

Deno.test("runMain() reports a failure on one stderr line, exit 1, no stack trace", async () => {
  const result = await runProgram(`await Deno.connect({ hostname: "127.0.0.1", port: 9 });`);
  assert.equal(result.code, 1);
  assert.equal(result.stderr.trim().split("\n").length, 1);
  assert.match(
    result.stderr,
    /^error: missing permission: needs net access to 127.0.0.1:9; run again with --allow-net=127.0.0.1\n$/,
  );
});

Deno.test("runMain() lets main finish normally: exit 0, output intact", async () => {
  const result = await runProgram(`console.log("ran with", JSON.stringify(args));`, ["a"]);
  assert.equal(result.code, 0);
  assert.equal(result.stdout, 'ran with ["a"]\n');
});
