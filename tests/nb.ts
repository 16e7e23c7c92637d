/**
 * Re-execute the notebooks in notebooks/ in place, under Jupyter and the Deno
 * kernel, saving their outputs: what to run before committing a notebook.
 *
 * ```sh
 * deno task nb                  # every notebook
 * deno task nb 01_tcp_echo      # just these
 * ```
 *
 * A notebook is saved only if it ran top to bottom within the time limit with
 * no error and nothing on stderr; otherwise the committed file is left as it
 * was and the run exits 1. tests/notebooks_test.ts runs the same executor on
 * a temporary copy.
 *
 * Why not plain `jupyter nbconvert --execute`: the Deno kernel (2.9) can send
 * a cell's last `console.log` lines *after* it reports the cell finished, and
 * nbconvert (nbclient) drops whatever arrives after that. So the executor
 * below is nbclient, the library nbconvert runs, plus one step: after each
 * cell it runs a marker `console.log` and keeps collecting that cell's late
 * output until the marker comes through. The kernel forwards output in order,
 * so once the marker is in, so is everything before it.
 *
 * @module
 */

import { PYTHON, ROOT } from "./_helpers.ts";

/** The folder of notebooks. */
export const NOTEBOOKS_DIR = `${ROOT}notebooks/`;

/** How long a notebook may take, top to bottom, kernel start included (CONTRACT.md). */
export const NOTEBOOK_TIME_LIMIT = 60_000;

/** What to tell someone whose Jupyter has no Deno kernel. */
export const KERNEL_HINT =
  "the Deno kernel is not registered with Jupyter: run `deno jupyter --install`";

/** The parts of an .ipynb file the checks read. */
export interface Notebook {
  metadata: { kernelspec?: { name?: string } };
  cells: NotebookCell[];
}

/** One cell of a {@linkcode Notebook}. */
export interface NotebookCell {
  cell_type: "code" | "markdown" | "raw";
  source: string | string[];
  execution_count?: number | null;
  outputs?: NotebookOutput[];
}

/** One output of a code cell. */
export interface NotebookOutput {
  output_type: "stream" | "execute_result" | "display_data" | "error";
  name?: string;
  text?: string | string[];
  ename?: string;
  evalue?: string;
}

/** The notebooks' file names (`01_tcp_echo.ipynb`, ...), sorted; dot-files skipped. */
export function listNotebooks(): string[] {
  return [...Deno.readDirSync(NOTEBOOKS_DIR)]
    .filter((entry) => entry.isFile && entry.name.endsWith(".ipynb") && !entry.name.startsWith("."))
    .map((entry) => entry.name)
    .sort();
}

/** Read and parse an .ipynb file. */
export function readNotebook(path: string): Notebook {
  return JSON.parse(Deno.readTextFileSync(path));
}

/** A cell's source as one string. */
export function cellText(cell: NotebookCell): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

/**
 * What is wrong with an executed notebook, one line per problem: a kernel
 * other than `deno`, a code cell never executed, cells not executed in order
 * from 1 (not one top-to-bottom run), an error output, anything on stderr.
 */
export function notebookProblems(notebook: Notebook): string[] {
  const problems: string[] = [];
  const kernel = notebook.metadata.kernelspec?.name;
  if (kernel !== "deno") problems.push(`kernel is ${JSON.stringify(kernel)}, expected "deno"`);
  let expected = 1;
  for (const [index, cell] of notebook.cells.entries()) {
    if (cell.cell_type !== "code") continue;
    const where = `cell ${index + 1} (${
      JSON.stringify(cellText(cell).split("\n")[0].slice(0, 50))
    })`;
    if (typeof cell.execution_count !== "number") {
      problems.push(`${where} has not been executed`);
    } else if (cell.execution_count !== expected) {
      problems.push(`${where} has execution count ${cell.execution_count}, expected ${expected}`);
    }
    expected++;
    for (const output of cell.outputs ?? []) {
      if (output.output_type === "error") {
        problems.push(`${where} raised ${output.ename}: ${output.evalue}`);
      } else if (output.output_type === "stream" && output.name === "stderr") {
        const text = Array.isArray(output.text) ? output.text.join("") : output.text ?? "";
        problems.push(`${where} wrote to stderr: ${text.trim().split("\n")[0]}`);
      }
    }
  }
  return problems;
}

// The executor, run by Debian's Python, where nbclient is installed. It prints
// one JSON line: {"error": null | "...", "timedOut": bool, "seconds": n}.
const EXECUTOR = String.raw`
import asyncio, inspect, json, math, sys, time, uuid
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from jupyter_client.kernelspec import NoSuchKernel

source, destination, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
notebook = nbformat.read(source, as_version=4)

async def settle(value):
    return await value if inspect.isawaitable(value) else value

class Client(NotebookClient):
    # nbclient reads a cell's output here; note which request it belongs to.
    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        self.last_msg_id = parent_msg_id
        return await super()._async_poll_output_msg(parent_msg_id, cell, cell_index)

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        self.last_msg_id = None
        cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if cell.cell_type == "code":
            if not self.last_msg_id:
                raise RuntimeError("this nbclient version is not supported: cannot follow a cell's output")
            await self.catch_up(cell, cell_index)
        return cell

    # Collect the cell's late output: run a marker on stdout and stderr, and
    # take everything up to it. A late line may carry the marker's request as
    # its parent, so any marker-parented text other than the marker is the cell's.
    async def catch_up(self, cell, cell_index):
        token = "nb-sync-" + uuid.uuid4().hex
        marker = await settle(self.kc.execute(
            f'console.log("{token}"); console.error("{token}");', store_history=False))
        waiting = {"stdout", "stderr", "idle"}
        deadline = time.monotonic() + 15
        while waiting:
            msg = await settle(self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic())))
            parent, kind, content = msg["parent_header"].get("msg_id"), msg["msg_type"], msg["content"]
            if parent == marker:
                if kind == "status" and content.get("execution_state") == "idle":
                    waiting.discard("idle")
                elif kind == "stream":
                    if token in content["text"]:
                        waiting.discard(content["name"])
                        content["text"] = "".join(
                            line for line in content["text"].splitlines(True) if token not in line)
                    if content["text"]:
                        self.process_message(msg, cell, cell_index)
            elif parent == self.last_msg_id and kind not in ("status", "execute_input"):
                self.process_message(msg, cell, cell_index)
        while True:
            reply = await settle(self.kc.get_shell_msg(timeout=15))
            if reply["parent_header"].get("msg_id") == marker:
                break

# Tidy for a readable diff: one output per run of same-stream lines, and no
# per-cell timestamps (which would change on every run).
def tidy(notebook):
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        merged = []
        for output in cell.get("outputs", []):
            if (merged and output.output_type == "stream" and merged[-1].output_type == "stream"
                    and merged[-1].name == output.name):
                merged[-1].text += output.text
            else:
                merged.append(output)
        if "outputs" in cell:
            cell.outputs = merged

async def main():
    path = sys.argv[4]
    started = time.monotonic()
    result = {"error": None, "timedOut": False}
    try:
        client = Client(notebook, timeout=math.ceil(limit), startup_timeout=math.ceil(limit),
                        record_timing=False, resources={"metadata": {"path": path}})
        await asyncio.wait_for(client.async_execute(), timeout=limit)
    except asyncio.TimeoutError:
        pass  # reported below
    except NoSuchKernel as error:
        result["error"] = "no-such-kernel: " + str(error)
    except CellExecutionError as error:
        result["error"] = str(error)
    except Exception as error:
        result["error"] = f"{type(error).__name__}: {error}"
    # Stopping a run at the limit can surface as another error (the kernel died).
    if time.monotonic() - started >= limit:
        result["error"] = f"did not finish within {limit:g} s"
        result["timedOut"] = True
    result["seconds"] = round(time.monotonic() - started, 1)
    tidy(notebook)
    nbformat.write(notebook, destination)
    print(json.dumps(result))

asyncio.run(main())
`;

/** What {@linkcode executeNotebook} reports. */
export interface ExecutionResult {
  /** Why the run failed (a cell's error, the time limit, no kernel), or null. */
  error: string | null;
  /** True if the run passed the time limit and was stopped. */
  timedOut: boolean;
  /** How long the run took, kernel start included. */
  seconds: number;
}

/** Options for {@linkcode executeNotebook}. */
export interface ExecuteOptions {
  /** Stop the run after this many ms. @default {NOTEBOOK_TIME_LIMIT} */
  timeLimit?: number;
}

/**
 * Execute the notebook at `source` top to bottom with its own kernel, its
 * working folder the notebook's folder (so `../scripts/x.ts` resolves), and
 * write the executed notebook to `destination` (even if the run failed, so
 * the outputs can be read).
 */
export async function executeNotebook(
  source: string,
  destination: string,
  options: ExecuteOptions = {},
): Promise<ExecutionResult> {
  const { timeLimit = NOTEBOOK_TIME_LIMIT } = options;
  const folder = source.slice(0, source.lastIndexOf("/") + 1) || "./";
  const child = new Deno.Command(PYTHON, {
    args: ["-c", EXECUTOR, source, destination, String(timeLimit / 1000), folder],
    env: { NO_COLOR: "1", PYDEVD_DISABLE_FILE_VALIDATION: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // The executor enforces the limit itself and shuts its kernel down. This is
  // the backstop: SIGTERM (nbclient then stops the kernel), later SIGKILL.
  const term = setTimeout(() => child.kill("SIGTERM"), timeLimit + 20_000);
  const kill = setTimeout(() => child.kill("SIGKILL"), timeLimit + 30_000);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(term);
  clearTimeout(kill);
  const lines = new TextDecoder().decode(stdout).trim().split("\n");
  try {
    const result = JSON.parse(lines.at(-1)!) as ExecutionResult;
    if (result.error?.startsWith("no-such-kernel")) result.error = KERNEL_HINT;
    return result;
  } catch {
    const why = new TextDecoder().decode(stderr).trim().split("\n").slice(-5).join("\n");
    return {
      error: `the executor exited with code ${code} and no result:\n${why}`,
      timedOut: code === null,
      seconds: NaN,
    };
  }
}

/** Where Jupyter has the Deno kernel registered (its kernelspec folder), or null. */
export async function findDenoKernel(): Promise<string | null> {
  // What `jupyter kernelspec list` prints, asked of the library behind it
  // (Debian ships that command in a separate package, jupyter-client).
  const { stdout } = await new Deno.Command(PYTHON, {
    args: [
      "-c",
      "import json; from jupyter_client.kernelspec import KernelSpecManager as M;" +
      " print(json.dumps(M().find_kernel_specs()))",
    ],
    stdout: "piped",
    stderr: "null",
  }).output();
  try {
    return JSON.parse(new TextDecoder().decode(stdout)).deno ?? null;
  } catch {
    return null;
  }
}

async function main(names: string[]): Promise<number> {
  if (await findDenoKernel() === null) {
    console.error(`error: ${KERNEL_HINT}`);
    return 1;
  }
  const all = listNotebooks();
  const chosen = names.length === 0
    ? all
    : names.map((name) => name.replace(/^notebooks\//, "").replace(/(\.ipynb)?$/, ".ipynb"));
  let failed = 0;
  for (const name of chosen) {
    if (!all.includes(name)) {
      console.error(`error: no notebook notebooks/${name}; there are: ${all.join(", ")}`);
      failed++;
      continue;
    }
    const path = NOTEBOOKS_DIR + name;
    const running = `${NOTEBOOKS_DIR}.${name}.running`;
    const result = await executeNotebook(path, running);
    const problems = result.error ? [result.error] : notebookProblems(readNotebook(running));
    if (problems.length > 0) {
      try {
        Deno.removeSync(running);
      } catch { /* never written */ }
      console.error(`error: notebooks/${name} (left unchanged):\n  ${problems.join("\n  ")}`);
      failed++;
      continue;
    }
    Deno.renameSync(running, path);
    console.log(`notebooks/${name}: ran in ${result.seconds} s, outputs saved`);
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
