// The contract test: every script in scripts/ keeps CONTRACT.md's points 1-8.
// It walks the folder when it loads, so a new script is checked the moment it
// lands. Then the same checks run on tests/fixtures/, scripts broken on
// purpose, one mistake each, to prove that each check catches what it claims.
//
// Tests in this file run one after another (Deno's default), which the
// leftover checks in _contract.ts rely on.

import assert from "node:assert/strict";
import { checkScript, importProblem, subcommands } from "./_contract.ts";
import { listScripts, ROOT, scriptPath } from "./_helpers.ts";

for (const name of listScripts()) {
  Deno.test(`contract: scripts/${name}.ts keeps points 1-8`, async () => {
    const violations = await checkScript(scriptPath(name));
    assert.deepEqual(
      violations,
      [],
      `scripts/${name}.ts breaks the contract:\n  ${violations.join("\n  ")}`,
    );
  });
}

// Each fixture, and the one violation the checks must report for it. A fixture
// breaks exactly one point, so every violation found must be of that point:
// a check that fires on the rest of the fixture would be a false alarm.
const FIXTURES: Record<string, { point: number; catches: RegExp } | null> = {
  good: null,
  no_difficulty: { point: 1, catches: /one non-empty @difficulty/ },
  bad_resource: { point: 1, catches: /@resource must read "\{https/ },
  no_notebook: { point: 1, catches: /must name its notebook, notebooks\/NN_no_notebook\.ipynb/ },
  shebang_mismatch: { point: 1, catches: /shebang's flags \(--allow-net\) and @run's/ },
  unscoped_flag: { point: 2, catches: /--allow-net is unscoped/ },
  unneeded_flag: { point: 2, catches: /also exits 0 without --allow-env=HOME/ },
  plain_net_fails: {
    point: 2,
    catches: /the plain form \(deno run --allow-net\) exited with code 1/,
  },
  demo_fails: { point: 3, catches: /the demo exited with code 1; expected 0/ },
  demo_hangs: { point: 3, catches: /the demo did not exit within 10 s/ },
  demo_leaves_listener: { point: 3, catches: /the demo left tcp 127\.0\.0\.1:\d+ listening/ },
  demo_silent: { point: 3, catches: /the demo printed nothing on stdout/ },
  serve_no_banner: { point: 4, catches: /no "listening on" line although it has tcp/ },
  serve_dies_on_sigterm: { point: 4, catches: /exited with signal SIGTERM on SIGTERM/ },
  serve_ignores_sigint: { point: 4, catches: /exited with signal SIGINT on SIGINT/ },
  serve_waits_for_clients: { point: 4, catches: /with an idle client connected: close every/ },
  serve_default_host_ipv6: {
    point: 4,
    catches: /default --host must be 127\.0\.0\.1, but the banner says "\[::1\]"/,
  },
  serve_banner_wrong_port: {
    point: 4,
    catches: /the banner names port \d+, but nothing listens there/,
  },
  help_to_stderr: { point: 6, catches: /--help printed nothing on stdout/ },
  help_omits_subcommand: { point: 6, catches: /--help does not mention the subcommand "ping"/ },
  unknown_flag_exit_1: { point: 6, catches: /an unknown flag .* exited with code 1; expected 2/ },
  trace_on_missing_permission: { point: 7, catches: /without permissions, stderr shows a stack/ },
  permission_error_unnamed: {
    point: 7,
    catches: /error line does not name the flag to add \(--allow-net\)/,
  },
  bare_import: { point: 8, catches: /imports "std\/fmt\/colors\.ts": a bare specifier/ },
  unpinned_npm: { point: 8, catches: /imports "npm:chalk@\^5": an npm: specifier must pin/ },
  reads_beside_itself: {
    point: 8,
    catches: /reads_beside_itself\.ts uses import\.meta\.dirname\/filename/,
  },
};

Deno.test("contract: every fixture in tests/fixtures/ has an expected violation here", () => {
  const files = [...Deno.readDirSync(`${ROOT}tests/fixtures`)]
    .filter((entry) => entry.name.endsWith(".ts") && !entry.name.startsWith("_"))
    .map((entry) => entry.name.slice(0, -3)).sort();
  assert.deepEqual(files, Object.keys(FIXTURES).sort());
});

for (const [name, expected] of Object.entries(FIXTURES)) {
  const label = expected ? `point ${expected.point}` : "no violation";
  Deno.test(`contract check on tests/fixtures/${name}.ts reports ${label}`, async () => {
    const violations = await checkScript(`${ROOT}tests/fixtures/${name}.ts`);
    const report = `violations:\n  ${violations.join("\n  ") || "(none)"}`;
    if (!expected) return assert.deepEqual(violations, [], report);
    assert.ok(violations.some((line) => expected.catches.test(line)), `not caught; ${report}`);
    const prefix = `point ${expected.point}: `;
    assert.ok(violations.every((line) => line.startsWith(prefix)), `false alarm; ${report}`);
  });
}

Deno.test("importProblem() allows relative, node: and pinned npm: imports only", () => {
  for (
    const ok of [
      "./x.ts",
      "../lib/x.ts",
      "node:util",
      "npm:ws@8.18.0",
      "npm:@scope/pkg@1.2.3-rc.1/sub",
    ]
  ) {
    assert.equal(importProblem(ok), undefined, ok);
  }
  const bad = {
    "std/assert": /bare/,
    "@std/assert": /bare/,
    "jsr:@std/assert@1.0.0": /only relative/,
    "https://deno.land/std/assert/mod.ts": /only relative/,
    "npm:ws": /pin/,
    "npm:ws@8": /pin/,
    "npm:ws@^8.18.0": /pin/,
    "npm:ws@latest": /pin/,
    "/abs/x.ts": /absolute/,
  };
  for (const [specifier, problem] of Object.entries(bad)) {
    assert.match(importProblem(specifier) ?? "(allowed)", problem, specifier);
  }
});

Deno.test("subcommands() finds the commands a script dispatches on", () => {
  const source = `
    if (command === "serve") return;
    if ("send" === command) return;
    switch (verb) {
      case "get":
      case "put": break;
    }
    switch (reply.code) {
      case "HELO": break;
    }
  `;
  assert.deepEqual(subcommands(source), ["get", "put", "send", "serve"]);
});
