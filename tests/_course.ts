// The course map: README.md's table of concepts, in reading order.
//
// The tour (tests/tour.ts) walks it to run every demo in order, and
// tests/tour_test.ts checks that it lists every script in scripts/. Both read it
// through here, so the README stays the one place the order is written down.

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout's README.md. */
export const README = fileURLToPath(new URL("../README.md", import.meta.url));

/** One row of the course map. */
export interface CourseEntry {
  /** The row's `#`. */
  number: number;
  /** The Concept column, e.g. `TCP echo`. */
  concept: string;
  /** The Script column's link, as written: relative to the README's folder (`scripts/tcp_echo.ts`). */
  script: string;
  /** The script's name without folder or `.ts` (`tcp_echo`). */
  name: string;
  /** The Notebook column's link, as written, if the row has one. */
  notebook?: string;
}

/**
 * Parse the table under the `## The course map` heading. Columns are found by
 * their header (`#`, `Concept`, `Script`, `Notebook`), so more columns may be
 * added; each Script cell must be a Markdown link to a `.ts` file.
 */
export function parseCourseMap(markdown: string): CourseEntry[] {
  const lines = markdown.split("\n");
  const heading = lines.findIndex((line) => /^##\s+The course map\s*$/i.test(line));
  if (heading < 0) throw new Error('no "## The course map" heading');
  const start = lines.findIndex((line, i) => i > heading && line.trimStart().startsWith("|"));
  const nextHeading = lines.findIndex((line, i) => i > heading && /^#{1,2}\s/.test(line));
  if (start < 0 || (nextHeading >= 0 && start > nextHeading)) {
    throw new Error('no table under "## The course map"');
  }
  const table: string[][] = [];
  for (let i = start; i < lines.length && lines[i].trimStart().startsWith("|"); i++) {
    table.push(cells(lines[i]));
  }
  const [header, rule, ...rows] = table;
  if (!rule || !rule.every((cell) => /^:?-+:?$/.test(cell))) {
    throw new Error("the course map table has no header rule (| - | --- |)");
  }
  const column = (title: string) => {
    const index = header.findIndex((cell) => cell.toLowerCase() === title.toLowerCase());
    if (index < 0 && title !== "Notebook") {
      throw new Error(`the course map has no "${title}" column`);
    }
    return index;
  };
  const [numberAt, conceptAt, scriptAt, notebookAt] = ["#", "Concept", "Script", "Notebook"]
    .map(column);

  return rows.map((row, i) => {
    const where = `course map row ${i + 1}`;
    const number = Number(row[numberAt]);
    if (!Number.isInteger(number)) {
      throw new Error(`${where}: "#" is not a number: ${row[numberAt]}`);
    }
    const script = linkTarget(row[scriptAt] ?? "");
    if (!script || !script.endsWith(".ts")) {
      throw new Error(`${where}: the Script cell is not a link to a .ts file: ${row[scriptAt]}`);
    }
    const notebook = notebookAt >= 0 ? linkTarget(row[notebookAt] ?? "") : undefined;
    const name = script.slice(script.lastIndexOf("/") + 1, -".ts".length);
    return { number, concept: row[conceptAt] ?? "", script, name, notebook };
  });
}

/** Read and parse the course map of a README (the checkout's by default). */
export function readCourseMap(readme: string = README): CourseEntry[] {
  return parseCourseMap(Deno.readTextFileSync(readme));
}

/** The absolute path of an entry's script, given the README it came from. */
export function entryPath(entry: CourseEntry, readme: string = README): string {
  return join(dirname(readme), entry.script);
}

// "| 1 | TCP echo | [a](b) |" -> ["1", "TCP echo", "[a](b)"]
function cells(line: string): string[] {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((cell) => cell.trim());
}

// "[scripts/tcp_echo.ts](scripts/tcp_echo.ts)" -> "scripts/tcp_echo.ts"
function linkTarget(cell: string): string | undefined {
  return cell.match(/\[[^\]]*\]\(([^)\s]+)\)/)?.[1];
}
