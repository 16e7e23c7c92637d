// scripts/rest_api.ts: every route and error, hundreds of parallel writes that
// lose nothing, and a data file that survives SIGKILL whole.

import assert from "node:assert/strict";
import {
  type Book,
  BooksClient,
  booksHandler,
  BookStore,
  type Collection,
  etagMatches,
  etagOf,
  JsonFile,
  mergePatch,
  Mutex,
  type Persistence,
  serveBooks,
  updateWithRetry,
  validateBook,
  validateCollection,
  ValidationError,
} from "../scripts/rest_api.ts";
import { DENO, runScript, scriptPath, startProcess } from "./_helpers.ts";

const NET = "--allow-net=127.0.0.1";
const dune = { title: "Dune", author: "Frank Herbert", year: 1965 };

/** An in-memory server on a free port, stopped (and awaited) by `close()`. */
function startApi(store = new BookStore(), maxBody = 16384) {
  const controller = new AbortController();
  const server = serveBooks(store, { port: 0, maxBody, signal: controller.signal });
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    store,
    url,
    client: new BooksClient(url),
    async close() {
      controller.abort();
      await server.finished;
    },
  };
}

/** The flags --help names for `serve --data FILE`. */
function dataFlags(file: string): string[] {
  return [NET, `--allow-read=${file},${file}.tmp`, `--allow-write=${file},${file}.tmp`];
}

function startDataServer(file: string) {
  return startProcess(DENO, [
    "run",
    "--no-prompt",
    ...dataFlags(file),
    scriptPath("rest_api"),
    "serve",
    "--port",
    "0",
    "--quiet",
    "--data",
    file,
  ]);
}

// ---------------------------------------------------------------------------
// Pieces
// ---------------------------------------------------------------------------

Deno.test("validateBook() accepts a whole book and names the field of each mistake", () => {
  assert.deepEqual(validateBook(dune), dune);
  const cases: [unknown, string, RegExp][] = [
    [[1, 2], "", /must be a JSON object, got an array/],
    ["Dune", "", /must be a JSON object/],
    [{ ...dune, year: "1965" }, "year", /"year" must be a whole number.*"1965" \(a string\)/],
    [{ ...dune, year: 1965.5 }, "year", /whole number/],
    [{ ...dune, year: 123456 }, "year", /from -9999 to 9999/],
    [{ author: "x", year: 1 }, "title", /"title" is required/],
    [{ ...dune, title: 42 }, "title", /"title" must be a string, got 42 \(a number\)/],
    [{ ...dune, author: "  " }, "author", /must not be empty/],
    [{ ...dune, author: null }, "author", /must be a string, got null/],
    [{ ...dune, title: "x".repeat(201) }, "title", /at most 200/],
    [{ ...dune, isbn: "123" }, "isbn", /unknown field "isbn"/],
    [{ ...dune, id: 3 }, "id", /assigned by the server/],
  ];
  for (const [input, field, message] of cases) {
    assert.throws(() => validateBook(input), (error: unknown) => {
      assert.ok(error instanceof ValidationError, String(error));
      assert.equal(error.field, field, JSON.stringify(input));
      assert.match(error.message, message);
      return true;
    });
  }
  // With the id the URL names (PUT), an id in the body must match it.
  assert.deepEqual(validateBook({ id: 4, ...dune }, 4), dune);
  assert.throws(() => validateBook({ id: 5, ...dune }, 4), /the URL names book 4/);
});

Deno.test("mergePatch() follows RFC 7396's examples", () => {
  // Appendix A, a selection.
  const cases: [unknown, unknown, unknown][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [["a", "b"], ["c", "d"], ["c", "d"]],
    [{ a: "foo" }, null, null],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, result] of cases) {
    assert.deepEqual(mergePatch(target, patch), result, JSON.stringify({ target, patch }));
  }
  const original = { a: { b: 1 } };
  mergePatch(original, { a: { b: 2 } });
  assert.deepEqual(original, { a: { b: 1 } }, "the target is not modified");
});

Deno.test("etagMatches() compares strongly for If-Match, weakly for If-None-Match", () => {
  const etag = etagOf(dune);
  assert.match(etag, /^"[A-Za-z0-9_-]{16}"$/);
  assert.equal(etagOf({ ...dune }), etag, "same representation, same tag");
  assert.notEqual(etagOf({ ...dune, year: 1966 }), etag);
  assert.ok(etagMatches(etag, etag, false));
  assert.ok(etagMatches(`"other", ${etag}`, etag, false));
  assert.ok(etagMatches("*", etag, false));
  assert.ok(!etagMatches(`W/${etag}`, etag, false), "a weak tag never matches strongly");
  assert.ok(etagMatches(`W/${etag}`, etag, true));
  assert.ok(!etagMatches('"a,b"', '"a"', true), "a comma inside a tag is part of it");
  assert.ok(!etagMatches("garbage", etag, true));
});

Deno.test("Mutex runs tasks one at a time, in order, and survives a failing one", async () => {
  const mutex = new Mutex();
  const order: string[] = [];
  let active = 0;
  const task = (name: string, fail = false) =>
    mutex.run(async () => {
      assert.equal(active++, 0, "two tasks overlapped");
      order.push(`${name} start`);
      await new Promise((resolve) => setTimeout(resolve, 1));
      order.push(`${name} end`);
      active--;
      if (fail) throw new Error(name);
      return name;
    });
  const results = await Promise.allSettled([task("a"), task("b", true), task("c")]);
  assert.deepEqual(order, ["a start", "a end", "b start", "b end", "c start", "c end"]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
});

/** A persistence that takes a while to save and checks that saves never overlap. */
class SlowMemory implements Persistence {
  saved?: Collection;
  saves = 0;
  #saving = false;
  load() {
    return Promise.resolve(this.saved);
  }
  async save(collection: Collection) {
    assert.ok(!this.#saving, "two saves overlapped");
    this.#saving = true;
    await new Promise((resolve) => setTimeout(resolve, Math.random() < 0.5 ? 0 : 1));
    this.saved = structuredClone(collection);
    this.saves++;
    this.#saving = false;
  }
}

Deno.test("BookStore: 300 parallel creates and updates, each saved once, none lost", async () => {
  const persistence = new SlowMemory();
  const store = await BookStore.open(persistence);
  const books = await Promise.all(
    Array.from({ length: 300 }, (_, i) => store.create({ ...dune, title: `Book ${i}` })),
  );
  assert.deepEqual(books.map((b) => b.id).sort((a, b) => a - b), books.map((_, i) => i + 1));
  // 300 parallel merge patches, each to its own book, plus 300 to one book.
  await Promise.all([
    ...books.map((book) => store.update(book.id, { year: book.id })),
    ...books.map(() => store.update(1, { author: "Everyone" })),
  ]);
  assert.equal(persistence.saves, 900);
  assert.deepEqual(persistence.saved, store.snapshot());
  for (const book of store.list()) assert.equal(book.year, book.id);
  assert.equal(store.get(1)?.author, "Everyone");
  assert.equal(store.snapshot().nextId, 301);
});

Deno.test("BookStore: a failed save changes nothing", async () => {
  const store = await BookStore.open({
    load: () => Promise.resolve({ nextId: 2, books: [{ id: 1, ...dune }] }),
    save: () => Promise.reject(new Error("disk full")),
  });
  await assert.rejects(store.create(dune), /disk full/);
  await assert.rejects(store.update(1, { year: 2000 }), /disk full/);
  assert.deepEqual(store.snapshot(), { nextId: 2, books: [{ id: 1, ...dune }] });
});

Deno.test("validateCollection() refuses duplicate ids, ids past nextId and bad books", () => {
  const ok = { nextId: 3, books: [{ id: 1, ...dune }, { id: 2, ...dune }] };
  assert.deepEqual(validateCollection(ok), ok);
  assert.throws(() => validateCollection([]), /JSON object/);
  assert.throws(() => validateCollection({ nextId: 0, books: [] }), /nextId/);
  assert.throws(() => validateCollection({ nextId: 3, books: {} }), /"books" must be an array/);
  assert.throws(
    () => validateCollection({ nextId: 3, books: [{ id: 1, ...dune }, { id: 1, ...dune }] }),
    /id 1 appears twice/,
  );
  assert.throws(
    () => validateCollection({ nextId: 2, books: [{ id: 2, ...dune }] }),
    /from 1 to 1/,
  );
  assert.throws(
    () => validateCollection({ nextId: 2, books: [{ id: 1, ...dune, year: "x" }] }),
    /books\[0\]: "year"/,
  );
});

// ---------------------------------------------------------------------------
// Over HTTP, in process
// ---------------------------------------------------------------------------

Deno.test("every route: create (201 + Location), list, get, replace, merge patch, delete", async () => {
  const api = startApi();
  try {
    const { client } = api;
    const created = await client.create(dune);
    assert.equal(created.status, 201);
    assert.equal(created.headers.get("location"), "/books/1");
    assert.equal(created.headers.get("content-type"), "application/json");
    assert.deepEqual(created.body, { id: 1, ...dune });
    assert.equal(created.headers.get("etag"), etagOf({ id: 1, ...dune }));
    const location = new URL(created.headers.get("location")!, api.url);
    const fetched = await client.request("GET", location.pathname);
    assert.deepEqual(fetched.body, { id: 1, ...dune });

    await client.create({ title: "Foundation", author: "Isaac Asimov", year: 1950 });
    const list = await client.list();
    assert.equal(list.status, 200);
    assert.deepEqual((list.body as Book[]).map((b) => b.id), [1, 2]);

    const replaced = await client.replace(2, {
      title: "I, Robot",
      author: "Isaac Asimov",
      year: 1950,
    });
    assert.equal(replaced.status, 200);
    assert.equal((replaced.body as Book).title, "I, Robot");
    const patched = await client.update(2, { year: 1951 });
    assert.deepEqual(patched.body, {
      id: 2,
      title: "I, Robot",
      author: "Isaac Asimov",
      year: 1951,
    });
    // application/json is taken as a merge patch too.
    const plain = await client.request("PATCH", "/books/2", { body: '{"year":1952}' });
    assert.equal((plain.body as Book).year, 1952);

    const removed = await client.remove(1);
    assert.equal(removed.status, 204);
    assert.equal(removed.body, undefined);
    assert.equal((await client.get(1)).status, 404);
    assert.deepEqual(((await client.list()).body as Book[]).map((b) => b.id), [2]);

    const head = await client.request("HEAD", "/books/2");
    assert.equal(head.status, 200);
    assert.equal(head.body, undefined);
    assert.equal(head.headers.get("etag"), etagOf(api.store.get(2)));
    const options = await client.request("OPTIONS", "/books/2");
    assert.equal(options.status, 204);
    assert.equal(options.headers.get("allow"), "GET, HEAD, PUT, PATCH, DELETE, OPTIONS");
    assert.match(options.headers.get("accept-patch")!, /application\/merge-patch\+json/);
  } finally {
    await api.close();
  }
});

Deno.test("conditional requests: 304 on If-None-Match, 412 on a stale If-Match", async () => {
  const api = startApi();
  try {
    const { client } = api;
    const created = await client.create(dune);
    const etag = created.headers.get("etag")!;
    const notModified = await client.get(1, { "if-none-match": etag });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body, undefined);
    assert.equal((await client.get(1, { "if-none-match": `W/${etag}` })).status, 304);
    const list = await client.list();
    assert.equal((await client.list({ "if-none-match": list.headers.get("etag")! })).status, 304);

    const updated = await client.update(1, { year: 1966 }, { "if-match": etag });
    assert.equal(updated.status, 200);
    assert.equal((await client.get(1, { "if-none-match": etag })).status, 200, "it changed");
    const stale = await client.update(1, { year: 1967 }, { "if-match": etag });
    assert.equal(stale.status, 412);
    assert.match((stale.body as { detail: string }).detail, /has changed/);
    assert.equal((await client.replace(1, dune, { "if-match": etag })).status, 412);
    assert.equal((await client.remove(1, { "if-match": etag })).status, 412);
    assert.equal(api.store.get(1)?.year, 1966, "no stale write went through");
    assert.equal(
      (await client.remove(1, { "if-match": updated.headers.get("etag")! })).status,
      204,
    );
    // No book: 404 wins over the precondition (RFC 9110 §13.2.1).
    assert.equal((await client.update(1, { year: 1 }, { "if-match": "*" })).status, 404);
  } finally {
    await api.close();
  }
});

Deno.test("conditional requests: both fields on every method (If-None-Match: * never overwrites)", async () => {
  const api = startApi();
  try {
    const { client } = api;
    const etag = (await client.create(dune)).headers.get("etag")!;
    const stale = '"not-this-version"';
    const detail = (response: { body: unknown }) => (response.body as { detail: string }).detail;

    // If-None-Match: * on a PUT, a PATCH or a DELETE: the book exists, so 412 (§13.1.2).
    const overwrite = await client.replace(1, { ...dune, year: 2000 }, { "if-none-match": "*" });
    assert.equal(overwrite.status, 412);
    assert.match(detail(overwrite), /^book 1 exists, and If-None-Match: \* asks that it not/);
    assert.equal((await client.update(1, { year: 2000 }, { "if-none-match": "*" })).status, 412);
    assert.equal((await client.remove(1, { "if-none-match": "*" })).status, 412);
    // A matching tag on a write is 412 too; a tag that does not match lets it through.
    assert.equal((await client.update(1, { year: 2000 }, { "if-none-match": etag })).status, 412);
    assert.deepEqual(api.store.get(1), { id: 1, ...dune }, "nothing was written");
    const changed = await client.update(1, { year: 1966 }, { "if-none-match": stale });
    assert.equal(changed.status, 200);
    const current = changed.headers.get("etag")!;

    // If-Match on a GET or HEAD: a stale version is 412, not the book (§13.1.1).
    assert.equal((await client.get(1, { "if-match": etag })).status, 412);
    assert.equal(
      (await client.request("HEAD", "/books/1", { headers: { "if-match": etag } }))
        .status,
      412,
    );
    assert.equal((await client.list({ "if-match": stale })).status, 412);
    assert.equal((await client.get(1, { "if-match": current })).status, 200);
    // If-Match first: a failed If-Match is 412 even where If-None-Match alone would be 304.
    const both = await client.get(1, { "if-match": stale, "if-none-match": current });
    assert.equal(both.status, 412);
    assert.equal((await client.get(1, { "if-none-match": "*" })).status, 304);

    // POST checks them against the collection.
    assert.equal(
      (await client.request("POST", "/books", {
        body: JSON.stringify(dune),
        headers: { "if-none-match": "*" },
      })).status,
      412,
    );
    assert.equal(api.store.list().length, 1);
  } finally {
    await api.close();
  }
});

Deno.test("errors: each 4xx has its status, a problem+json body and the bad field", async () => {
  const api = startApi(new BookStore(), 1024);
  try {
    const { client } = api;
    await client.create(dune);
    const expect = async (
      response: Promise<Awaited<ReturnType<BooksClient["request"]>>>,
      status: number,
      detail: RegExp,
      field?: string,
    ) => {
      const answer = await response;
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      assert.equal(answer.headers.get("content-type"), "application/problem+json");
      const body = answer.body as { status: number; title: string; detail: string; field?: string };
      assert.equal(body.status, status);
      assert.ok(body.title);
      assert.match(body.detail, detail);
      assert.equal(body.field, field);
      return answer;
    };
    await expect(
      client.request("POST", "/books", { body: '{"title": "Dune",' }),
      400,
      /^malformed JSON/,
    );
    await expect(client.request("POST", "/books", { body: "" }), 400, /body is empty/);
    await expect(
      client.request("POST", "/books", { body: "[]" }),
      400,
      /JSON object, got an array/,
    );
    await expect(client.create({ ...dune, year: "1965" }), 400, /"year" must be/, "year");
    await expect(client.create({ ...dune, year: true }), 400, /got true \(a boolean\)/, "year");
    await expect(client.create({ ...dune, pages: 412 }), 400, /unknown field "pages"/, "pages");
    await expect(client.replace(1, { title: "Dune" }), 400, /"author" is required/, "author");
    await expect(client.replace(1, { id: 2, ...dune }), 400, /URL names book 1/, "id");
    await expect(client.update(1, { title: null }), 400, /"title" is required/, "title");
    await expect(client.update(1, [1]), 400, /must be a JSON object/);
    await expect(client.update(1, { id: 7 }), 400, /URL names book 1/, "id");
    // Invalid UTF-8 is not JSON.
    const bytes = await fetch(`${api.url}/books`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Uint8Array([0x22, 0xff, 0x22]),
    });
    assert.equal(bytes.status, 400);
    assert.match((await bytes.json()).detail, /UTF-8/);

    await expect(
      client.request("POST", "/books", { body: "{}", contentType: "text/plain" }),
      415,
      /text\/plain/,
    );
    const noType = await fetch(`${api.url}/books`, { method: "POST", body: new Blob(["{}"]) });
    assert.equal(noType.status, 415);
    assert.match((await noType.json()).detail, /no Content-Type/);
    const patch415 = await expect(
      client.request("PATCH", "/books/1", { body: "{}", contentType: "application/xml" }),
      415,
      /merge-patch/,
    );
    assert.match(patch415.headers.get("accept-patch")!, /merge-patch/);

    const huge = JSON.stringify({ ...dune, title: "x".repeat(5000) });
    await expect(client.request("POST", "/books", { body: huge }), 413, /over the limit of 1024/);
    // Without a Content-Length (chunked), counted as it arrives.
    const chunked = await fetch(`${api.url}/books`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: ReadableStream.from([new TextEncoder().encode(huge)]),
    });
    assert.equal(chunked.status, 413);
    await chunked.body?.cancel();

    const notAllowed = await expect(
      client.request("DELETE", "/books"),
      405,
      /DELETE is not allowed/,
    );
    assert.equal(notAllowed.headers.get("allow"), "GET, HEAD, POST, OPTIONS");
    const post405 = await expect(client.request("POST", "/books/1", { body: "{}" }), 405, /POST/);
    assert.match(post405.headers.get("allow")!, /PATCH/);
    await expect(client.get(99), 404, /no book with id 99/);
    await expect(client.request("GET", "/books/0"), 404, /no resource/);
    await expect(client.request("GET", "/books/abc"), 404, /no resource/);
    await expect(client.request("GET", "/authors"), 404, /no resource/);
    // After all that, the one good book is untouched.
    assert.deepEqual(api.store.list(), [{ id: 1, ...dune }]);
  } finally {
    await api.close();
  }
});

Deno.test("hundreds of parallel HTTP creates, updates and deletes end consistent", async () => {
  const api = startApi();
  try {
    const { client } = api;
    const created = await Promise.all(
      Array.from({ length: 300 }, (_, i) => client.create({ ...dune, title: `Book ${i}` })),
    );
    assert.ok(created.every((r) => r.status === 201));
    const ids = created.map((r) => (r.body as Book).id);
    assert.equal(new Set(ids).size, 300, "duplicate ids");
    assert.deepEqual(
      [...ids].sort((a, b) => a - b),
      ids.map((_, i) => i + 1).sort((a, b) => a - b),
    );
    // In parallel: patch every even id, delete every id divisible by 3, create 100 more.
    const results = await Promise.all([
      ...ids.filter((id) => id % 2 === 0).map((id) => client.update(id, { year: id })),
      ...ids.filter((id) => id % 3 === 0).map((id) => client.remove(id)),
      ...Array.from({ length: 100 }, () => client.create(dune)),
    ]);
    // A patch may meet its book already deleted (404); nothing else may fail.
    assert.ok(results.every((r) => [200, 201, 204, 404].includes(r.status)));
    const list = (await client.list()).body as Book[];
    const expected = Array.from({ length: 400 }, (_, i) => i + 1).filter((id) =>
      id > 300 || id % 3 !== 0
    );
    assert.deepEqual(list.map((b) => b.id), expected);
    for (const book of list) {
      if (book.id <= 300 && book.id % 2 === 0) assert.equal(book.year, book.id);
    }
    assert.deepEqual(list, api.store.list());
  } finally {
    await api.close();
  }
});

Deno.test("optimistic concurrency: 50 clients incrementing with If-Match lose no update", async () => {
  const api = startApi();
  try {
    const { client } = api;
    await client.create({ ...dune, year: 0 });
    const attempts = await Promise.all(
      Array.from(
        { length: 50 },
        () =>
          updateWithRetry(
            client,
            1,
            ({ title, author, year }) => ({ title, author, year: year + 1 }),
          ),
      ),
    );
    assert.equal(api.store.get(1)?.year, 50);
    assert.ok(attempts.some((n) => n > 1), "there was contention (some retried)");
  } finally {
    await api.close();
  }
});

Deno.test("booksHandler() answers 500, not a crash, when saving fails", async () => {
  const store = new BookStore({
    load: () => Promise.resolve(undefined),
    save: () => Promise.reject(new Error("disk full")),
  });
  const handler = booksHandler(store);
  const response = await handler(
    new Request("http://x/books", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(dune),
    }),
  );
  assert.equal(response.status, 500);
  assert.match((await response.json()).detail, /disk full/);
  const ok = await handler(new Request("http://x/books"));
  assert.deepEqual(await ok.json(), []);
});

// ---------------------------------------------------------------------------
// The data file: atomic, and the script as a user runs it
// ---------------------------------------------------------------------------

Deno.test("JsonFile saves through FILE.tmp and a rename, and loads what it saved", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wirebook_rest_" });
  try {
    const file = new JsonFile(`${dir}/books.json`);
    assert.equal(await file.load(), undefined);
    const collection = { nextId: 3, books: [{ id: 2, ...dune }] };
    await file.save(collection);
    assert.deepEqual(await file.load(), collection);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["books.json"]);
    await Deno.writeTextFile(file.path, '{"nextId": 3, "books": [');
    await assert.rejects(file.load(), /is not a books collection \(.*\); move it away/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: serve --data FILE with the help's flags; every client subcommand; a restart keeps the books", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wirebook_rest_" });
  const file = `${dir}/books.json`;
  const cli = (args: string[]) => runScript("rest_api", args);
  try {
    let server = await startDataServer(file);
    const port = ["--port", String(server.port)];
    try {
      const created = await cli(["create", JSON.stringify(dune), ...port]);
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /^201 Created {2}Location: \/books\/1 {2}ETag: "/);
      const etag = created.stdout.match(/ETag: ("[^"]+")/)![1];
      assert.equal(JSON.parse(created.stdout.slice(created.stdout.indexOf("\n"))).title, "Dune");

      const list = await cli(["list", ...port]);
      assert.match(list.stdout, /^200 OK/);
      const notModified = await cli(["get", "1", "--if-none-match", etag, ...port]);
      assert.match(notModified.stdout, /^304 Not Modified/);
      const replaced = await cli([
        "replace",
        "1",
        JSON.stringify({ ...dune, year: 1966 }),
        ...port,
      ]);
      assert.equal(replaced.code, 0, replaced.stderr);
      const stale = await cli(["update", "1", '{"year":1967}', "--if-match", etag, ...port]);
      assert.equal(stale.code, 1);
      assert.match(stale.stderr, /^error: 412 Precondition Failed: book 1 has changed/);
      const bad = await cli(["update", "1", '{"year":"soon"}', ...port]);
      assert.equal(bad.code, 1);
      assert.equal(bad.stderr.trim().split("\n").length, 1);
      assert.match(bad.stderr, /^error: 400 Bad Request: "year" must be a whole number/);
      const updated = await cli(["update", "1", '{"title":"Dune Messiah"}', ...port]);
      assert.match(updated.stdout, /"title": "Dune Messiah"/);
      await cli(["create", JSON.stringify({ ...dune, title: "Children of Dune" }), ...port]);
      const removed = await cli(["delete", "2", ...port]);
      assert.match(removed.stdout, /^204 No Content/);
      const missing = await cli(["get", "2", ...port]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^error: 404 Not Found: no book with id 2\n$/);
      const usage = await cli(["get", "two", ...port]);
      assert.equal(usage.code, 2);
      const badJson = await cli(["create", "{nope", ...port]);
      assert.equal(badJson.code, 2);
      assert.match(badJson.stderr, /^error: JSON argument/);
    } finally {
      const stopped = await server.stop();
      assert.equal(stopped.code, 0, stopped.stderr);
    }
    const saved = validateCollection(JSON.parse(await Deno.readTextFile(file)));
    assert.deepEqual(saved, {
      nextId: 3,
      books: [{ id: 1, ...dune, title: "Dune Messiah", year: 1966 }],
    });

    // A new server on the same file has the books, and does not reuse id 2.
    server = await startDataServer(file);
    try {
      const client = new BooksClient(`http://127.0.0.1:${server.port}`);
      assert.deepEqual((await client.list()).body, saved.books);
      assert.equal((await client.create(dune)).headers.get("location"), "/books/3");
    } finally {
      assert.equal((await server.stop()).code, 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: serve --data refuses a corrupt file, and missing permissions, in one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wirebook_rest_" });
  const file = `${dir}/books.json`;
  try {
    await Deno.writeTextFile(file, "{ this is not json");
    const corrupt = await runScript("rest_api", ["serve", "--port", "0", "--data", file], {
      flags: dataFlags(file),
    });
    assert.equal(corrupt.code, 1);
    assert.match(corrupt.stderr, /^error: .*books\.json is not a books collection.*\n$/);
    assert.equal(await Deno.readTextFile(file), "{ this is not json", "the file is left alone");

    // Read and write on FILE alone are not enough: the rename needs FILE.tmp too.
    const narrow = await runScript("rest_api", ["serve", "--port", "0", "--data", file], {
      flags: [NET, `--allow-read=${file}`, `--allow-write=${file}`],
    });
    assert.equal(narrow.code, 1);
    assert.match(
      narrow.stderr,
      /^error: missing permission: .*--allow-read=.*books\.json,.*books\.json\.tmp/,
    );
    assert.equal(narrow.stderr.trim().split("\n").length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("crash safety: SIGKILL during a stream of writes never leaves a corrupt or empty file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wirebook_rest_crash_" });
  const file = `${dir}/books.json`;
  const acknowledged = new Set<number>();
  try {
    for (let round = 0; round < 5; round++) {
      const server = await startDataServer(file);
      const client = new BooksClient(`http://127.0.0.1:${server.port}`, 5_000);
      let stop = false;
      let acks = 0;
      // 16 writers, each creating and patching as fast as the server answers.
      const writers = Array.from({ length: 16 }, async (_, w) => {
        for (let i = 0; i < 10_000 && !stop; i++) {
          try {
            const created = await client.create({
              title: `r${round} w${w} #${i}`,
              author: "Crash",
              year: 2000,
            });
            if (created.status !== 201) throw new Error(`status ${created.status}`);
            const id = (created.body as Book).id;
            acknowledged.add(id);
            acks++;
            await client.update(id, { year: 2001 });
          } catch {
            return; // the server is gone
          }
        }
      });
      // Kill it mid-stream, after a different number of acknowledged writes each round.
      const target = 20 + round * 37;
      for (let i = 0; i < 2000 && acks < target; i++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.ok(acks >= target, `round ${round}: only ${acks} writes acknowledged`);
      server.process.kill("SIGKILL");
      await server.process.status;
      stop = true;
      await Promise.all(writers);
      await server.stop();

      // Whatever instant the kill came at, the file is a whole collection...
      const text = await Deno.readTextFile(file);
      assert.ok(text.length > 0, `round ${round}: the file is empty`);
      const collection = validateCollection(JSON.parse(text));
      // ...and every book the server said 201 for is in it.
      const ids = new Set(collection.books.map((book) => book.id));
      const lost = [...acknowledged].filter((id) => !ids.has(id));
      assert.deepEqual(lost, [], `round ${round}: acknowledged books missing from the file`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
