#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title A REST API: resources, methods, status codes, and writes that survive
 * @difficulty intermediate
 * @tags cli, network, http, rest, json, concurrency
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc9110#section-9.3} RFC 9110 §9.3: Method definitions (GET, POST, PUT, DELETE)
 * @resource {https://www.rfc-editor.org/rfc/rfc9110#section-13} RFC 9110 §13: Conditional requests (ETag, If-Match, If-None-Match)
 * @resource {https://www.rfc-editor.org/rfc/rfc5789} RFC 5789: PATCH Method for HTTP
 * @resource {https://www.rfc-editor.org/rfc/rfc7396} RFC 7396: JSON Merge Patch
 * @resource {https://www.rfc-editor.org/rfc/rfc9457} RFC 9457: Problem Details for HTTP APIs
 *
 * The tutorials' books API as a real service. `/books` is a collection and
 * `/books/7` one member of it; GET reads, POST creates (201 with a Location),
 * PUT replaces, PATCH merges (a JSON Merge Patch), DELETE removes. Every
 * mistake gets its own status and a JSON body that says what was wrong and
 * which field: 400, 404, 405 with Allow, 412, 413, 415. Writes are serialised
 * by a mutex, so hundreds of parallel requests lose nothing and never share an
 * id; ETags let clients update without overwriting each other. With `--data
 * FILE` the collection lives in one file, replaced atomically (write a temp
 * file, fsync, rename) so a crash never leaves it empty or half-written.
 * Taught cell by cell in notebooks/16_rest_api.ipynb.
 */

import { createHash } from "node:crypto";
import { parseFlags } from "../lib/parse_flags.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { writeAll } from "../lib/write_all.ts";

const USAGE = `
rest_api.ts: a books REST API (list, get, create, replace, update, delete), and its client

usage:
  rest_api.ts                         demo: a server in memory, every route, every error,
                                      then hundreds of parallel writes
  rest_api.ts serve [flags]           serve the API until Ctrl-C (in memory, or --data FILE)
  rest_api.ts list                    GET    /books
  rest_api.ts get ID                  GET    /books/ID
  rest_api.ts create JSON             POST   /books      e.g. '{"title":"Dune","author":"Frank Herbert","year":1965}'
  rest_api.ts replace ID JSON         PUT    /books/ID   (every field)
  rest_api.ts update ID JSON          PATCH  /books/ID   (a JSON Merge Patch: only the fields that change)
  rest_api.ts delete ID               DELETE /books/ID

flags:
  --host HOST          serve: address to listen on; clients: server to reach (default 127.0.0.1)
  --port PORT          TCP port (default 8700; serve --port 0 picks any free port)
  --url URL            clients: the API's base URL instead of --host/--port (e.g. http://127.0.0.1:8700)
  --data FILE          serve: keep the books in FILE (JSON), rewritten atomically on every change
  --max-body BYTES     serve: the largest request body accepted (default 16384)
  --quiet              serve: do not log each request
  --if-match ETAG      only if the book (or list) is still this version, else 412; "*": if it exists
  --if-none-match ETAG list, get: answer 304 if it is still this version; replace, update,
                       delete: 412 if it is ("*": 412 if the book exists at all)
  --timeout SECS       clients: give up on an answer after this long (default 10)
  -h, --help           show this help

permissions:
  demo, clients, and serve in memory:  --allow-net=127.0.0.1
  serve --data FILE:  --allow-net=127.0.0.1 --allow-read=FILE,FILE.tmp --allow-write=FILE,FILE.tmp
          (each write goes to FILE.tmp, then is renamed over FILE; Deno's rename needs
          read and write access to both names, and nothing else in the folder)
  another --host or --url: --allow-net=HOST instead of --allow-net=127.0.0.1
`;

const DEFAULT_PORT = 8700;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

// ---------------------------------------------------------------------------
// The resource: a book, and the checks that guard it
// ---------------------------------------------------------------------------

/** A book as the API shows it. The server assigns `id`; a client sends the rest. */
export interface Book {
  id: number;
  title: string;
  author: string;
  year: number;
}

/** What a client sends to create or replace a book. */
export type BookFields = Omit<Book, "id">;

/** The fields a book has, in the order they are shown. */
export const FIELDS = ["title", "author", "year"] as const;

/** A request body that is JSON but not a valid book; `field` names the culprit. */
export class ValidationError extends Error {
  /**
   * @param field The field at fault (`""` when it is the body as a whole).
   * @param message What is wrong with it.
   */
  constructor(readonly field: string, message: string) {
    super(message);
    this.name = "ValidationError";
  }
}

// A client reading "year must be a whole number" wants to know what it sent.
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  const shown = JSON.stringify(value);
  return `${shown.length > 40 ? shown.slice(0, 37) + "..." : shown} (a ${typeof value})`;
}

function checkText(field: string, value: unknown): string {
  if (value === undefined) throw new ValidationError(field, `"${field}" is required`);
  if (typeof value !== "string") {
    throw new ValidationError(field, `"${field}" must be a string, got ${describe(value)}`);
  }
  if (value.trim() === "") throw new ValidationError(field, `"${field}" must not be empty`);
  if (value.length > 200) {
    throw new ValidationError(field, `"${field}" must be at most 200 characters`);
  }
  return value;
}

/**
 * Check that `value`, parsed from a request body, is a whole book: an object
 * with exactly `title`, `author` (non-empty strings) and `year` (a whole
 * number from -9999 to 9999). An `id` is allowed only where the caller says
 * which one (`expectedId`, for PUT), and must match it. Throws a
 * {@linkcode ValidationError} naming the first bad field.
 */
export function validateBook(value: unknown, expectedId?: number): BookFields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ValidationError("", `the body must be a JSON object, got ${describe(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key === "id") {
      if (expectedId === undefined) {
        throw new ValidationError("id", `"id" is assigned by the server; leave it out`);
      }
      if (record.id !== expectedId) {
        throw new ValidationError(
          "id",
          `"id" is ${describe(record.id)}, but the URL names book ${expectedId}`,
        );
      }
    } else if (!(FIELDS as readonly string[]).includes(key)) {
      throw new ValidationError(key, `unknown field "${key}"; a book has ${FIELDS.join(", ")}`);
    }
  }
  const title = checkText("title", record.title);
  const author = checkText("author", record.author);
  const year = record.year;
  if (year === undefined) throw new ValidationError("year", `"year" is required`);
  if (typeof year !== "number" || !Number.isInteger(year) || year < -9999 || year > 9999) {
    throw new ValidationError(
      "year",
      `"year" must be a whole number from -9999 to 9999, got ${describe(year)}`,
    );
  }
  return { title, author, year };
}

/**
 * Apply a JSON Merge Patch (RFC 7396 §2) to `target`: each member of the
 * patch replaces the target's, `null` removes it, and nested objects merge
 * the same way. A patch that is not an object replaces the target whole.
 * The result is checked afterwards like any other body, so a patch that
 * removes a required field is refused there.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target)
      ? { ...target as Record<string, unknown> }
      : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

// ---------------------------------------------------------------------------
// ETags: a fingerprint of a representation (RFC 9110 §8.8.3)
//
// A strong ETag here is a hash of the JSON the server would send, so it
// changes exactly when the representation does, survives a restart with
// --data, and needs no counter. A client that sends it back in If-Match says
// "only if nobody changed it since I read it"; in If-None-Match, "only if it
// changed" (or 304 Not Modified).
// ---------------------------------------------------------------------------

/** The strong ETag of a value's JSON representation: `"` + 16 characters of SHA-256 + `"`. */
export function etagOf(value: unknown): string {
  const digest = createHash("sha256").update(JSON.stringify(value)).digest("base64url");
  return `"${digest.slice(0, 16)}"`;
}

/**
 * Whether an If-Match or If-None-Match field value matches `etag`
 * (RFC 9110 §13.1.1, §13.1.2): `*` matches any current representation;
 * otherwise a list of entity tags. If-Match compares strongly (a weak tag
 * `W/"..."` never matches); If-None-Match weakly (the `W/` is ignored).
 */
export function etagMatches(fieldValue: string, etag: string, weak: boolean): boolean {
  if (fieldValue.trim() === "*") return true;
  const opaque = (tag: string) => tag.replace(/^W\//, "");
  for (const [tag] of fieldValue.matchAll(/(?:W\/)?"[^"]*"/g)) {
    if (weak ? opaque(tag) === opaque(etag) : !tag.startsWith("W/") && tag === etag) return true;
  }
  return false;
}

/** A request's precondition fields (`null` or absent: not sent). */
export interface Preconditions {
  ifMatch?: string | null;
  ifNoneMatch?: string | null;
}

/**
 * Evaluate a request's preconditions against the current representation's
 * `etag`, for any method, in the order RFC 9110 §13.2.2 gives:
 * 1. If-Match present and false (no tag matches strongly, §13.1.1): 412;
 * 3. If-None-Match present and true (a tag matches weakly, or `*` since the
 *    resource exists, §13.1.2): 304 for GET and HEAD, 412 for any other
 *    method. So `If-None-Match: *` on a PUT never overwrites a book.
 * (Steps 2 and 4 are the date-based fields, which this API does not use.)
 * `what` names the resource in the 412's detail, e.g. `book 2`.
 * Returns true when the answer is 304 Not Modified; throws
 * {@linkcode HttpError} 412 when a precondition fails.
 */
export function checkPreconditions(
  conditions: Preconditions,
  etag: string,
  method: string,
  what: string,
): boolean {
  const { ifMatch, ifNoneMatch } = conditions;
  if (ifMatch != null && !etagMatches(ifMatch, etag, false)) {
    throw new HttpError(
      412,
      `${what} has changed since that version (If-Match: ${ifMatch}); ` +
        `it is now ${etag}: GET it again and redo the change`,
    );
  }
  if (ifNoneMatch != null && etagMatches(ifNoneMatch, etag, true)) {
    if (method === "GET" || method === "HEAD") return true;
    throw new HttpError(
      412,
      ifNoneMatch.trim() === "*"
        ? `${what} exists, and If-None-Match: * asks that it not; nothing was changed`
        : `${what} is still that version (If-None-Match: ${ifNoneMatch}); nothing was changed`,
    );
  }
  return false;
}

// ---------------------------------------------------------------------------
// Errors as HTTP answers (RFC 9457 problem details)
// ---------------------------------------------------------------------------

/** An answer other than success: a status, a sentence for the client, maybe a field and headers. */
export class HttpError extends Error {
  /**
   * @param status The HTTP status code.
   * @param message The `detail` the client reads.
   * @param field The request body's field at fault, if one is.
   * @param headers Fields the answer must carry (Allow for 405, Accept-Patch for 415).
   */
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  412: "Precondition Failed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  500: "Internal Server Error",
};

// RFC 9457: a JSON object with the status, a short title for the kind of
// problem and a detail for this occurrence; `field` is our own extension.
function problem(error: HttpError): Response {
  const body = {
    type: "about:blank",
    title: TITLES[error.status] ?? "Error",
    status: error.status,
    detail: error.message,
    ...(error.field ? { field: error.field } : {}),
  };
  return new Response(JSON.stringify(body) + "\n", {
    status: error.status,
    headers: { "content-type": "application/problem+json", ...error.headers },
  });
}

// ---------------------------------------------------------------------------
// Concurrency: one writer at a time
//
// Deno runs JavaScript on one thread, so two handlers never run at the same
// instant; but each one stops at every `await`, and another runs meanwhile.
// A create that reads nextId, awaits the disk, then stores nextId + 1 lets a
// second create read the same nextId during that await: two books, one id.
// The cure is to run each read-modify-write, persisting included, to the end
// before the next begins.
// ---------------------------------------------------------------------------

/** A promise-chain lock: `run(fn)` calls start in order, each after the previous one settles. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  /** Run `fn` once every earlier `run` has finished (even if it failed); resolve with its result. */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.catch(() => {});
    return result;
  }
}

// ---------------------------------------------------------------------------
// Persistence: the whole collection in one file, replaced atomically
// ---------------------------------------------------------------------------

/** The whole state: the books, and the next id to give (ids are never reused). */
export interface Collection {
  nextId: number;
  books: Book[];
}

/** Where a {@linkcode BookStore} keeps its collection between runs. */
export interface Persistence {
  /** The saved collection, or `undefined` if there is none yet. */
  load(): Promise<Collection | undefined>;
  /** Save the collection whole; resolves once it is safely stored. */
  save(collection: Collection): Promise<void>;
}

/**
 * Check that `value` is a whole collection: `nextId` a whole number, `books`
 * valid books with distinct ids below `nextId`. Throws a
 * {@linkcode ValidationError} naming what is wrong.
 */
export function validateCollection(value: unknown): Collection {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ValidationError("", `expected a JSON object, got ${describe(value)}`);
  }
  const { nextId, books } = value as Record<string, unknown>;
  if (typeof nextId !== "number" || !Number.isSafeInteger(nextId) || nextId < 1) {
    throw new ValidationError("nextId", `"nextId" must be a whole number >= 1`);
  }
  if (!Array.isArray(books)) throw new ValidationError("books", `"books" must be an array`);
  const seen = new Set<number>();
  const checked = books.map((book: unknown, i) => {
    const id = (book as Record<string, unknown> | null)?.id;
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1 || id >= nextId) {
      throw new ValidationError(
        `books[${i}].id`,
        `books[${i}] needs an id from 1 to ${nextId - 1}`,
      );
    }
    if (seen.has(id)) throw new ValidationError(`books[${i}].id`, `id ${id} appears twice`);
    seen.add(id);
    try {
      return { id, ...validateBook(book, id) };
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      throw new ValidationError(`books[${i}].${error.field}`, `books[${i}]: ${error.message}`);
    }
  });
  return { nextId, books: checked };
}

/**
 * The collection in a JSON file. `save()` never writes the file itself: it
 * writes `FILE.tmp`, flushes it to the disk (fsync), and renames it over
 * `FILE`. A rename within one folder is atomic (POSIX rename()), so whoever
 * opens `FILE`, a reader or this server after a crash, finds the previous
 * collection or the new one, whole; never an empty or half-written file.
 * The temporary name is fixed, not random, so the permissions can name it:
 * `--allow-read=FILE,FILE.tmp --allow-write=FILE,FILE.tmp`. (One server per
 * file: two writing the same FILE.tmp would spoil each other's writes.)
 */
export class JsonFile implements Persistence {
  /** The temporary file each save writes first. */
  readonly temp: string;

  /** @param path The data file. */
  constructor(readonly path: string) {
    this.temp = `${path}.tmp`;
  }

  /** Read and check the file; `undefined` if it does not exist yet. */
  async load(): Promise<Collection | undefined> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
    try {
      return validateCollection(JSON.parse(text));
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`${this.path} is not a books collection (${reason}); move it away or fix it`);
    }
  }

  /** Write the whole collection to the temporary file, fsync it, rename it over the file. */
  async save(collection: Collection): Promise<void> {
    const bytes = encoder.encode(JSON.stringify(collection, null, 2) + "\n");
    const file = await Deno.open(this.temp, { write: true, create: true, truncate: true });
    try {
      await writeAll(file, bytes);
      // On disk before it gets the real name: after a power cut, the name
      // must not point at bytes that were still in the page cache.
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(this.temp, this.path);
  }
}

// ---------------------------------------------------------------------------
// The store: every change under the mutex, visible only once it is saved
// ---------------------------------------------------------------------------

/**
 * The books, in memory, optionally saved through a {@linkcode Persistence}.
 * Reads are plain (single-threaded code cannot see a change half made).
 * Writes run one at a time: each builds the next collection from the
 * current one, saves it, and only then makes it current, so a client that
 * got a 201 can count on its book being in the file, and a failed save
 * changes nothing. Preconditions (If-Match, If-None-Match) are checked
 * inside the lock, on the version the change applies to, so no other write
 * can slip in between the check and the change.
 */
export class BookStore {
  #books = new Map<number, Book>();
  #nextId = 1;
  readonly #lock = new Mutex();
  readonly #persistence?: Persistence;

  /** @param persistence Where to save; in memory only when absent. */
  constructor(persistence?: Persistence) {
    this.#persistence = persistence;
  }

  /** A store with the collection `persistence` has saved (or an empty one). */
  static async open(persistence?: Persistence): Promise<BookStore> {
    const store = new BookStore(persistence);
    const saved = await persistence?.load();
    if (saved) {
      store.#nextId = saved.nextId;
      for (const book of saved.books) store.#books.set(book.id, book);
    }
    return store;
  }

  /** Every book, by id. */
  list(): Book[] {
    return [...this.#books.values()].sort((a, b) => a.id - b.id);
  }

  /** One book, or `undefined`. */
  get(id: number): Book | undefined {
    return this.#books.get(id);
  }

  /** The whole state, as it would be saved. */
  snapshot(): Collection {
    return { nextId: this.#nextId, books: this.list() };
  }

  /**
   * Add a book; it gets the next id. `conditions` are checked against the
   * collection (the list GET /books shows); 412 if they fail.
   */
  create(fields: BookFields, conditions: Preconditions = {}): Promise<Book> {
    return this.#write((draft) => {
      if (conditions.ifMatch != null || conditions.ifNoneMatch != null) {
        const books = [...draft.books.values()].sort((a, b) => a.id - b.id);
        checkPreconditions(conditions, etagOf(books), "POST", "the collection");
      }
      const book = { id: draft.nextId++, ...fields };
      draft.books.set(book.id, book);
      return book;
    });
  }

  /**
   * Replace book `id` with `fields` (PUT). Throws {@linkcode HttpError} 404
   * if there is no such book, 412 if `conditions` fail
   * ({@linkcode checkPreconditions}).
   */
  replace(id: number, fields: BookFields, conditions: Preconditions = {}): Promise<Book> {
    return this.#write((draft) => {
      this.#precondition(draft.books.get(id), id, "PUT", conditions);
      const book = { id, ...fields };
      draft.books.set(id, book);
      return book;
    });
  }

  /**
   * Merge `patch` (RFC 7396) into book `id` (PATCH). The result must be a
   * valid book ({@linkcode ValidationError} otherwise). 404 and 412 as for
   * {@linkcode BookStore.replace}.
   */
  update(id: number, patch: unknown, conditions: Preconditions = {}): Promise<Book> {
    return this.#write((draft) => {
      const current = this.#precondition(draft.books.get(id), id, "PATCH", conditions);
      const fields = validateBook(mergePatch(current, patch), id);
      const book = { id, ...fields };
      draft.books.set(id, book);
      return book;
    });
  }

  /** Remove book `id` (DELETE). 404 and 412 as for {@linkcode BookStore.replace}. */
  remove(id: number, conditions: Preconditions = {}): Promise<void> {
    return this.#write((draft) => {
      this.#precondition(draft.books.get(id), id, "DELETE", conditions);
      draft.books.delete(id);
    });
  }

  // No book is a 404 whatever the conditions say: RFC 9110 §13.2.1 has a
  // server ignore preconditions when the answer without them would not be 2xx.
  #precondition(book: Book | undefined, id: number, method: string, conditions: Preconditions) {
    if (!book) throw new HttpError(404, `no book with id ${id}`);
    checkPreconditions(conditions, etagOf(book), method, `book ${id}`);
    return book;
  }

  // The one way to change anything: under the lock, on a copy, saved, then current.
  #write<T>(change: (draft: { books: Map<number, Book>; nextId: number }) => T): Promise<T> {
    return this.#lock.run(async () => {
      const draft = { books: new Map(this.#books), nextId: this.#nextId };
      const result = change(draft);
      if (this.#persistence) {
        const books = [...draft.books.values()].sort((a, b) => a.id - b.id);
        await this.#persistence.save({ nextId: draft.nextId, books });
      }
      this.#books = draft.books;
      this.#nextId = draft.nextId;
      return result;
    });
  }
}

// ---------------------------------------------------------------------------
// HTTP: routes, bodies, media types, conditional requests
// ---------------------------------------------------------------------------

/** Options for {@linkcode booksHandler}. */
export interface HandlerOptions {
  /** The largest request body accepted, in bytes (413 above it). @default {16384} */
  maxBody?: number;
  /** Called once per answered request, for a log. */
  onRequest?: (request: Request, response: Response) => void;
}

const COLLECTION_METHODS = "GET, HEAD, POST, OPTIONS";
const ITEM_METHODS = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS";
const PATCH_TYPES = "application/merge-patch+json, application/json";

function json(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value) + "\n", {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * Read a request body of at most `max` bytes. A Content-Length over the cap
 * is refused before a byte is read; a body without one (chunked) is counted
 * as it arrives and refused the moment it passes the cap, so a client can
 * never make the server buffer more than `max` bytes.
 */
export async function readBody(request: Request, max: number): Promise<Uint8Array> {
  const tooLarge = () => new HttpError(413, `the body is over the limit of ${max} bytes`);
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > max) throw tooLarge();
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

// 415 unless the Content-Type is one we read (parameters such as charset aside).
function checkMediaType(request: Request, accepted: string[], extra: Record<string, string>) {
  const header = request.headers.get("content-type");
  const type = header?.split(";")[0].trim().toLowerCase();
  if (type && accepted.includes(type)) return;
  throw new HttpError(
    415,
    header
      ? `Content-Type must be ${accepted.join(" or ")}, got ${header}`
      : `the request has no Content-Type; send ${accepted.join(" or ")}`,
    undefined,
    extra,
  );
}

// 415, then 413, then 400: the order a server can tell them in.
async function readJson(
  request: Request,
  max: number,
  accepted: string[],
  extra: Record<string, string> = {},
): Promise<unknown> {
  checkMediaType(request, accepted, extra);
  const bytes = await readBody(request, max);
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new HttpError(400, "the body is not valid UTF-8 (JSON must be, RFC 8259 §8.1)");
  }
  if (text.trim() === "") throw new HttpError(400, "the body is empty; send a JSON object");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `malformed JSON: ${(error as Error).message}`);
  }
}

/**
 * The API as a function from request to response, for `Deno.serve`:
 *
 * | route         | methods                                              |
 * | ------------- | ---------------------------------------------------- |
 * | `/books`      | GET (list), POST (create: 201 + Location)             |
 * | `/books/{id}` | GET, PUT (replace), PATCH (merge patch), DELETE (204) |
 *
 * plus HEAD wherever GET is, OPTIONS (204 + Allow), and 405 + Allow for any
 * other method. Never throws: every failure is an RFC 9457 problem answer.
 */
export function booksHandler(
  store: BookStore,
  options: HandlerOptions = {},
): (request: Request) => Promise<Response> {
  const { maxBody = 16384, onRequest } = options;

  async function route(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    const method = request.method;
    // Evaluated for every method (RFC 9110 §13.2.2), not just the obvious
    // pairs: If-Match on a GET, If-None-Match on a PUT mean something too.
    const conditions: Preconditions = {
      ifMatch: request.headers.get("if-match"),
      ifNoneMatch: request.headers.get("if-none-match"),
    };
    if (pathname === "/books") {
      if (method === "GET" || method === "HEAD") {
        const books = store.list();
        return conditionalGet(method, conditions, books, "the collection");
      }
      if (method === "POST") {
        const body = await readJson(request, maxBody, ["application/json"]);
        const book = await store.create(validateBook(body), conditions);
        // RFC 9110 §15.3.2: 201 Created, and Location names the new resource.
        return json(book, 201, { location: `/books/${book.id}`, etag: etagOf(book) });
      }
      return notAllowed(method, COLLECTION_METHODS);
    }
    const match = pathname.match(/^\/books\/([1-9][0-9]{0,14})$/);
    if (!match) {
      if (pathname === "/") {
        if (method === "GET" || method === "HEAD") return json({ books: "/books" });
        return notAllowed(method, "GET, HEAD, OPTIONS");
      }
      throw new HttpError(404, `no resource at ${pathname}; the books are at /books`);
    }
    const id = Number(match[1]);
    if (method === "GET" || method === "HEAD") {
      const book = store.get(id);
      if (!book) throw new HttpError(404, `no book with id ${id}`);
      return conditionalGet(method, conditions, book, `book ${id}`);
    }
    if (method === "PUT") {
      const body = await readJson(request, maxBody, ["application/json"]);
      const book = await store.replace(id, validateBook(body, id), conditions);
      return json(book, 200, { etag: etagOf(book) });
    }
    if (method === "PATCH") {
      const types = ["application/merge-patch+json", "application/json"];
      const patch = await readJson(request, maxBody, types, { "accept-patch": PATCH_TYPES });
      if (typeof patch !== "object" || patch === null || Array.isArray(patch)) {
        throw new HttpError(400, "a merge patch for a book must be a JSON object");
      }
      const book = await store.update(id, patch, conditions);
      return json(book, 200, { etag: etagOf(book) });
    }
    if (method === "DELETE") {
      await store.remove(id, conditions);
      return new Response(null, { status: 204 });
    }
    if (method === "OPTIONS") {
      return new Response(null, {
        status: 204,
        headers: { allow: ITEM_METHODS, "accept-patch": PATCH_TYPES },
      });
    }
    return notAllowed(method, ITEM_METHODS);
  }

  return async (request) => {
    let response: Response;
    try {
      response = await route(request);
    } catch (error) {
      if (error instanceof HttpError) response = problem(error);
      else if (error instanceof ValidationError) {
        response = problem(new HttpError(400, error.message, error.field || undefined));
      } else {
        // A bug or a failed save: the client hears 500, the server goes on.
        const reason = error instanceof Error ? error.message : String(error);
        response = problem(new HttpError(500, `the server failed: ${reason}`));
      }
    }
    onRequest?.(request, response);
    return response;
  };
}

function notAllowed(method: string, allow: string): Response {
  if (method === "OPTIONS") return new Response(null, { status: 204, headers: { allow } });
  // RFC 9110 §15.5.6: a 405 MUST carry Allow, the methods the resource does support.
  throw new HttpError(405, `${method} is not allowed here; try ${allow}`, undefined, { allow });
}

// GET and HEAD: 304 and no body if the client's copy is current (If-None-Match,
// RFC 9110 §13.1.2), 412 if a stale If-Match. A read needs no lock: nothing
// is awaited between reading the value and answering, so no write interleaves.
function conditionalGet(
  method: string,
  conditions: Preconditions,
  value: unknown,
  what: string,
): Response {
  const etag = etagOf(value);
  if (checkPreconditions(conditions, etag, method, what)) {
    return new Response(null, { status: 304, headers: { etag } });
  }
  return json(value, 200, { etag });
}

/** Options for {@linkcode serveBooks}. */
export interface ServeOptions extends HandlerOptions {
  /** @default {"127.0.0.1"} */
  hostname?: string;
  /** 0 = any free port. @default {8700} */
  port?: number;
  /** Stop serving when this aborts: no new connections, idle ones closed, running requests finished. */
  signal?: AbortSignal;
}

/**
 * Serve `store` over HTTP with `Deno.serve`. `onListen` is given so Deno does
 * not print its own line; the caller prints the banner from `server.addr`.
 */
export function serveBooks(
  store: BookStore,
  options: ServeOptions = {},
): Deno.HttpServer<Deno.NetAddr> {
  const { hostname = "127.0.0.1", port = DEFAULT_PORT, signal } = options;
  return Deno.serve({ hostname, port, signal, onListen: () => {} }, booksHandler(store, options));
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/** What the server answered. */
export interface ApiResponse {
  status: number;
  statusText: string;
  headers: Headers;
  /** The parsed JSON body, or `undefined` for an empty one (204, 304, HEAD). */
  body: unknown;
}

/** Options for one {@linkcode BooksClient.request}. */
export interface RequestOptions {
  /** The body, already serialised (so a demo can send broken JSON). */
  body?: string;
  /** @default {"application/json"} when there is a body */
  contentType?: string;
  /** Extra request fields (If-Match, If-None-Match, ...). */
  headers?: Record<string, string>;
}

/** A small client for the books API, on `fetch`. */
export class BooksClient {
  /** The API's base URL, e.g. `http://127.0.0.1:8700`. */
  readonly base: URL;

  /**
   * @param base The API's base URL.
   * @param timeout Give up on an answer after this many ms.
   */
  constructor(base: string | URL, readonly timeout = 10_000) {
    this.base = new URL(base);
  }

  /** Send one request; any status resolves (only a failure to get an answer rejects). */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    const url = new URL(path, this.base);
    const headers: Record<string, string> = { accept: "application/json", ...options.headers };
    if (options.body !== undefined) {
      headers["content-type"] = options.contentType ?? "application/json";
    }
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body,
        signal: AbortSignal.timeout(this.timeout),
      });
    } catch (error) {
      throw explainFetchError(url, error);
    }
    const text = await response.text();
    let body: unknown = undefined;
    if (text !== "") {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    return {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
      body,
    };
  }

  /** GET /books. */
  list(headers: Record<string, string> = {}): Promise<ApiResponse> {
    return this.request("GET", "/books", { headers });
  }

  /** GET /books/{id}. */
  get(id: number, headers: Record<string, string> = {}): Promise<ApiResponse> {
    return this.request("GET", `/books/${id}`, { headers });
  }

  /** POST /books. */
  create(fields: unknown): Promise<ApiResponse> {
    return this.request("POST", "/books", { body: JSON.stringify(fields) });
  }

  /** PUT /books/{id}. */
  replace(id: number, fields: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
    return this.request("PUT", `/books/${id}`, { body: JSON.stringify(fields), headers });
  }

  /** PATCH /books/{id} with a JSON Merge Patch. */
  update(id: number, patch: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
    return this.request("PATCH", `/books/${id}`, {
      body: JSON.stringify(patch),
      contentType: "application/merge-patch+json",
      headers,
    });
  }

  /** DELETE /books/{id}. */
  remove(id: number, headers: Record<string, string> = {}): Promise<ApiResponse> {
    return this.request("DELETE", `/books/${id}`, { headers });
  }
}

// fetch() reports every failure as a TypeError; give describeError the real cause.
function explainFetchError(url: URL, error: unknown): Error {
  // A missing permission says enough by itself. Anything else gets the origin
  // it was about; lib's describeError finds fetch's reason down the cause chain.
  if (error instanceof Deno.errors.NotCapable) return error;
  return new Error(`cannot reach ${url.origin}`, { cause: error });
}

/**
 * GET, change, PUT with If-Match, and on 412 start again: an update that
 * never overwrites someone else's (optimistic concurrency). `change` gets
 * the current book and returns the new fields. Resolves to the number of
 * attempts it took; gives up after `maxAttempts`.
 */
export async function updateWithRetry(
  client: BooksClient,
  id: number,
  change: (book: Book) => BookFields,
  maxAttempts = 1000,
): Promise<number> {
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const current = await client.get(id);
    if (current.status !== 200) throw new Error(`GET /books/${id}: ${current.status}`);
    const book = current.body as Book;
    const etag = current.headers.get("etag")!;
    const put = await client.replace(id, change(book), { "if-match": etag });
    if (put.status === 200) return attempt;
    if (put.status !== 412) throw new Error(`PUT /books/${id}: ${put.status}`);
  }
  throw new Error(`gave up after ${maxAttempts} attempts: too much contention`);
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  url: { type: "string" },
  data: { type: "string" },
  "max-body": { type: "number", default: 16384, integer: true, min: 1 },
  quiet: { type: "boolean" },
  "if-match": { type: "string" },
  "if-none-match": { type: "string" },
  timeout: { type: "number", default: 10, min: 0.001 },
} as const;

type CommandLine = ReturnType<typeof parseFlags<typeof FLAGS>>["flags"];

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  if (command === undefined) return await demo();
  if (command === "serve") {
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    return await serve(flags);
  }
  const arity: Record<string, number> = {
    list: 0,
    get: 1,
    create: 1,
    replace: 2,
    update: 2,
    delete: 1,
  };
  if (!(command in arity)) {
    throw new UsageError(
      `unknown command "${command}"; expected serve, list, get, create, replace, update or delete`,
    );
  }
  if (rest.length !== arity[command]) {
    throw new UsageError(`${command} takes ${arity[command]} argument(s), got ${rest.length}`);
  }
  const base = flags.url ??
    `http://${flags.host.includes(":") ? `[${flags.host}]` : flags.host}:${flags.port}`;
  const client = new BooksClient(base, flags.timeout * 1000);
  const conditions: Record<string, string> = {};
  if (flags["if-match"]) conditions["if-match"] = flags["if-match"];
  if (flags["if-none-match"]) conditions["if-none-match"] = flags["if-none-match"];
  const id = () => {
    if (!/^[1-9][0-9]{0,14}$/.test(rest[0])) {
      throw new UsageError(`ID must be a whole number >= 1, got "${rest[0]}"`);
    }
    return Number(rest[0]);
  };
  const body = (text: string) => {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new UsageError(`JSON argument: ${(error as Error).message}`);
    }
  };
  let response: ApiResponse;
  if (command === "list") response = await client.list(conditions);
  else if (command === "get") response = await client.get(id(), conditions);
  else if (command === "create") response = await client.create(body(rest[0]));
  else if (command === "replace") response = await client.replace(id(), body(rest[1]), conditions);
  else if (command === "update") response = await client.update(id(), body(rest[1]), conditions);
  else response = await client.remove(id(), conditions);
  printExchangeResult(response);
}

function printExchangeResult(response: ApiResponse): void {
  if (response.status >= 400) {
    const problem = response.body as { detail?: string } | undefined;
    throw new Error(
      `${response.status} ${response.statusText}: ${
        problem?.detail ?? JSON.stringify(response.body)
      }`,
    );
  }
  console.log(`${response.status} ${response.statusText}${headerSummary(response.headers)}`);
  if (response.body !== undefined) console.log(JSON.stringify(response.body, null, 2));
}

function headerSummary(headers: Headers): string {
  return ["Location", "ETag", "Allow", "Accept-Patch"]
    .filter((name) => headers.has(name))
    .map((name) => `  ${name}: ${headers.get(name)}`)
    .join("");
}

async function serve(flags: CommandLine): Promise<void> {
  let persistence: JsonFile | undefined;
  if (flags.data !== undefined) {
    persistence = new JsonFile(flags.data);
    checkDataPermissions(persistence);
  }
  const store = await BookStore.open(persistence);
  const log = flags.quiet ? undefined : (request: Request, response: Response) => {
    const { pathname } = new URL(request.url);
    console.log(`${request.method} ${pathname} ${response.status}`);
  };
  const server = serveBooks(store, {
    hostname: flags.host,
    port: flags.port,
    maxBody: flags["max-body"],
    onRequest: log,
    // Deno.serve shuts down when the signal aborts: it stops accepting, closes
    // idle keep-alive connections, and lets requests in progress finish (a
    // write under way is saved before the process exits).
    signal: shutdownSignal(),
  });
  const where = persistence
    ? `${store.list().length} book(s) from ${persistence.path}`
    : "books in memory (lost on exit; --data FILE keeps them)";
  console.log(where);
  console.log(listeningBanner("http", server.addr));
  await server.finished;
}

// Fail at start-up, with the exact flags, rather than on the first POST.
function checkDataPermissions(file: JsonFile): void {
  const missing = (["read", "write"] as const).filter((name) =>
    [file.path, file.temp].some((path) =>
      Deno.permissions.querySync({ name, path }).state !== "granted"
    )
  );
  if (missing.length > 0) {
    const flags = missing.map((name) => `--allow-${name}=${file.path},${file.temp}`).join(" ");
    throw new Deno.errors.NotCapable(
      `--data ${file.path} needs ${flags} (the atomic rename touches both names)`,
    );
  }
}

// ---------------------------------------------------------------------------
// The demo: every route and every error, then concurrency
// ---------------------------------------------------------------------------

async function demo(): Promise<void> {
  const store = new BookStore();
  const controller = new AbortController();
  const server = serveBooks(store, { port: 0, maxBody: 16384, signal: controller.signal });
  console.log(`server: ${listeningBanner("http", server.addr)} (books in memory)\n`);
  const client = new BooksClient(`http://127.0.0.1:${server.addr.port}`);
  try {
    await tour(client);
    await stress(client);
  } finally {
    controller.abort();
    await server.finished;
  }
}

async function show(
  client: BooksClient,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<ApiResponse> {
  const fields = Object.entries(options.headers ?? {}).map(([k, v]) => ` [${k}: ${v}]`).join("");
  const type = options.contentType ? ` [content-type: ${options.contentType}]` : "";
  const body = options.body === undefined
    ? ""
    : ` ${
      options.body.length > 70
        ? `${options.body.slice(0, 40)}... (${options.body.length} bytes)`
        : options.body
    }`;
  console.log(`> ${method} ${path}${fields}${type}${body}`);
  const response = await client.request(method, path, options);
  console.log(`< ${response.status} ${response.statusText}${headerSummary(response.headers)}`);
  if (response.body !== undefined) {
    const problem = response.body as { detail?: string; field?: string };
    const text = response.status >= 400
      ? `${problem.detail}${problem.field ? `  (field: ${problem.field})` : ""}`
      : JSON.stringify(response.body);
    console.log(`  ${text}`);
  }
  console.log();
  return response;
}

async function tour(client: BooksClient): Promise<void> {
  console.log("-- the routes --\n");
  const books = [
    { title: "Dune", author: "Frank Herbert", year: 1965 },
    { title: "The Left Hand of Darkness", author: "Ursula K. Le Guin", year: 1969 },
    { title: "Foundation", author: "Isaac Asimov", year: 1950 },
  ];
  const created: ApiResponse[] = [];
  for (const book of books) {
    created.push(await show(client, "POST", "/books", { body: JSON.stringify(book) }));
  }
  await show(client, "GET", "/books");
  const one = await show(client, "GET", "/books/1");
  const etag = one.headers.get("etag")!;
  await show(client, "GET", "/books/1", { headers: { "if-none-match": etag } });
  await show(client, "PUT", "/books/2", {
    body: JSON.stringify({ title: "The Dispossessed", author: "Ursula K. Le Guin", year: 1974 }),
  });
  await show(client, "PATCH", "/books/3", {
    body: JSON.stringify({ year: 1951 }),
    contentType: "application/merge-patch+json",
  });
  console.log("-- the errors --\n");
  // A client that still holds the ETag its POST returned, from before the PATCH.
  await show(client, "PATCH", "/books/3", {
    body: JSON.stringify({ title: "Foundation and Empire" }),
    contentType: "application/merge-patch+json",
    headers: { "if-match": created[2].headers.get("etag")! },
  });
  await show(client, "DELETE", "/books/1");
  await show(client, "GET", "/books/1");
  await show(client, "DELETE", "/books");
  await show(client, "POST", "/books", { body: "title=Dune", contentType: "text/plain" });
  await show(client, "POST", "/books", { body: '{"title": "Dune", "author": "Frank Herbert",}' });
  await show(client, "POST", "/books", {
    body: JSON.stringify({ title: "Dune", author: "Frank Herbert", year: "1965" }),
  });
  await show(client, "PATCH", "/books/3", {
    body: JSON.stringify({ author: null }),
    contentType: "application/merge-patch+json",
  });
  await show(client, "POST", "/books", {
    body: JSON.stringify({ title: "x".repeat(20_000), author: "Anonymous", year: 2024 }),
  });
}

async function stress(client: BooksClient): Promise<void> {
  console.log("-- many clients at once --\n");
  const created = await Promise.all(
    Array.from(
      { length: 200 },
      (_, i) => client.create({ title: `Book ${i + 1}`, author: "Parallel", year: 2000 }),
    ),
  );
  const ids = new Set(created.map((response) => (response.body as Book).id));
  console.log(
    `200 parallel POSTs: ${
      created.filter((r) => r.status === 201).length
    } × 201, ${ids.size} distinct ids`,
  );

  // Read-modify-write from 20 clients at once: first blind, then with If-Match.
  const target = (await client.create({ title: "Counter", author: "Everyone", year: 0 }))
    .body as Book;
  await Promise.all(Array.from({ length: 20 }, async () => {
    const { body } = await client.get(target.id);
    const book = body as Book;
    await client.replace(target.id, {
      title: book.title,
      author: book.author,
      year: book.year + 1,
    });
  }));
  const blind = ((await client.get(target.id)).body as Book).year;
  console.log(
    `20 clients each GET, add 1 to "year", PUT (no If-Match): year is ${blind}, ` +
      `${20 - blind} update(s) lost`,
  );
  const attempts = await Promise.all(
    Array.from({ length: 20 }, () =>
      updateWithRetry(
        client,
        target.id,
        ({ title, author, year }) => ({ title, author, year: year + 1 }),
      )),
  );
  const careful = ((await client.get(target.id)).body as Book).year;
  console.log(
    `the same with If-Match, retrying on 412: year went from ${blind} to ${careful}, ` +
      `${20 - (careful - blind)} lost (${attempts.reduce((a, b) => a + b) - 20} retries)`,
  );
}

if (import.meta.main) runMain(USAGE, main);
