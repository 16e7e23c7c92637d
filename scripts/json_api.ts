#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title Consuming a JSON API: validate what comes back, follow Link, mind the rate limit
 * @difficulty intermediate
 * @tags cli, network, http, json, api
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc8288#section-3} RFC 8288 §3: The Link header field
 * @resource {https://www.rfc-editor.org/rfc/rfc9110#section-13.1.2} RFC 9110 §13.1.2: If-None-Match
 * @resource {https://www.rfc-editor.org/rfc/rfc8259} RFC 8259: The JavaScript Object Notation (JSON) Data Interchange Format
 * @resource {https://docs.github.com/en/rest/users/users} GitHub REST API: Users
 *
 * The tutorials call GitHub's users API and trust whatever comes back. A
 * client worth keeping does four more things: it checks the JSON against the
 * shape it expects (hand-written type guards that name the bad field, rather
 * than a cast that lets `undefined` leak in); it pages through a list by
 * following the `Link: <...>; rel="next"` header instead of building URLs;
 * it reads the `X-RateLimit-*` headers and stops before the server has to
 * refuse it; and it sends `If-None-Match` with the ETag it saw, so an
 * unchanged answer costs a 304 and no rate limit. Offline by default, against
 * fixture routes shaped like GitHub's that it serves itself; `--url
 * https://api.github.com` for the real one. Taught cell by cell in
 * notebooks/17_json_api.ipynb.
 */

import { createHash } from "node:crypto";
import { parseFlags } from "../lib/parse_flags.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";

const USAGE = `
json_api.ts: a typed, paging, rate-limit-aware, caching client for GitHub's users API

usage:
  json_api.ts                      demo: fixture routes on a free port, then pages, a user,
                                   a 304, a response that fails validation, a 404, the rate limit
  json_api.ts serve [flags]        serve the fixture routes (GitHub's shape) until Ctrl-C
  json_api.ts users [flags]        GET /users, following Link rel="next" page by page
  json_api.ts user LOGIN [flags]   GET /users/LOGIN
  json_api.ts rate [flags]         GET /rate_limit (free: does not count against the limit)

flags:
  --url URL          the API's base URL (default: the fixture, http://127.0.0.1:8701;
                     the real one: https://api.github.com). With no command, runs the demo against it
  --host HOST        serve: address to listen on (default 127.0.0.1)
  --port PORT        serve: TCP port (default 8701; 0 picks any free port)
  --rate-limit N     serve: requests allowed per hour (default 60, GitHub's for anonymous clients)
  --since ID         users: start after this user id (default 0)
  --per-page N       users: users per page, 1 to 100 (default 5)
  --max-pages N      users: stop after this many pages (default 3)
  --etag ETAG        user: send If-None-Match: ETAG (a 304 means your copy is current)
  --user-agent TEXT  the User-Agent to send (GitHub refuses requests without one)
  --timeout SECS     give up on an answer after this long (default 10)
  -h, --help         show this help

permissions:
  demo, serve, and clients of the fixture:   --allow-net=127.0.0.1
  --url https://api.github.com:              --allow-net=api.github.com
`;

const DEFAULT_PORT = 8701;
const DEFAULT_USER_AGENT = "wirebook-json-api/1.0 (deno)";
const MAX_RESPONSE = 1024 * 1024;

// ---------------------------------------------------------------------------
// Validation: the shape we rely on, checked field by field
//
// `await response.json() as User` is a promise the compiler cannot check: if
// the API renames a field or sends a number as a string, the cast still
// "works" and the `undefined` surfaces three functions later. Checking at the
// edge turns that into one error that names the path: users[3].id.
// Fields we do not use are ignored, so the API may grow without breaking us.
// ---------------------------------------------------------------------------

/** A response whose JSON is not the shape the client relies on; `path` names the field. */
export class ValidationError extends Error {
  /**
   * @param path Where in the JSON, e.g. `users[3].id`.
   * @param expected What should be there.
   * @param got What was there.
   */
  constructor(readonly path: string, readonly expected: string, readonly got: unknown) {
    super(`${path}: expected ${expected}, got ${describe(got)}`);
    this.name = "ValidationError";
  }
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing (the field is missing)";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  const shown = JSON.stringify(value);
  return `${shown.length > 40 ? shown.slice(0, 37) + "..." : shown} (a ${typeof value})`;
}

type Fields = Record<string, unknown>;

function object(value: unknown, path: string): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ValidationError(path, "an object", value);
  }
  return value as Fields;
}

function string(fields: Fields, key: string, path: string): string {
  const value = fields[key];
  if (typeof value !== "string") throw new ValidationError(`${path}.${key}`, "a string", value);
  return value;
}

function nullableString(fields: Fields, key: string, path: string): string | null {
  const value = fields[key];
  if (value !== null && typeof value !== "string") {
    throw new ValidationError(`${path}.${key}`, "a string or null", value);
  }
  return value;
}

function count(fields: Fields, key: string, path: string): number {
  const value = fields[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ValidationError(`${path}.${key}`, "a whole number >= 0", value);
  }
  return value;
}

function boolean(fields: Fields, key: string, path: string): boolean {
  const value = fields[key];
  if (typeof value !== "boolean") {
    throw new ValidationError(`${path}.${key}`, "true or false", value);
  }
  return value;
}

function url(fields: Fields, key: string, path: string): string {
  const value = string(fields, key, path);
  if (!URL.canParse(value)) throw new ValidationError(`${path}.${key}`, "an absolute URL", value);
  return value;
}

function timestamp(fields: Fields, key: string, path: string): Date {
  const value = string(fields, key, path);
  const date = new Date(value);
  if (!/^\d{4}-\d\d-\d\dT/.test(value) || Number.isNaN(date.getTime())) {
    throw new ValidationError(`${path}.${key}`, "an ISO 8601 date-time", value);
  }
  return date;
}

/** One user in a list (GitHub's "simple user"): only the fields this client uses. */
export interface UserSummary {
  login: string;
  id: number;
  type: string;
  siteAdmin: boolean;
  htmlUrl: string;
}

/** One user in full (`GET /users/{login}`). */
export interface User extends UserSummary {
  name: string | null;
  company: string | null;
  location: string | null;
  bio: string | null;
  publicRepos: number;
  followers: number;
  following: number;
  createdAt: Date;
}

/** Check one list entry. @throws {ValidationError} naming the first bad field. */
export function parseUserSummary(value: unknown, path = "user"): UserSummary {
  const fields = object(value, path);
  const login = string(fields, "login", path);
  // Letters, digits and hyphens today; a few old accounts have more, and apps end in [bot].
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,38}(\[bot\])?$/.test(login)) {
    throw new ValidationError(`${path}.login`, "a GitHub login (letters, digits, -)", login);
  }
  const id = count(fields, "id", path);
  return {
    login,
    id,
    type: string(fields, "type", path),
    siteAdmin: boolean(fields, "site_admin", path),
    htmlUrl: url(fields, "html_url", path),
  };
}

/** Check a full user. @throws {ValidationError} naming the first bad field. */
export function parseUser(value: unknown, path = "user"): User {
  const summary = parseUserSummary(value, path);
  const fields = value as Fields;
  return {
    ...summary,
    name: nullableString(fields, "name", path),
    company: nullableString(fields, "company", path),
    location: nullableString(fields, "location", path),
    bio: nullableString(fields, "bio", path),
    publicRepos: count(fields, "public_repos", path),
    followers: count(fields, "followers", path),
    following: count(fields, "following", path),
    createdAt: timestamp(fields, "created_at", path),
  };
}

/** Check a page of users. @throws {ValidationError} naming the entry and field. */
export function parseUserList(value: unknown, path = "users"): UserSummary[] {
  if (!Array.isArray(value)) throw new ValidationError(path, "an array", value);
  return value.map((entry, i) => parseUserSummary(entry, `${path}[${i}]`));
}

/** The core limit from `GET /rate_limit`. */
export function parseRateLimitBody(value: unknown, path = "body"): RateLimit {
  const core = object(
    object(object(value, path).resources, `${path}.resources`).core,
    `${path}.resources.core`,
  );
  const where = `${path}.resources.core`;
  return {
    limit: count(core, "limit", where),
    remaining: count(core, "remaining", where),
    used: count(core, "used", where),
    reset: new Date(count(core, "reset", where) * 1000),
    resource: "core",
  };
}

// ---------------------------------------------------------------------------
// Headers: Link (RFC 8288) and X-RateLimit-*
// ---------------------------------------------------------------------------

/** One link of a Link header: a target and its parameters (`rel`, `title`, ...). */
export interface LinkValue {
  /** The URI reference between `<` and `>`, as written (resolve it against the request URL). */
  target: string;
  /** The relation types, lowercased (`rel="next last"` gives two). */
  rel: string[];
  /** Every parameter, names lowercased; only the first of a repeated name counts. */
  params: Record<string, string>;
}

/**
 * Parse a Link field value (RFC 8288 §3):
 * `<uri>; rel="next", <uri>; rel="first"`. Written as a scanner rather than
 * `split(",")`, because a comma may appear inside the `<...>` and inside a
 * quoted parameter. @throws {SyntaxError} for a value that does not parse.
 */
export function parseLinkHeader(value: string): LinkValue[] {
  const links: LinkValue[] = [];
  let i = 0;
  const space = () => {
    while (value[i] === " " || value[i] === "\t") i++;
  };
  const fail = (what: string) => {
    throw new SyntaxError(`Link header: expected ${what} at character ${i}: ${value}`);
  };
  const token = () => {
    const match = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/.exec(value.slice(i));
    if (!match) fail("a token");
    i += match![0].length;
    return match![0];
  };
  while (i < value.length) {
    space();
    if (value[i] === ",") { // empty list elements are allowed (RFC 9110 §5.6.1)
      i++;
      continue;
    }
    if (i >= value.length) break;
    if (value[i] !== "<") fail('"<"');
    const end = value.indexOf(">", i);
    if (end < 0) fail('">"');
    const target = value.slice(i + 1, end).trim();
    i = end + 1;
    const params: Record<string, string> = {};
    while (true) {
      space();
      if (i >= value.length) break;
      if (value[i] === ",") {
        i++;
        break;
      }
      if (value[i] !== ";") fail('";" or ","');
      i++;
      space();
      const name = token().toLowerCase();
      space();
      let param = "";
      if (value[i] === "=") {
        i++;
        space();
        if (value[i] === '"') {
          for (i++; i < value.length && value[i] !== '"'; i++) {
            if (value[i] === "\\") i++; // a quoted-pair: the next character as is
            param += value[i] ?? "";
          }
          if (value[i] !== '"') fail("a closing quote");
          i++;
        } else {
          param = token();
        }
      }
      // RFC 8288 §3.3: a rel that appears twice keeps its first value.
      if (!(name in params)) params[name] = param;
    }
    const rel = (params.rel ?? "").toLowerCase().split(/\s+/).filter(Boolean);
    links.push({ target, rel, params });
  }
  return links;
}

/** The URL of the link with relation `rel`, resolved against `base`, if there is one. */
export function findLink(headers: Headers, rel: string, base: string | URL): URL | undefined {
  const field = headers.get("link");
  if (!field) return undefined;
  const link = parseLinkHeader(field).find((link) => link.rel.includes(rel));
  return link ? new URL(link.target, base) : undefined;
}

/** What the `X-RateLimit-*` headers say. */
export interface RateLimit {
  /** Requests allowed per window. */
  limit: number;
  /** Left in this window. */
  remaining: number;
  /** Used in this window. */
  used: number;
  /** When the window starts over. */
  reset: Date;
  /** Which limit (`core`, `search`, ...). */
  resource?: string;
}

/** Read the rate-limit headers, or `undefined` if the server sends none. */
export function readRateLimit(headers: Headers): RateLimit | undefined {
  const number = (name: string) => {
    const value = headers.get(`x-ratelimit-${name}`);
    return value !== null && /^\d+$/.test(value.trim()) ? Number(value) : undefined;
  };
  const [limit, remaining, reset] = [number("limit"), number("remaining"), number("reset")];
  if (limit === undefined || remaining === undefined || reset === undefined) return undefined;
  return {
    limit,
    remaining,
    used: number("used") ?? limit - remaining,
    reset: new Date(reset * 1000),
    resource: headers.get("x-ratelimit-resource") ?? undefined,
  };
}

/** "42/60 left, resets 14:05:00 UTC (in 1792 s)". */
export function formatRateLimit(rate: RateLimit, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((rate.reset.getTime() - now) / 1000));
  const clock = rate.reset.toISOString().slice(11, 19);
  return `${rate.remaining}/${rate.limit} left, resets ${clock} UTC (in ${seconds} s)`;
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/** The API said no: a status other than 200 or 304, with its message. */
export class ApiError extends Error {
  /**
   * @param status The HTTP status.
   * @param message The API's message.
   * @param rateLimit What the rate-limit headers said, if anything.
   */
  constructor(readonly status: number, message: string, readonly rateLimit?: RateLimit) {
    super(message);
    this.name = "ApiError";
  }
}

/** One answer, checked. */
export interface ApiResult<T> {
  /** The URL asked for. */
  url: URL;
  /** 200, or 304 when the cached copy was still current. */
  status: number;
  /** The validated data (from the cache on a 304). */
  data: T;
  /** The ETag to send next time, if the server gave one. */
  etag?: string;
  /** The rate-limit headers, if the server sent them. */
  rateLimit?: RateLimit;
  /** The headers as received. */
  headers: Headers;
  /** True when the answer was 304 and `data` came from the cache. */
  fromCache: boolean;
}

/** Options for {@linkcode GitHubClient}. */
export interface ClientOptions {
  /** Sent on every request; GitHub refuses requests without one. @default {"wirebook-json-api/1.0 (deno)"} */
  userAgent?: string;
  /** Give up on an answer after this many ms. @default {10000} */
  timeout?: number;
}

/** A page of `GET /users`. */
export interface UsersPage extends ApiResult<UserSummary[]> {
  /** Where `rel="next"` points, if anywhere. */
  next?: URL;
}

/**
 * A client for GitHub's users API (or anything shaped like it). It
 * remembers each URL's ETag and body, and sends `If-None-Match`, so asking
 * again for something unchanged costs a 304 with no body; GitHub does not
 * count such answers against the rate limit.
 */
export class GitHubClient {
  /** The API's base URL. */
  readonly base: URL;
  /** The last rate-limit headers seen. */
  rateLimit?: RateLimit;
  readonly #cache = new Map<string, { etag: string; body: unknown }>();
  readonly #userAgent: string;
  readonly #timeout: number;

  /**
   * @param base The API's base URL, e.g. `https://api.github.com`.
   * @param options User-Agent and timeout.
   */
  constructor(base: string | URL, options: ClientOptions = {}) {
    this.base = new URL(base);
    this.#userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.#timeout = options.timeout ?? 10_000;
  }

  /**
   * GET `target` (a path under the base, or a URL of the same origin), check
   * the JSON with `parse`, and report status, ETag and rate limit. With
   * `options.etag` given and no copy in the cache, a 304 comes back with
   * `data` undefined: the caller holds the current version itself.
   * @throws {ApiError} for any status but 200/304 (403 and 429 say when the limit resets).
   * @throws {ValidationError} when the JSON is not the expected shape.
   */
  async get<T>(
    target: string | URL,
    parse: (value: unknown) => T,
    options: { etag?: string } = {},
  ): Promise<ApiResult<T>> {
    const url = this.#resolve(target);
    // Polite: a request the limit says will be refused is not sent at all
    // (GET /rate_limit is free, so it always goes).
    const spent = this.rateLimit?.remaining === 0 && this.rateLimit.reset.getTime() > Date.now();
    if (spent && !url.pathname.endsWith("/rate_limit")) {
      throw new ApiError(
        429,
        `not sent: the rate limit is used up (${formatRateLimit(this.rateLimit!)})`,
      );
    }
    const cached = this.#cache.get(url.href);
    const headers: Record<string, string> = {
      accept: "application/vnd.github+json",
      "x-github-api-version": "2022-11-28",
      "user-agent": this.#userAgent,
    };
    const etag = options.etag ?? cached?.etag;
    if (etag) headers["if-none-match"] = etag;
    let response: Response;
    try {
      response = await fetch(url, { headers, signal: AbortSignal.timeout(this.#timeout) });
    } catch (error) {
      throw explainFetchError(url, error);
    }
    const rateLimit = readRateLimit(response.headers);
    if (rateLimit) this.rateLimit = rateLimit;
    if (response.status === 304) {
      await response.body?.cancel();
      if (!cached && options.etag === undefined) {
        throw new ApiError(304, "304 for a request we have no copy of");
      }
      return {
        url,
        status: 304,
        data: cached ? parse(cached.body) : (undefined as T),
        etag: response.headers.get("etag") ?? etag,
        rateLimit,
        headers: response.headers,
        fromCache: true,
      };
    }
    const body = await readJson(response);
    if (response.status !== 200) {
      const message = typeof (body as Fields)?.message === "string"
        ? (body as Fields).message as string
        : `${response.status} ${response.statusText}`;
      const limited = (response.status === 403 || response.status === 429) &&
        rateLimit?.remaining === 0;
      throw new ApiError(
        response.status,
        limited
          ? `${response.status}: rate limit exceeded (${
            formatRateLimit(rateLimit!)
          }); wait, or authenticate`
          : `${response.status} ${response.statusText}` +
            (message === response.statusText ? "" : `: ${message}`),
        rateLimit,
      );
    }
    const data = parse(body);
    const newEtag = response.headers.get("etag") ?? undefined;
    if (newEtag) this.#cache.set(url.href, { etag: newEtag, body });
    return {
      url,
      status: 200,
      data,
      etag: newEtag,
      rateLimit,
      headers: response.headers,
      fromCache: false,
    };
  }

  /** `GET /users/{login}`, validated. */
  user(login: string, options: { etag?: string } = {}): Promise<ApiResult<User>> {
    return this.get(`users/${encodeURIComponent(login)}`, (value) => parseUser(value), options);
  }

  /** `GET /rate_limit`: what is left, without using any of it. */
  async rate(): Promise<RateLimit> {
    return (await this.get("rate_limit", (value) => parseRateLimitBody(value))).data;
  }

  /**
   * Page through `GET /users?since=...&per_page=...`, following each
   * answer's `Link: <...>; rel="next"` (never building the next URL
   * ourselves: the server decides how it pages). Stops after `maxPages`, at
   * a page with no next link or no users, and before a request the rate
   * limit says would be refused.
   */
  async *users(
    options: { since?: number; perPage?: number; maxPages?: number } = {},
  ): AsyncGenerator<UsersPage> {
    const { since = 0, perPage = 5, maxPages = 3 } = options;
    let next: URL | undefined = this.#resolve(`users?since=${since}&per_page=${perPage}`);
    for (let page = 0; page < maxPages && next; page++) {
      const result = await this.get(next, (value) => parseUserList(value));
      next = findLink(result.headers, "next", result.url);
      if (next && next.origin !== this.base.origin) {
        throw new ApiError(
          result.status,
          `rel="next" points to another origin (${next.origin}); not following`,
        );
      }
      yield { ...result, next };
      if (result.data.length === 0) break;
    }
  }

  #resolve(target: string | URL): URL {
    const base = this.base.href.endsWith("/") ? this.base : new URL(`${this.base.href}/`);
    const url = new URL(target, base);
    if (url.origin !== this.base.origin) throw new TypeError(`${url} is not under ${this.base}`);
    return url;
  }
}

// Read at most MAX_RESPONSE bytes and parse them; a non-JSON answer is an error that says so.
async function readJson(response: Response): Promise<unknown> {
  const type = response.headers.get("content-type") ?? "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (response.body) {
    for await (const chunk of response.body) {
      size += chunk.length;
      if (size > MAX_RESPONSE) throw new Error(`the answer is over ${MAX_RESPONSE} bytes`);
      chunks.push(chunk);
    }
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  const text = new TextDecoder().decode(bytes);
  if (!/^application\/([\w.+-]+\+)?json\b/i.test(type)) {
    throw new ApiError(
      response.status,
      `expected JSON, got ${type || "no Content-Type"}: ${text.slice(0, 60)}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`malformed JSON from the server: ${(error as Error).message}`);
  }
}

// fetch() reports every failure as a TypeError; give describeError the real cause.
function explainFetchError(url: URL, error: unknown): Error {
  // A missing permission says enough by itself. Anything else gets the origin
  // it was about; lib's describeError finds fetch's reason down the cause chain.
  if (error instanceof Deno.errors.NotCapable) return error;
  return new Error(`cannot reach ${url.origin}`, { cause: error });
}

// ---------------------------------------------------------------------------
// The fixture: GitHub's users API in miniature
// ---------------------------------------------------------------------------

interface FixtureUser {
  login: string;
  id: number;
  name: string | null;
  company: string | null;
  location: string | null;
  bio: string | null;
  public_repos: number;
  followers: number;
  following: number;
  created_at: string;
  type?: string;
}

// Fictional users, GitHub's mascots among them.
const FIXTURE_USERS: FixtureUser[] = [
  ["octocat", "The Octocat", "@github", "San Francisco", null, 8, 4000, 9, "2011-01-25T18:44:36Z"],
  ["hubot", "Hubot", null, "The cloud", "I run the chat", 3, 120, 0, "2011-06-01T10:00:00Z"],
  [
    "monalisa",
    "Mona Lisa Octocat",
    "@github",
    "Paris",
    "Art and code",
    12,
    860,
    14,
    "2012-02-14T09:30:00Z",
  ],
  ["spacecat", "Space Cat", null, "Orbit", null, 2, 57, 3, "2013-07-20T20:17:40Z"],
  ["codercat", null, null, null, null, 41, 210, 77, "2014-03-03T12:00:00Z"],
  ["deploybot", "Deploy Bot", "@ops", null, "Ships on Fridays", 5, 9, 1, "2015-05-05T05:05:05Z"],
  ["mergetron", "Mergetron 3000", null, "Main branch", null, 17, 33, 2, "2016-08-08T08:08:08Z"],
  [
    "linterella",
    "Linterella",
    null,
    "Line 1, column 1",
    "Semicolons matter",
    6,
    88,
    40,
    "2017-01-01T00:00:00Z",
  ],
  ["rebasey", "Rebasey McRebaseface", null, null, null, 9, 12, 12, "2018-09-09T09:09:09Z"],
  ["forky", "Forky", "@forks", "Upstream", null, 250, 5, 500, "2019-10-10T10:10:10Z"],
  ["pully", "Pull Request", null, null, "LGTM", 1, 1, 1, "2020-12-12T12:12:12Z"],
  ["the-org", "The Organisation", null, "Everywhere", null, 70, 0, 0, "2021-04-01T00:00:00Z"],
].map(([login, name, company, location, bio, repos, followers, following, created], i) => ({
  login: login as string,
  id: i + 1,
  name: name as string | null,
  company: company as string | null,
  location: location as string | null,
  bio: bio as string | null,
  public_repos: repos as number,
  followers: followers as number,
  following: following as number,
  created_at: created as string,
  type: login === "the-org" ? "Organization" : undefined,
}));

/** Options for {@linkcode fixtureHandler}. */
export interface FixtureOptions {
  /** Requests per hour before 403 (304s are free). @default {60} */
  rateLimit?: number;
  /** The clock, in ms (tests move it). @default {Date.now} */
  now?: () => number;
}

/**
 * The fixture routes, shaped like GitHub's: `GET /users?since=&per_page=`
 * with `Link: <...>; rel="next", <...{?since}>; rel="first"`,
 * `GET /users/{login}` (and `/users/mallory`, whose `id` is a string: the
 * answer a client must refuse), `GET /rate_limit`; weak ETags and 304 on
 * If-None-Match; `X-RateLimit-*` on every answer, and 403 once the hour's
 * requests are spent; 403 without a User-Agent, as GitHub does; 400 for a
 * path with a malformed %-escape.
 */
export function fixtureHandler(
  options: FixtureOptions = {},
): (request: Request, info?: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response {
  const { rateLimit = 60, now = Date.now } = options;
  let windowEnd = Math.floor(now() / 1000) + 3600;
  let used = 0;
  const docs = "https://docs.github.com/rest";

  return (request, info) => {
    const url = new URL(request.url);
    const seconds = Math.floor(now() / 1000);
    if (seconds >= windowEnd) {
      windowEnd = seconds + 3600;
      used = 0;
    }
    const rateHeaders = () => ({
      "x-ratelimit-limit": String(rateLimit),
      "x-ratelimit-remaining": String(rateLimit - used),
      "x-ratelimit-reset": String(windowEnd),
      "x-ratelimit-used": String(used),
      "x-ratelimit-resource": "core",
    });
    const answer = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      const text = JSON.stringify(body, null, 2);
      const headers: Record<string, string> = {
        "content-type": "application/json; charset=utf-8",
        "cache-control": "public, max-age=60, s-maxage=60",
        ...extra,
      };
      if (status === 200) {
        const etag = `W/"${createHash("sha256").update(text).digest("hex").slice(0, 32)}"`;
        headers.etag = etag;
        // RFC 9110 §13.1.2: If-None-Match uses the weak comparison.
        const weak = (tag: string) => tag.trim().replace(/^W\//, "");
        const asked = request.headers.get("if-none-match");
        if (
          asked &&
          (asked.trim() === "*" || asked.split(",").some((tag) => weak(tag) === weak(etag)))
        ) {
          // A 304 costs nothing against the limit: undo this request's count.
          if (url.pathname !== "/rate_limit") used--;
          delete headers["content-type"];
          return new Response(null, { status: 304, headers: { ...headers, ...rateHeaders() } });
        }
      }
      return new Response(text + "\n", { status, headers: { ...headers, ...rateHeaders() } });
    };

    if (request.method !== "GET" && request.method !== "HEAD") {
      return answer(404, { message: "Not Found", documentation_url: docs, status: "404" });
    }
    if (!request.headers.get("user-agent")) {
      return answer(403, {
        message: "Request forbidden by administrative rules. " +
          "Please make sure your request has a User-Agent header.",
        documentation_url: docs,
      });
    }
    // A path that cannot be decoded (`/users/%E0`: a %-escape that is not
    // UTF-8, or `%` without two hex digits, RFC 3986 §2.1) is the client's
    // mistake: 400, in GitHub's error shape. Unchecked, decodeURIComponent
    // would throw below and Deno would answer 500. Checked before the rate
    // limit, so a request that looked nothing up costs nothing.
    try {
      decodeURIComponent(url.pathname);
    } catch {
      return answer(400, {
        message: "Bad Request: the path has a malformed percent-encoding",
        documentation_url: docs,
        status: "400",
      });
    }
    if (url.pathname === "/rate_limit") {
      const core = {
        limit: rateLimit,
        remaining: rateLimit - used,
        reset: windowEnd,
        used,
        resource: "core",
      };
      return answer(200, { resources: { core }, rate: core });
    }
    if (used >= rateLimit) {
      return answer(403, {
        message: `API rate limit exceeded for ${info?.remoteAddr.hostname ?? "you"}. ` +
          "(Authenticated requests get a higher rate limit.)",
        documentation_url: docs,
      });
    }
    used++;

    const origin = url.origin;
    const summary = (user: FixtureUser) => ({
      login: user.login,
      id: user.id,
      node_id: btoa(`04:User${user.id}`),
      avatar_url: `${origin}/avatars/${user.id}`,
      url: `${origin}/users/${user.login}`,
      html_url: `https://github.example/${user.login}`,
      type: user.type ?? "User",
      site_admin: false,
    });

    if (url.pathname === "/users") {
      const since = Number(url.searchParams.get("since") ?? 0);
      const perPage = Math.min(100, Number(url.searchParams.get("per_page") ?? 30));
      if (!Number.isSafeInteger(since) || !Number.isSafeInteger(perPage) || perPage < 1) {
        return answer(422, {
          message: "Validation Failed",
          documentation_url: docs,
          status: "422",
        });
      }
      const page = FIXTURE_USERS.filter((user) => user.id > since).slice(0, perPage);
      const links = [`<${origin}/users{?since}>; rel="first"`];
      const last = page.at(-1);
      if (last && FIXTURE_USERS.some((user) => user.id > last.id)) {
        links.unshift(`<${origin}/users?per_page=${perPage}&since=${last.id}>; rel="next"`);
      }
      return answer(200, page.map(summary), { link: links.join(", ") });
    }
    const match = url.pathname.match(/^\/users\/([^/]+)$/);
    if (match) {
      // Safe now: the whole path decoded above, and a segment of it does too.
      const login = decodeURIComponent(match[1]).toLowerCase();
      if (login === "mallory") {
        // A broken answer, on purpose: the id is a string.
        return answer(200, { ...summary({ ...FIXTURE_USERS[0], login: "mallory" }), id: "13" });
      }
      const user = FIXTURE_USERS.find((user) => user.login === login);
      if (user) {
        const { login: _, id: __, type: ___, ...details } = user;
        return answer(200, {
          ...summary(user),
          ...details,
          blog: "",
          updated_at: user.created_at,
        });
      }
    }
    return answer(404, { message: "Not Found", documentation_url: docs, status: "404" });
  };
}

/** Serve {@linkcode fixtureHandler} with `Deno.serve` until `signal` aborts. */
export function serveFixture(
  options: FixtureOptions & { hostname?: string; port?: number; signal?: AbortSignal } = {},
): Deno.HttpServer<Deno.NetAddr> {
  const { hostname = "127.0.0.1", port = DEFAULT_PORT, signal } = options;
  return Deno.serve({ hostname, port, signal, onListen: () => {} }, fixtureHandler(options));
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  url: { type: "string" },
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  "rate-limit": { type: "number", default: 60, integer: true, min: 0 },
  since: { type: "number", default: 0, integer: true, min: 0 },
  "per-page": { type: "number", default: 5, integer: true, min: 1, max: 100 },
  "max-pages": { type: "number", default: 3, integer: true, min: 1, max: 100 },
  etag: { type: "string" },
  "user-agent": { type: "string", default: DEFAULT_USER_AGENT },
  timeout: { type: "number", default: 10, min: 0.001 },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  const expect = (n: number) => {
    if (rest.length !== n) {
      throw new UsageError(`${command} takes ${n} argument(s), got ${rest.length}`);
    }
  };
  const client = () =>
    new GitHubClient(flags.url ?? `http://127.0.0.1:${DEFAULT_PORT}`, {
      userAgent: flags["user-agent"],
      timeout: flags.timeout * 1000,
    });
  if (command === undefined) return await demo(flags.url, flags["user-agent"]);
  if (command === "serve") {
    expect(0);
    const server = serveFixture({
      hostname: flags.host,
      port: flags.port,
      rateLimit: flags["rate-limit"],
      signal: shutdownSignal(),
    });
    console.log(listeningBanner("http", server.addr));
    return await server.finished;
  }
  if (command === "users") {
    expect(0);
    const pages = client().users({
      since: flags.since,
      perPage: flags["per-page"],
      maxPages: flags["max-pages"],
    });
    for await (const page of pages) printPage(page);
    return;
  }
  if (command === "user") {
    expect(1);
    const result = await client().user(rest[0], { etag: flags.etag });
    printUser(result);
    return;
  }
  if (command === "rate") {
    expect(0);
    console.log(`rate limit: ${formatRateLimit(await client().rate())}`);
    return;
  }
  throw new UsageError(`unknown command "${command}"; expected serve, users, user or rate`);
}

function printPage(page: UsersPage): void {
  const path = `${page.url.pathname}${page.url.search}`;
  console.log(`GET ${path} -> ${page.status}, ${page.data.length} user(s)`);
  for (const user of page.data) {
    console.log(
      `  ${String(user.id).padStart(8)}  ${user.login}${
        user.type === "User" ? "" : ` (${user.type})`
      }`,
    );
  }
  if (page.rateLimit) console.log(`  rate limit: ${formatRateLimit(page.rateLimit)}`);
  console.log(
    `  Link rel="next": ${
      page.next ? `${page.next.pathname}${page.next.search}` : "(none: the last page)"
    }`,
  );
}

function printUser(result: ApiResult<User>): void {
  console.log(
    `GET ${result.url.pathname} -> ${result.status}${result.fromCache ? " Not Modified" : ""}`,
  );
  const user = result.data;
  if (user) {
    console.log(
      `  ${user.login} (id ${user.id}, ${user.type})${user.name ? `: ${user.name}` : ""}`,
    );
    const where = [user.company, user.location].filter(Boolean).join(", ");
    if (where) console.log(`  ${where}`);
    console.log(
      `  ${user.publicRepos} public repos, ${user.followers} followers, following ${user.following}; ` +
        `joined ${user.createdAt.toISOString().slice(0, 10)}`,
    );
  } else {
    console.log("  (your copy with that ETag is current)");
  }
  if (result.etag) console.log(`  ETag: ${result.etag}`);
  if (result.rateLimit) console.log(`  rate limit: ${formatRateLimit(result.rateLimit)}`);
}

// The demo: against the fixture on a free port (or --url), every part in turn.
async function demo(url: string | undefined, userAgent: string): Promise<void> {
  const controller = new AbortController();
  const server = url === undefined
    ? serveFixture({ port: 0, rateLimit: 12, signal: controller.signal })
    : undefined;
  const base = url ?? `http://127.0.0.1:${server!.addr.port}`;
  if (server) {
    console.log(`fixture: ${listeningBanner("http", server.addr)} (12 requests per hour)\n`);
  }
  const client = new GitHubClient(base, { userAgent });
  try {
    console.log('-- paging: follow Link rel="next" --');
    for await (const page of client.users({ perPage: 5, maxPages: 3 })) printPage(page);

    console.log("\n-- one user, then the same again with If-None-Match --");
    const first = await client.user("octocat");
    printUser(first);
    printUser(await client.user("octocat"));
    if (!server) return;

    console.log("\n-- an answer that is not the shape we rely on --");
    await client.user("mallory").catch((error) => console.log(`  refused: ${error.message}`));
    console.log("\n-- a user that does not exist --");
    await client.user("nobody-here").catch((error) => console.log(`  ${error.message}`));

    console.log("\n-- spending the rest of the rate limit --");
    for (let i = 0; i < 20; i++) {
      try {
        const page = await client.get(`users?since=${i}&per_page=1`, parseUserList);
        console.log(
          `  GET /users?since=${i}&per_page=1 -> ${page.status}, ${
            formatRateLimit(page.rateLimit!)
          }`,
        );
      } catch (error) {
        console.log(`  GET /users?since=${i}&per_page=1 -> ${(error as Error).message}`);
        break;
      }
    }
    console.log(`  GET /rate_limit (free) -> ${formatRateLimit(await client.rate())}`);
    // What a client that ignores the headers would have been told:
    const ignored = await fetch(`${base}/users`, { headers: { "user-agent": userAgent } });
    const { message } = await ignored.json();
    console.log(`  (sent anyway, by plain fetch: ${ignored.status} "${message}")`);
  } finally {
    controller.abort();
    await server?.finished;
  }
}

if (import.meta.main) runMain(USAGE, main);
