// The notebooks, as CONTRACT.md promises them: kernel `deno`; committed with
// the outputs of one real top-to-bottom run; that run repeated here, under
// Jupyter, in under 60 s with no error output; and each one naming its script,
// the script's flags and RFCs, and importing the script rather than a copy.
//
// The static checks need only Deno. Executing needs Jupyter with the Deno
// kernel (see PEERS.jupyter); without it those tests are reported as ignored,
// or fail under WIREBOOK_REQUIRE_PEERS=1.

import assert from "node:assert/strict";
import { listScripts, PEERS, peerTest, readHeader, scriptPath } from "./_helpers.ts";
import {
  cellText,
  executeNotebook,
  findDenoKernel,
  KERNEL_HINT,
  listNotebooks,
  NOTEBOOK_TIME_LIMIT,
  notebookProblems,
  NOTEBOOKS_DIR,
  readNotebook,
} from "./nb.ts";

const notebooks = listNotebooks();

/** The script a notebook teaches, from its name: `01_tcp_echo.ipynb` -> `tcp_echo`. */
function scriptOf(notebook: string): string | undefined {
  return notebook.match(/^\d{2}_([a-z0-9_]+)\.ipynb$/)?.[1];
}

function textOf(notebook: string, kind: "markdown" | "code"): string {
  return readNotebook(NOTEBOOKS_DIR + notebook).cells
    .filter((cell) => cell.cell_type === kind)
    .map(cellText)
    .join("\n");
}

Deno.test("notebooks/ holds at least one notebook", () => {
  assert.ok(notebooks.length > 0, "no notebooks/*.ipynb");
});

for (const notebook of notebooks) {
  const script = scriptOf(notebook);

  Deno.test(`notebooks/${notebook} names its script, the script's flags and RFCs, and imports it`, () => {
    assert.ok(script, `${notebook}: the name must be NN_<script>.ipynb, e.g. 01_tcp_echo.ipynb`);
    const path = scriptPath(script);
    assert.ok(
      Deno.statSync(path).isFile,
      `${notebook} teaches scripts/${script}.ts, which does not exist`,
    );
    const prose = textOf(notebook, "markdown");
    assert.ok(
      prose.includes(`scripts/${script}.ts`),
      `${notebook} never names scripts/${script}.ts`,
    );
    for (const flag of readHeader(path).runFlags) {
      assert.ok(prose.includes(flag), `${notebook} never names the flag ${flag} its script needs`);
    }
    const rfcs = [
      ...Deno.readTextFileSync(path).matchAll(/^ \* @resource \{[^}]*\/rfc(\d+)[^}]*\}/gm),
    ]
      .map((match) => match[1]);
    for (const rfc of rfcs) {
      assert.ok(prose.includes(`RFC ${rfc}`), `${notebook} never names RFC ${rfc}`);
    }
    if (rfcs.length > 0) {
      assert.match(prose, /§\s?\d/, `${notebook} names no RFC section (§N.N)`);
    }
    // Imports the code the script runs, not a pasted copy.
    assert.ok(
      textOf(notebook, "code").includes(`from "../scripts/${script}.ts"`),
      `${notebook} does not import ../scripts/${script}.ts`,
    );
  });

  Deno.test(`notebooks/${notebook} is committed with the outputs of one clean run`, () => {
    const problems = notebookProblems(readNotebook(NOTEBOOKS_DIR + notebook));
    assert.deepEqual(
      problems,
      [],
      `${notebook}:\n  ${problems.join("\n  ")}\n(re-run it and save the outputs: deno task nb)`,
    );
  });
}

Deno.test("every script in scripts/ has a notebook that names it", () => {
  const missing = listScripts().filter((script) => {
    const notebook = notebooks.find((name) => scriptOf(name) === script);
    return !notebook || !textOf(notebook, "markdown").includes(`scripts/${script}.ts`);
  });
  assert.deepEqual(
    missing,
    [],
    `no notebooks/NN_<name>.ipynb naming scripts/<name>.ts for: ${missing.join(", ")}`,
  );
});

peerTest("Jupyter has the Deno kernel registered", [PEERS.jupyter], async () => {
  assert.ok(await findDenoKernel(), KERNEL_HINT);
});

for (const notebook of notebooks) {
  peerTest(
    `notebooks/${notebook} runs top to bottom under Jupyter in under 60 s, with no error output`,
    [PEERS.jupyter],
    async () => {
      assert.ok(await findDenoKernel(), KERNEL_HINT);
      const source = NOTEBOOKS_DIR + notebook;
      const committed = Deno.readFileSync(source);
      const folder = await Deno.makeTempDir({ prefix: "wirebook_nb_" });
      try {
        const executed = `${folder}/${notebook}`;
        const result = await executeNotebook(source, executed, { timeLimit: NOTEBOOK_TIME_LIMIT });
        assert.ok(!result.timedOut, `${notebook} took longer than ${NOTEBOOK_TIME_LIMIT / 1000} s`);
        assert.equal(result.error, null, `${notebook} failed:\n${result.error}`);
        const problems = notebookProblems(readNotebook(executed));
        assert.deepEqual(problems, [], `${notebook}, executed:\n  ${problems.join("\n  ")}`);
        assert.deepEqual(
          Deno.readFileSync(source),
          committed,
          `${notebook}: the committed file changed`,
        );
      } finally {
        await Deno.remove(folder, { recursive: true });
      }
    },
  );
}
