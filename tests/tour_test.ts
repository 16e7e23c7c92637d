// The course map and the tour: README.md lists every script in scripts/, in
// reading order, and `deno task tour` runs each demo in that order, stopping
// at the first that fails.

import assert from "node:assert/strict";
import { entryPath, readCourseMap } from "./_course.ts";
import { listScripts, ROOT, runDeno } from "./_helpers.ts";

Deno.test("course map: README.md has a row for every script in scripts/, and only those", () => {
  const listed = readCourseMap().map((entry) => entry.script);
  const scripts = listScripts().map((name) => `scripts/${name}.ts`);
  assert.deepEqual(
    {
      "scripts without a row": scripts.filter((script) => !listed.includes(script)),
      "rows without a script": listed.filter((script) => !scripts.includes(script)),
      "rows listed twice": listed.filter((script, i) => listed.indexOf(script) !== i),
    },
    { "scripts without a row": [], "rows without a script": [], "rows listed twice": [] },
  );
});

Deno.test("course map: rows are numbered 1..n, each with the notebook its script names", () => {
  const entries = readCourseMap();
  assert.deepEqual(entries.map((entry) => entry.number), entries.map((_, i) => i + 1));
  for (const entry of entries) {
    const notebook = `notebooks/${String(entry.number).padStart(2, "0")}_${entry.name}.ipynb`;
    assert.equal(entry.notebook, notebook, `row ${entry.number}'s notebook`);
    const source = Deno.readTextFileSync(entryPath(entry));
    assert.ok(source.includes(notebook), `${entry.script}'s header does not name ${notebook}`);
  }
});

Deno.test("tour: deno task tour runs every demo, in course order", async () => {
  const entries = readCourseMap();
  const result = await runDeno(["task", "tour"], { timeout: 600_000 });
  assert.equal(result.code, 0, `the tour failed:\n${result.stderr}`);
  // The tour's own headings; a demo may print "== ..." lines of its own.
  const headings = result.stdout.split("\n").filter((line) =>
    /^== \d+\. .*: scripts\/\w+\.ts ==$/.test(line)
  );
  assert.deepEqual(
    headings,
    entries.map((entry) => `== ${entry.number}. ${entry.concept}: ${entry.script} ==`),
  );
  assert.match(result.stdout, new RegExp(`tour: all ${entries.length} demos ran and exited 0`));
});

Deno.test("tour: stops at the first failing demo, naming it and its exit code", async () => {
  const result = await runDeno([
    "run",
    "--allow-run=deno",
    "--allow-read=tests/fixtures",
    "tests/tour.ts",
    `${ROOT}tests/fixtures/tour_course_map.md`,
  ], { timeout: 120_000 });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stdout, /^== 1\. Good: good\.ts ==$/m);
  assert.match(result.stdout, /^== 2\. Failing demo: demo_fails\.ts ==$/m);
  assert.doesNotMatch(result.stdout, /== 3\./);
  assert.match(
    result.stderr,
    /^tour: stopped at 2\. Failing demo: demo_fails\.ts exited with code 1$/m,
  );
});
