#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title Scraping the web politely: robots.txt, a User-Agent, a delay, a real HTML parser
 * @difficulty intermediate
 * @tags cli, network, http, html, scraping
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc9309} RFC 9309: Robots Exclusion Protocol
 * @resource {https://www.rfc-editor.org/rfc/rfc3986#section-5} RFC 3986 §5: Reference resolution (relative links)
 * @resource {https://html.spec.whatwg.org/multipage/parsing.html} WHATWG HTML: Parsing HTML documents
 * @resource {https://www.rfc-editor.org/rfc/rfc9110#section-10.1.5} RFC 9110 §10.1.5: User-Agent
 *
 * The tutorials fetch Hacker News and pull the story titles out with a
 * regular expression or a CSS selector, as fast as the loop runs. A scraper
 * that a site owner would tolerate does more: it reads /robots.txt first and
 * obeys it (RFC 9309: groups, longest match, Allow beats Disallow on a tie),
 * says who it is in User-Agent, waits between requests (at least the site's
 * Crawl-delay), stays on the site it was pointed at, follows redirects only
 * where robots.txt allows, and parses HTML the way a browser does, so broken
 * markup (unclosed tags, a <p> inside a table, unquoted attributes) still
 * yields the right tree. Links are
 * resolved against the page's URL (or its <base>), so `item?id=1` becomes a
 * URL. Offline by default, against an HN-like fixture site it serves itself;
 * `--url` for a real site. Taught cell by cell in notebooks/18_web_scrape.ipynb.
 */

// The HTML parser: parse5, pinned. Why this one:
// - it implements the WHATWG HTML parsing algorithm itself (tokenizer and tree
//   construction, tested against html5lib's test suite), so broken markup is
//   repaired exactly as a browser repairs it: implied </td> and <tbody>,
//   foster-parented <p> in tables, misnested <a><b> by the adoption agency;
// - it is the parser under jsdom, Angular and rehype, maintained and released
//   steadily (8.1.1, November 2026), with one small dependency (entities);
// - it returns a plain tree of objects: no DOM, no CSS engine, no window.
// htmlparser2 is faster but does not build the tree the way the spec says
// (no foster parenting, no implied tbody); linkedom and jsdom bring a whole
// DOM for a job that needs twenty lines of tree walking.
import { type DefaultTreeAdapterTypes, parse } from "npm:parse5@8.1.1";
import { parseFlags } from "../lib/parse_flags.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";

const USAGE = `
web_scrape.ts: scrape story titles and links politely (robots.txt, User-Agent, a delay)

usage:
  web_scrape.ts                     demo: an HN-like fixture site on a free port; scrape its
                                    pages until robots.txt forbids the next one
  web_scrape.ts serve [flags]       serve the fixture site (broken HTML, relative links,
                                    a robots.txt that forbids /x?) until Ctrl-C
  web_scrape.ts scrape [flags]      scrape --url and up to --pages pages after it
  web_scrape.ts robots [PATH...]    what --url's robots.txt says about each PATH

flags:
  --url URL          the first page (default: the fixture, http://127.0.0.1:8702/news);
                     e.g. https://news.ycombinator.com/news
  --pages N          scrape: follow "More" links up to N pages in all (default 3);
                     it stays on --url's origin: a "More" link to another origin
                     ends the scrape (a note says so), a redirect to one is an error
  --delay SECS       wait at least this long between requests to a site (default 1);
                     a longer Crawl-delay in robots.txt wins
  --user-agent TEXT  who we say we are (default "wirebook-scraper/1.0 (learning project)");
                     robots.txt groups are matched against its first word
  --json             scrape: print the stories as JSON
  --timeout SECS     give up on an answer after this long (default 15)
  --host HOST        serve: address to listen on (default 127.0.0.1)
  --port PORT        serve: TCP port (default 8702; 0 picks any free port)
  --crawl-delay SECS serve: the Crawl-delay its robots.txt asks for (default 1)
  -h, --help         show this help

permissions:
  demo, serve, and the fixture:               --allow-net=127.0.0.1
  --url https://news.ycombinator.com/news:    --allow-net=news.ycombinator.com
  (HN's robots.txt asks for Crawl-delay: 30, so each page takes 30 s: be patient)
`;

const DEFAULT_PORT = 8702;
const DEFAULT_USER_AGENT = "wirebook-scraper/1.0 (learning project)";
const MAX_PAGE = 2 * 1024 * 1024;
const MAX_ROBOTS = 500 * 1024; // RFC 9309 §2.5: parse at least the first 500 KiB
const MAX_REDIRECTS = 5; // RFC 9309 §2.3.1.2: follow at least five

// ---------------------------------------------------------------------------
// robots.txt (RFC 9309)
// ---------------------------------------------------------------------------

/** One Allow or Disallow line. */
export interface RobotsRule {
  allow: boolean;
  /** The path pattern, normalised; may hold `*` (any characters) and end in `$` (end of path). */
  pattern: string;
}

/** One group: the user agents it names, its rules, and the non-standard Crawl-delay. */
export interface RobotsGroup {
  agents: string[];
  rules: RobotsRule[];
  crawlDelay?: number;
}

/** What robots.txt says about one URL. */
export interface RobotsVerdict {
  allowed: boolean;
  /** The rule that decided, if one matched (none: allowed). */
  rule?: RobotsRule;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * Bring a path (or a pattern) to the form RFC 9309 §2.2.2 compares:
 * non-ASCII and spaces percent-encoded as UTF-8, `%xx` of an unreserved
 * character decoded (`%41` is `A`), other `%xx` in upper case. So
 * `/caf%c3%a9`, `/café` and `/caf%C3%A9` are one path.
 */
export function normalizePath(path: string): string {
  let out = "";
  for (let i = 0; i < path.length; i++) {
    const char = path[i];
    if (char === "%" && /^[0-9a-fA-F]{2}$/.test(path.slice(i + 1, i + 3))) {
      const byte = String.fromCharCode(parseInt(path.slice(i + 1, i + 3), 16));
      out += UNRESERVED.test(byte) ? byte : `%${path.slice(i + 1, i + 3).toUpperCase()}`;
      i += 2;
    } else if (char.charCodeAt(0) > 0x20 && char.charCodeAt(0) < 0x7f) {
      out += char;
    } else {
      const codePoint = String.fromCodePoint(path.codePointAt(i)!);
      if (codePoint.length === 2) i++; // a surrogate pair
      for (const byte of new TextEncoder().encode(codePoint)) {
        out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
      }
    }
  }
  return out;
}

function patternRegExp(pattern: string): RegExp {
  const anchored = pattern.endsWith("$");
  const body = (anchored ? pattern.slice(0, -1) : pattern)
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}${anchored ? "$" : ""}`);
}

/** A parsed robots.txt, and the questions a crawler asks it. */
export class Robots {
  /** @param groups The groups, in file order. */
  constructor(readonly groups: RobotsGroup[]) {}

  /** No robots.txt (4xx, RFC 9309 §2.3.1.3): everything is allowed. */
  static allowAll(): Robots {
    return new Robots([]);
  }

  /** robots.txt unreachable (5xx, §2.3.1.4): assume everything is disallowed. */
  static disallowAll(): Robots {
    return new Robots([{ agents: ["*"], rules: [{ allow: false, pattern: "/" }] }]);
  }

  /**
   * Parse robots.txt (RFC 9309 §2.1, §2.2): `user-agent`, `allow`,
   * `disallow` lines (names in any case, `#` comments), grouped: a run of
   * user-agent lines opens a group, and its rules follow. Rules before any
   * user-agent, and lines that do not parse, are ignored; so are other
   * keys, except the widespread `crawl-delay`.
   */
  static parse(text: string): Robots {
    const groups: RobotsGroup[] = [];
    let current: RobotsGroup | undefined;
    let openForAgents = false; // still reading this group's user-agent lines?
    for (const raw of text.slice(0, MAX_ROBOTS).split(/\r\n|\r|\n/)) {
      const line = raw.replace(/#.*/, "").trim();
      const match = line.match(/^([A-Za-z-]+)\s*:\s*(.*)$/);
      if (!match) continue;
      const key = match[1].toLowerCase();
      const value = match[2].trim();
      if (key === "user-agent") {
        if (!current || !openForAgents) {
          current = { agents: [], rules: [] };
          groups.push(current);
          openForAgents = true;
        }
        current.agents.push(value.toLowerCase());
        continue;
      }
      if (!current) continue;
      openForAgents = false;
      // An empty Disallow or Allow matches nothing (§2.2.2).
      if ((key === "allow" || key === "disallow") && value !== "") {
        current.rules.push({ allow: key === "allow", pattern: normalizePath(value) });
      } else if (key === "crawl-delay" && /^\d+(\.\d+)?$/.test(value)) {
        current.crawlDelay = Number(value);
      }
    }
    return new Robots(groups);
  }

  /**
   * The rules that apply to `product` (the first word of our User-Agent):
   * every group naming it, case-insensitively, combined (§2.2.1); if none
   * does, every `*` group; if there is none of those either, no rules.
   */
  groupFor(product: string): RobotsGroup {
    const token = product.toLowerCase();
    let matching = this.groups.filter((group) => group.agents.includes(token));
    if (matching.length === 0) matching = this.groups.filter((group) => group.agents.includes("*"));
    const delays = matching.flatMap((group) => group.crawlDelay ?? []);
    return {
      agents: matching.flatMap((group) => group.agents),
      rules: matching.flatMap((group) => group.rules),
      crawlDelay: delays.length > 0 ? Math.max(...delays) : undefined,
    };
  }

  /**
   * May `product` fetch `url`? The most specific matching rule (the longest
   * pattern) decides; an Allow beats an equally long Disallow; no match
   * means allowed; /robots.txt itself is always allowed (§2.2.2).
   */
  check(url: URL, product: string): RobotsVerdict {
    const path = normalizePath(`${url.pathname}${url.search}`);
    if (url.pathname === "/robots.txt") return { allowed: true };
    let best: RobotsRule | undefined;
    for (const rule of this.groupFor(product).rules) {
      if (!patternRegExp(rule.pattern).test(path)) continue;
      const longer = !best || rule.pattern.length > best.pattern.length;
      const tieToAllow = best && rule.pattern.length === best.pattern.length && rule.allow;
      if (longer || tieToAllow) best = rule;
    }
    return { allowed: best?.allow ?? true, rule: best };
  }
}

/** `Disallow: /x?` */
export function formatRule(rule: RobotsRule): string {
  return `${rule.allow ? "Allow" : "Disallow"}: ${rule.pattern}`;
}

// ---------------------------------------------------------------------------
// Politeness: who we are, how often we ask, what we may ask for
// ---------------------------------------------------------------------------

/** Time, as the fetcher sees it: real by default, fake in tests. */
export interface Clock {
  /** Now, in ms. */
  now(): number;
  /** Resolve after `ms` ms. */
  sleep(ms: number): Promise<void>;
}

/** The real clock. */
export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** A robots.txt forbids this URL. */
export class DisallowedError extends Error {
  /**
   * @param url The forbidden URL.
   * @param rule The rule that forbids it.
   */
  constructor(readonly url: URL, readonly rule?: RobotsRule) {
    super(`robots.txt forbids ${url.pathname}${url.search}${rule ? ` (${formatRule(rule)})` : ""}`);
    this.name = "DisallowedError";
  }
}

/** One request the fetcher made, for a transcript. */
export interface FetchEvent {
  url: URL;
  status: number;
  /** How long it waited before sending, in ms. */
  waited: number;
  /** Why it waited that long. */
  reason: string;
}

/** Options for {@linkcode PoliteFetcher}. */
export interface PoliteOptions {
  /** @default {"wirebook-scraper/1.0 (learning project)"} */
  userAgent?: string;
  /** The least time between two requests to one site, in ms. @default {1000} */
  delay?: number;
  /** Give up on an answer after this many ms. @default {15000} */
  timeout?: number;
  /** @default {realClock} */
  clock?: Clock;
  /** Called after each request (robots.txt included). */
  onFetch?: (event: FetchEvent) => void;
}

/** A fetched page. */
export interface Page {
  /** Where it came from, after redirects. */
  url: URL;
  status: number;
  html: string;
}

/**
 * Fetch pages the way a well-behaved crawler does: the first request to a
 * site is for /robots.txt, and every URL (each redirect hop included) is
 * checked against it; every request carries our User-Agent; and requests to
 * one site are spaced by at least `delay`, or the site's Crawl-delay if that
 * is longer. The waits go through `clock`, so a test can record them
 * instead of sitting through them.
 */
export class PoliteFetcher {
  /** Our User-Agent, and its product token (the first word, before `/`). */
  readonly userAgent: string;
  readonly product: string;
  readonly #delay: number;
  readonly #timeout: number;
  readonly #clock: Clock;
  readonly #onFetch?: (event: FetchEvent) => void;
  readonly #robots = new Map<string, Promise<Robots>>();
  /** Per origin: when the last request was sent or answered (or the next is booked), in ms. */
  readonly #last = new Map<string, number>();

  /** @param options User-Agent, delay, timeout, clock. */
  constructor(options: PoliteOptions = {}) {
    this.userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.product = this.userAgent.split(/[\/\s]/)[0];
    this.#delay = options.delay ?? 1000;
    this.#timeout = options.timeout ?? 15_000;
    this.#clock = options.clock ?? realClock;
    this.#onFetch = options.onFetch;
  }

  /** The site's robots.txt (fetched once per origin, then remembered). */
  robots(origin: string): Promise<Robots> {
    let robots = this.#robots.get(origin);
    if (!robots) {
      robots = this.#fetchRobots(origin);
      this.#robots.set(origin, robots);
    }
    return robots;
  }

  /** What robots.txt says about `url`. */
  async check(url: URL): Promise<RobotsVerdict> {
    return (await this.robots(url.origin)).check(url, this.product);
  }

  /**
   * GET an HTML page: robots.txt permitting, after the polite wait,
   * following up to five redirects (each one checked) within the URL's origin.
   * @throws {DisallowedError} if robots.txt forbids the URL or a redirect target.
   * @throws {Error} if a redirect points to another origin.
   */
  async page(url: URL | string): Promise<Page> {
    let target = new URL(url);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const verdict = await this.check(target);
      if (!verdict.allowed) throw new DisallowedError(target, verdict.rule);
      const response = await this.#get(target, "text/html,application/xhtml+xml");
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        const next = new URL(location, target);
        // A scraper asked to read one site stays on it: a redirect elsewhere
        // (another host, port, or http -> https) is not followed blindly, or
        // we would crawl a site nobody pointed us at. The error names the
        // target, so the user can start there on purpose.
        if (next.origin !== target.origin) {
          throw new Error(
            `GET ${target.pathname}${target.search} redirects to another origin (${next}); ` +
              `not following (to scrape it, start there with --url)`,
          );
        }
        target = next;
        continue;
      }
      const text = await readText(response, MAX_PAGE);
      if (!response.ok) {
        throw new Error(`GET ${target} -> ${response.status} ${response.statusText}`);
      }
      const type = response.headers.get("content-type") ?? "";
      if (!/^(text\/html|application\/xhtml\+xml)\b/i.test(type)) {
        throw new Error(`GET ${target}: expected HTML, got ${type || "no Content-Type"}`);
      }
      return { url: target, status: response.status, html: text };
    }
    throw new Error(`GET ${url}: more than ${MAX_REDIRECTS} redirects`);
  }

  // RFC 9309 §2.3.1: 2xx parse it; 4xx no rules; 5xx (or too many
  // redirects) assume everything is disallowed. fetch() follows redirects.
  async #fetchRobots(origin: string): Promise<Robots> {
    const response = await this.#get(new URL("/robots.txt", origin), "text/plain", "follow");
    const text = await readText(response, MAX_ROBOTS, true);
    if (response.ok) return Robots.parse(text);
    if (response.status >= 400 && response.status < 500) return Robots.allowAll();
    return Robots.disallowAll();
  }

  // The one place a request leaves: wait our turn for this site, then send.
  async #get(url: URL, accept: string, redirect: RequestRedirect = "manual"): Promise<Response> {
    const robots = url.pathname === "/robots.txt" ? undefined : await this.robots(url.origin);
    const crawlDelay = (robots?.groupFor(this.product).crawlDelay ?? 0) * 1000;
    const delay = Math.max(this.#delay, crawlDelay);
    // Take the next free slot for this site before any await, so that two
    // calls at once queue one behind the other instead of both going now.
    const now = this.#clock.now();
    const last = this.#last.get(url.origin);
    const at = last === undefined ? now : Math.max(now, last + delay);
    this.#last.set(url.origin, at);
    const waited = at - now;
    if (waited > 0) await this.#clock.sleep(waited);
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { "user-agent": this.userAgent, accept },
        redirect,
        signal: AbortSignal.timeout(this.#timeout),
      });
    } catch (error) {
      throw explainFetchError(url, error);
    }
    // The next wait counts from the end of this answer (a slow site gets more rest).
    this.#last.set(url.origin, Math.max(this.#last.get(url.origin)!, this.#clock.now()));
    const reason = last === undefined
      ? "first request to this site"
      : crawlDelay > this.#delay
      ? `Crawl-delay ${crawlDelay / 1000} s`
      : `--delay ${this.#delay / 1000} s`;
    this.#onFetch?.({ url, status: response.status, waited, reason });
    return response;
  }
}

// Read a body up to `max` bytes: a page is refused past it; robots.txt is cut there (§2.5).
async function readText(response: Response, max: number, truncate = false): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (response.body) {
    for await (const chunk of response.body) {
      if (size + chunk.length > max) {
        if (!truncate) throw new Error(`${response.url}: the page is over ${max} bytes`);
        chunks.push(chunk.subarray(0, max - size));
        size = max;
        break;
      }
      chunks.push(chunk);
      size += chunk.length;
    }
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  const charset = response.headers.get("content-type")?.match(/charset="?([\w-]+)/i)?.[1];
  try {
    return new TextDecoder(charset ?? "utf-8").decode(bytes);
  } catch {
    return new TextDecoder().decode(bytes); // an unknown charset: UTF-8, the web's default
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
// Extraction: from the parsed tree to stories
// ---------------------------------------------------------------------------

type Node = DefaultTreeAdapterTypes.Node;
type Element = DefaultTreeAdapterTypes.Element;
type ParentNode = DefaultTreeAdapterTypes.ParentNode;

function isElement(node: Node): node is Element {
  return "tagName" in node;
}

function* elements(root: ParentNode): Generator<Element> {
  for (const child of root.childNodes) {
    if (!isElement(child)) continue;
    yield child;
    yield* elements(child);
  }
}

function attribute(element: Element, name: string): string | undefined {
  return element.attrs.find((attr) => attr.name === name)?.value;
}

function hasClass(element: Element, name: string): boolean {
  return (attribute(element, "class") ?? "").split(/[\t\n\f\r ]+/).includes(name);
}

function find(root: ParentNode, test: (element: Element) => boolean): Element | undefined {
  for (const element of elements(root)) if (test(element)) return element;
  return undefined;
}

/** The text inside a node, whitespace collapsed (character references are already decoded). */
export function textOf(node: Node): string {
  const parts: string[] = [];
  const walk = (n: Node) => {
    if (n.nodeName === "#text") parts.push((n as DefaultTreeAdapterTypes.TextNode).value);
    else if ("childNodes" in n) n.childNodes.forEach(walk);
  };
  walk(node);
  return parts.join("").replace(/\s+/g, " ").trim();
}

/**
 * Resolve `href` against `base` (RFC 3986 §5), keeping only http(s) links:
 * `item?id=1` on http://h/news becomes http://h/item?id=1; `javascript:`,
 * `mailto:` and unparseable references give `undefined`.
 */
export function resolveLink(href: string | undefined, base: URL): URL | undefined {
  if (href === undefined) return undefined;
  // The HTML spec strips leading and trailing ASCII whitespace from a URL attribute.
  const url = URL.parse(href.trim(), base);
  return url && (url.protocol === "http:" || url.protocol === "https:") ? url : undefined;
}

/** One story on an HN-like front page. */
export interface Story {
  /** Its position on the page (`1.`). */
  rank?: number;
  /** The item id (the `id` of its row). */
  id: string;
  title: string;
  /** Where the title links, absolute; `undefined` if the link was not http(s). */
  url?: string;
  /** The site shown beside the title. */
  site?: string;
  points?: number;
  by?: string;
  comments?: number;
}

/** What {@linkcode extractStories} found on a page. */
export interface Extracted {
  stories: Story[];
  /** The "More" link, resolved. */
  next?: URL;
  /**
   * How many syntax errors parse5's tokenizer reported and recovered from.
   * (parse5 does not report tree-construction errors, such as a <p> moved
   * out of a table, so the real count of repairs is higher.)
   */
  parseErrors: number;
  /** The URL relative links were resolved against (the page's, or its <base>). */
  base: URL;
}

/**
 * Parse an HN-like page and pull out its stories. HN's markup: each story is
 * a `<tr class="athing" id="...">` holding `span.rank` and
 * `span.titleline > a`; the next row's `td.subtext` has `span.score`,
 * `a.hnuser` and the "N comments" link; `a.morelink` is the next page.
 * Relative links are resolved against `<base href>` if the page has one,
 * else against the page's own URL.
 */
export function extractStories(html: string, pageUrl: URL | string): Extracted {
  let parseErrors = 0;
  const document = parse(html, { onParseError: () => void parseErrors++ });
  const pageBase = new URL(pageUrl);
  const baseElement = find(
    document,
    (e) => e.tagName === "base" && attribute(e, "href") !== undefined,
  );
  const base = resolveLink(baseElement && attribute(baseElement, "href"), pageBase) ?? pageBase;

  const stories: Story[] = [];
  for (const row of elements(document)) {
    if (row.tagName !== "tr" || !hasClass(row, "athing")) continue;
    const titleLine = find(row, (e) => e.tagName === "span" && hasClass(e, "titleline"));
    const link = titleLine && find(titleLine, (e) => e.tagName === "a");
    if (!link) continue;
    const rank = find(row, (e) => hasClass(e, "rank"));
    const site = find(row, (e) => hasClass(e, "sitestr"));
    const story: Story = {
      id: attribute(row, "id") ?? "",
      title: textOf(link),
    };
    const rankNumber = rank && parseInt(textOf(rank), 10);
    if (rankNumber) story.rank = rankNumber;
    const url = resolveLink(attribute(link, "href"), base);
    if (url) story.url = url.href;
    if (site) story.site = textOf(site);

    // The details live in the next row: <tr><td colspan=2></td><td class="subtext">.
    const siblings = row.parentNode?.childNodes.filter(isElement) ?? [];
    const next = siblings[siblings.indexOf(row) + 1];
    const subtext = next && find(next, (e) => hasClass(e, "subtext"));
    if (subtext) {
      const score = find(subtext, (e) => hasClass(e, "score"));
      const points = score ? parseInt(textOf(score), 10) : NaN;
      if (!Number.isNaN(points)) story.points = points;
      const user = find(subtext, (e) => e.tagName === "a" && hasClass(e, "hnuser"));
      if (user) story.by = textOf(user);
      for (const a of elements(subtext)) {
        if (a.tagName !== "a") continue;
        const text = textOf(a);
        const match = text.match(/^(\d+)\s*comments?$/);
        if (match) story.comments = Number(match[1]);
        else if (text === "discuss") story.comments = 0;
      }
    }
    stories.push(story);
  }
  const more = find(document, (e) => e.tagName === "a" && hasClass(e, "morelink"));
  return { stories, next: resolveLink(more && attribute(more, "href"), base), parseErrors, base };
}

/** One page of a scrape. */
export interface ScrapedPage extends Extracted {
  url: URL;
  /** Why the scrape stops after this page, if it does before `maxPages`. */
  stop?: string;
}

/**
 * Scrape `start`, then follow each page's "More" link, up to `maxPages`
 * pages, stopping early where robots.txt forbids the next page (which is
 * then never requested), where the next page is on another origin (a
 * `<base href>` or an absolute link elsewhere: neither that page nor that
 * site's robots.txt is requested), or where there is none.
 * @throws {DisallowedError} if robots.txt forbids `start` itself.
 */
export async function* scrape(
  fetcher: PoliteFetcher,
  start: URL | string,
  maxPages = 3,
): AsyncGenerator<ScrapedPage> {
  let next: URL | undefined = new URL(start);
  const origin = next.origin;
  for (let n = 1; n <= maxPages && next; n++) {
    const page = await fetcher.page(next);
    const extracted = extractStories(page.html, page.url);
    next = extracted.next;
    let stop: string | undefined;
    if (!next) stop = "no next page";
    // We were asked to scrape one site: a "More" link to another origin ends
    // the scrape here, before even that site's robots.txt is asked for
    // (json_api.ts likewise refuses a rel="next" to another origin).
    else if (next.origin !== origin) {
      stop = `the next page is on another origin (${next}); not following`;
      next = undefined;
    } else if (n < maxPages) {
      const verdict = await fetcher.check(next);
      if (!verdict.allowed) {
        stop = new DisallowedError(next, verdict.rule).message;
        next = undefined;
      }
    }
    yield { ...extracted, url: page.url, stop };
  }
}

// ---------------------------------------------------------------------------
// The fixture site: HN's shape, broken on purpose
// ---------------------------------------------------------------------------

interface FixtureStory {
  id: number;
  title: string;
  href: string;
  site?: string;
  points: number;
  by: string;
  comments: number;
}

const FIXTURE_STORIES: FixtureStory[][] = [
  [
    {
      id: 101,
      title: "Show HN: A TCP stack in 500 lines",
      href: "https://example.com/tcp",
      site: "example.com",
      points: 142,
      by: "alice",
      comments: 37,
    },
    {
      id: 102,
      title: "Ask HN: How do you test network code?",
      href: "item?id=102",
      points: 88,
      by: "bob",
      comments: 64,
    },
    {
      id: 103,
      title: "Why &quot;it works on loopback&quot; isn&#x27;t enough",
      href: "https://blog.example.org/loopback?utm=a&amp;ref=b",
      site: "blog.example.org",
      points: 57,
      by: "carol",
      comments: 0,
    },
    {
      id: 104,
      title: "RFC 9309 &mdash; robots.txt, finally a standard",
      href: "/from?site=rfc-editor.org",
      site: "rfc-editor.org",
      points: 230,
      by: "dave",
      comments: 12,
    },
    {
      id: 105,
      title: "The case of the <b>unclosed tag",
      href: "../docs/html-parsing.html",
      site: "localhost",
      points: 9,
      by: "erin",
      comments: 1,
    },
  ],
  [
    {
      id: 201,
      title: "Deno 2: permissions in practice",
      href: "HTTPS://Deno.Example/Blog/Permissions",
      site: "deno.example",
      points: 77,
      by: "frank",
      comments: 21,
    },
    {
      id: 202,
      title: "A link that is not one",
      href: "javascript:alert(1)",
      points: 3,
      by: "mallory",
      comments: 2,
    },
    {
      id: 203,
      title: "Launch HN: Polite crawling as a service",
      href: " item?id=203 ",
      points: 45,
      by: "grace",
      comments: 30,
    },
    {
      id: 204,
      title: "Percent-encoding: caf\u00e9 and friends",
      href: "/wiki/Caf%C3%A9",
      site: "localhost",
      points: 12,
      by: "heidi",
      comments: 4,
    },
    {
      id: 205,
      title: "Ending on a table without tbody",
      href: "//cdn.example.net/story",
      site: "cdn.example.net",
      points: 6,
      by: "ivan",
      comments: 0,
    },
  ],
];

// HN's real markup, roughly, with the mistakes real pages make. Legal but
// sloppy: no </td>, </tr> or <tbody>, unquoted attributes, uppercase tags, no
// </body> or </html>. Errors the tokenizer reports: a duplicate attribute, no
// space between attributes, &nbsp without its semicolon. Errors only tree
// construction sees: a <p> inside the table (a browser moves it out), an
// unclosed <b> in a title, a stray </span>.
function fixturePage(page: number): string {
  const stories = FIXTURE_STORIES[page - 1];
  const rows = stories.map((story, i) => {
    const rank = (page - 1) * 5 + i + 1;
    const site = story.site
      ? `<span class=sitebit comhead> (<a href="from?site=${story.site}"><span class=sitestr>${story.site}</span></a>)</span>`
      : "";
    const comments = story.comments === 0
      ? "discuss"
      : `${story.comments}&nbsp${story.comments === 1 ? "comment" : "comments"}`;
    return `
      <tr class='athing submission' id=${story.id}>
        <td align=right valign=top class=title><span class=rank>${rank}.</span>
        <td valign=top class=votelinks><center><a id=up_${story.id} href="vote?id=${story.id}&amp;how=up"><div class=votearrow title=upvote></div></a></center>
        <td class=title><span class=titleline><a href="${story.href}">${story.title}</a>${site}</span></span>
      <tr><td colspan=2><td class=subtext><span class=subline>
        <span class=score id=score_${story.id} class=score>${story.points} points</span> by <a href="user?id=${story.by}"class=hnuser>${story.by}</a>
        <span class=age><a href="item?id=${story.id}">${
      i + 1
    } hours ago</a></span> | <a href="item?id=${story.id}">${comments}</a>
      <TR class=spacer style="height:5px">`;
  }).join("");
  const more = page === 1 ? "news?p=2" : "x?fnid=Zk9sZA";
  return `<!DOCTYPE html>
<html lang=en op=news><head><meta charset=utf-8><title>Wirebook News</title>
<link rel=stylesheet href=news.css>
<body><center><table id=hnmain border=0 cellpadding=0 cellspacing=0 width="85%" bgcolor=#f6f6ef>
  <tr><td bgcolor=#ff6600><b class=hnname><a href=news>Wirebook News</a></b> | <a href=newest>new</a>
  <tr id=bigbox><td><table border=0 cellpadding=0 cellspacing=0>
    <p>This paragraph is inside a table, where a browser moves it out.
    ${rows}
    <tr class=morespace style="height:10px"><tr><td colspan=2><td class=title><a href="${more}" class=morelink rel=next>More</a>
  </table>
</table></center>
`;
}

/** The fixture's robots.txt, shaped like Hacker News's. */
export function fixtureRobots(crawlDelay = 1): string {
  return `# Wirebook News: robots.txt (RFC 9309), after Hacker News's
User-Agent: *
Disallow: /x?
Disallow: /vote?
Disallow: /reply?
Disallow: /private/
Allow: /private/welcome
Crawl-delay: ${crawlDelay}

# A crawler that misbehaved once
User-agent: BadBot
Disallow: /
`;
}

/** One request the fixture site saw. */
export interface SeenRequest {
  path: string;
  userAgent: string | null;
}

/** Options for {@linkcode fixtureSite}. */
export interface FixtureSiteOptions {
  /** The Crawl-delay its robots.txt asks for, in seconds. @default {1} */
  crawlDelay?: number;
}

/**
 * The fixture site's handler, and the log of what it was asked: `/` (a
 * redirect to /news), `/news`, `/news?p=2`, `/x?...` (page 3, forbidden by
 * robots.txt: a polite scraper never asks for it), `/private/...`,
 * `/robots.txt`.
 */
export function fixtureSite(options: FixtureSiteOptions = {}): {
  handler: (request: Request) => Response;
  seen: SeenRequest[];
} {
  const { crawlDelay = 1 } = options;
  const seen: SeenRequest[] = [];
  const html = (body: string, status = 200) =>
    new Response(body, { status, headers: { "content-type": "text/html; charset=utf-8" } });
  const handler = (request: Request) => {
    const url = new URL(request.url);
    seen.push({ path: url.pathname + url.search, userAgent: request.headers.get("user-agent") });
    if (url.pathname === "/robots.txt") {
      return new Response(fixtureRobots(crawlDelay), { headers: { "content-type": "text/plain" } });
    }
    if (url.pathname === "/") {
      return new Response(null, { status: 302, headers: { location: "/news" } });
    }
    if (url.pathname === "/news") {
      return html(fixturePage(url.searchParams.get("p") === "2" ? 2 : 1));
    }
    if (url.pathname === "/x") return html("<title>Page 3</title><p>You should not be here.");
    if (url.pathname === "/private/old") {
      return new Response(null, { status: 301, headers: { location: "/private/new" } });
    }
    if (url.pathname.startsWith("/private/")) return html("<p>Private.");
    if (url.pathname === "/moved") {
      return new Response(null, { status: 301, headers: { location: "/private/new" } });
    }
    return html("<title>Not found</title><p>No such page.", 404);
  };
  return { handler, seen };
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  url: { type: "string" },
  pages: { type: "number", default: 3, integer: true, min: 1, max: 100 },
  delay: { type: "number", default: 1, min: 0 },
  "user-agent": { type: "string", default: DEFAULT_USER_AGENT },
  json: { type: "boolean" },
  timeout: { type: "number", default: 15, min: 0.001 },
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  "crawl-delay": { type: "number", default: 1, min: 0 },
} as const;

type CommandLine = ReturnType<typeof parseFlags<typeof FLAGS>>["flags"];

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  if (command === undefined) {
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    return await demo(flags);
  }
  if (command === "serve") {
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    const site = fixtureSite({ crawlDelay: flags["crawl-delay"] });
    const server = Deno.serve(
      { hostname: flags.host, port: flags.port, signal: shutdownSignal(), onListen: () => {} },
      site.handler,
    );
    console.log(listeningBanner("http", server.addr));
    return await server.finished;
  }
  const start = parseUrl(flags.url ?? `http://127.0.0.1:${DEFAULT_PORT}/news`);
  if (command === "scrape") {
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    return await runScrape(start, flags);
  }
  if (command === "robots") {
    const fetcher = newFetcher(flags);
    const robots = await fetcher.robots(start.origin);
    const group = robots.groupFor(fetcher.product);
    console.log(`robots.txt of ${start.origin}, for "${fetcher.product}":`);
    console.log(`  rules: ${group.rules.map(formatRule).join(", ") || "(none)"}`);
    console.log(`  Crawl-delay: ${group.crawlDelay ?? "(none)"}`);
    for (const path of rest.length > 0 ? rest : [start.pathname + start.search]) {
      const verdict = robots.check(new URL(path, start), fetcher.product);
      const why = verdict.rule ? ` (${formatRule(verdict.rule)})` : " (no rule matches)";
      console.log(`  ${path}: ${verdict.allowed ? "allowed" : "disallowed"}${why}`);
    }
    return;
  }
  throw new UsageError(`unknown command "${command}"; expected serve, scrape or robots`);
}

function parseUrl(text: string): URL {
  const url = URL.parse(text);
  if (!url || !/^https?:$/.test(url.protocol)) {
    throw new UsageError(`--url must be an http(s) URL, got "${text}"`);
  }
  return url;
}

function newFetcher(flags: CommandLine, quiet = false): PoliteFetcher {
  return new PoliteFetcher({
    userAgent: flags["user-agent"],
    delay: flags.delay * 1000,
    timeout: flags.timeout * 1000,
    onFetch: quiet ? undefined : ({ url, status, waited, reason }) => {
      const wait = waited > 0
        ? `after waiting ${(waited / 1000).toFixed(1)} s (${reason})`
        : `(${reason})`;
      console.log(`GET ${url.pathname}${url.search} -> ${status} ${wait}`);
    },
  });
}

async function runScrape(start: URL, flags: CommandLine): Promise<void> {
  const fetcher = newFetcher(flags, flags.json);
  const all: Story[] = [];
  for await (const page of scrape(fetcher, start, flags.pages)) {
    all.push(...page.stories);
    if (flags.json) continue;
    console.log(
      `  ${page.stories.length} stories (parse5 met ${page.parseErrors} syntax error(s) and recovered)`,
    );
    for (const story of page.stories) printStory(story);
    if (page.stop) console.log(`stopping: ${page.stop}`);
    else if (page.next) console.log(`next: ${page.next.pathname}${page.next.search}`);
  }
  if (flags.json) console.log(JSON.stringify(all, null, 2));
}

function printStory(story: Story): void {
  const details = [
    story.points !== undefined ? `${story.points} points` : undefined,
    story.by ? `by ${story.by}` : undefined,
    story.comments !== undefined
      ? `${story.comments} comment${story.comments === 1 ? "" : "s"}`
      : undefined,
  ].filter(Boolean).join(", ");
  console.log(`  ${String(story.rank ?? "-").padStart(3)}. ${story.title}`);
  console.log(`       ${story.url ?? "(no http link)"}${details ? `  [${details}]` : ""}`);
}

// The demo: the fixture on a free port; the scraper reads robots.txt, takes
// two pages a polite second apart, and stops where robots.txt says /x? is
// off limits. Then the fixture's log: what was asked for, and by whom.
async function demo(flags: CommandLine): Promise<void> {
  if (flags.url) return await runScrape(parseUrl(flags.url), flags);
  const site = fixtureSite();
  const controller = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: () => {} },
    site.handler,
  );
  try {
    const origin = `http://127.0.0.1:${server.addr.port}`;
    console.log(`fixture site: ${listeningBanner("http", server.addr)}\n`);
    console.log(
      fixtureRobots().split("\n").filter((line) => line && !line.startsWith("#")).map((line) =>
        `  robots.txt | ${line}`
      ).join("\n"),
    );
    console.log();
    await runScrape(new URL("/news", origin), flags);
    console.log(`\nthe site's log: ${site.seen.length} requests`);
    for (const { path, userAgent } of site.seen) {
      console.log(`  ${path.padEnd(14)} User-Agent: ${userAgent}`);
    }
    const forbidden = site.seen.filter(({ path }) => path.startsWith("/x?"));
    console.log(`requests for the forbidden /x? page: ${forbidden.length}`);
  } finally {
    controller.abort();
    await server.finished;
  }
}

if (import.meta.main) runMain(USAGE, main);
