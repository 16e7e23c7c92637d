// scripts/web_scrape.ts: robots.txt by RFC 9309, a delay tested on a fake
// clock (no test waits or times anything), broken HTML, relative links.

import assert from "node:assert/strict";
import {
  type Clock,
  DisallowedError,
  extractStories,
  fixtureSite,
  formatRule,
  normalizePath,
  PoliteFetcher,
  resolveLink,
  Robots,
  scrape,
  textOf,
} from "../scripts/web_scrape.ts";
import { runScript, startServer } from "./_helpers.ts";
import { parse } from "npm:parse5@8.1.1";

/**
 * A virtual clock: each sleep is written down and ends at once, in order of
 * its end time, moving "now" to that time. Nothing really waits, and
 * concurrent sleeps overlap as real ones would.
 */
function fakeClock(): Clock & { waits: number[] } {
  let now = 1_000_000;
  const waits: number[] = [];
  const pending: { end: number; wake: () => void }[] = [];
  return {
    waits,
    now: () => now,
    sleep(ms) {
      waits.push(ms);
      return new Promise<void>((wake) => {
        pending.push({ end: now + ms, wake });
        setTimeout(() => {
          pending.sort((a, b) => a.end - b.end);
          const next = pending.shift()!;
          now = Math.max(now, next.end);
          next.wake();
        }, 0);
      });
    },
  };
}

/** A server on a free port, closed by `close()`. */
function serve(handler: (request: Request) => Response | Promise<Response>) {
  const controller = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: () => {} },
    handler,
  );
  return {
    origin: `http://127.0.0.1:${server.addr.port}`,
    async close() {
      controller.abort();
      await server.finished;
    },
  };
}

function startFixture(crawlDelay = 1) {
  const site = fixtureSite({ crawlDelay });
  const server = serve(site.handler);
  return { ...server, seen: site.seen };
}

// ---------------------------------------------------------------------------
// robots.txt
// ---------------------------------------------------------------------------

// RFC 9309 §5.1's example file.
const RFC_EXAMPLE = `User-Agent: *
Disallow: *.gif$
Disallow: /example/
Allow: /publications/

User-Agent: foobot
Disallow:/
Allow:/example/page.html
Allow:/example/allowed.gif

User-Agent: barbot
User-Agent: bazbot
Disallow: /example/page.html

User-Agent: quxbot

EOF`;

function allowed(robots: Robots, path: string, product: string): boolean {
  return robots.check(new URL(path, "https://site.test"), product).allowed;
}

Deno.test("Robots: RFC 9309's example, crawler by crawler", () => {
  const robots = Robots.parse(RFC_EXAMPLE);
  assert.equal(robots.groups.length, 4);
  assert.deepEqual(robots.groups[2].agents, ["barbot", "bazbot"]);
  // foobot: everything disallowed but two pages (the longer Allow wins).
  assert.ok(allowed(robots, "/example/page.html", "foobot"));
  assert.ok(allowed(robots, "/example/allowed.gif", "FooBot"), "agents match case-insensitively");
  assert.ok(!allowed(robots, "/example/other.html", "foobot"));
  assert.ok(!allowed(robots, "/", "foobot"));
  // barbot and bazbot share a group.
  for (const bot of ["barbot", "bazbot"]) {
    assert.ok(!allowed(robots, "/example/page.html", bot));
    assert.ok(allowed(robots, "/example/other.html", bot));
    assert.ok(allowed(robots, "/a.gif", bot), "the * group does not apply to them");
  }
  // quxbot has a group with no rules: everything allowed (not the * group).
  assert.ok(allowed(robots, "/a.gif", "quxbot"));
  assert.ok(allowed(robots, "/example/x", "quxbot"));
  // Anyone else gets the * group.
  assert.ok(!allowed(robots, "/example/x", "otherbot"));
  assert.ok(allowed(robots, "/publications/x", "otherbot"));
  assert.ok(!allowed(robots, "/images/a.gif", "otherbot"), "* matches any run of characters");
  assert.ok(allowed(robots, "/images/a.gif?size=2", "otherbot"), "$ anchors at the end");
  assert.ok(allowed(robots, "/robots.txt", "foobot"), "/robots.txt is always allowed");
});

Deno.test("Robots: longest match wins, Allow wins a tie, the query counts, empty Disallow is nothing", () => {
  const robots = Robots.parse(`
    # comments, any case, spaces around the colon
    user-agent : *
    DISALLOW: /x?
    disallow: /private/
    allow: /private/welcome   # a longer rule
    Disallow: /same
    Allow: /same
    Disallow:
    Crawl-delay: 2.5
    Sitemap: https://site.test/sitemap.xml
  `);
  const verdict = (path: string) => robots.check(new URL(path, "https://site.test"), "mybot");
  assert.ok(!verdict("/x?fnid=1").allowed);
  assert.equal(formatRule(verdict("/x?fnid=1").rule!), "Disallow: /x?");
  assert.ok(verdict("/x").allowed, "no query, no match");
  assert.ok(verdict("/xy?z").allowed);
  assert.ok(!verdict("/private/data").allowed);
  assert.ok(verdict("/private/welcome.html").allowed);
  assert.equal(formatRule(verdict("/private/welcome").rule!), "Allow: /private/welcome");
  assert.ok(verdict("/same").allowed, "equal length: Allow");
  assert.ok(verdict("/news").allowed);
  assert.equal(verdict("/news").rule, undefined);
  assert.equal(robots.groupFor("mybot").crawlDelay, 2.5);
});

Deno.test("Robots: groups, rules outside a group, combining groups, no * group", () => {
  const robots = Robots.parse(`Disallow: /ignored
User-agent: a
Disallow: /one
User-agent: b
Disallow: /two
User-agent: a
Disallow: /three
Crawl-delay: 4
`);
  assert.ok(allowed(robots, "/ignored", "zed"), "a rule before any user-agent line is ignored");
  assert.ok(allowed(robots, "/anything", "zed"), "no matching group and no *: all allowed");
  // Both "a" groups apply to a.
  assert.ok(!allowed(robots, "/one", "a"));
  assert.ok(!allowed(robots, "/three", "a"));
  assert.ok(allowed(robots, "/two", "a"));
  assert.equal(robots.groupFor("a").crawlDelay, 4);
  assert.ok(Robots.allowAll().check(new URL("https://s.test/x"), "a").allowed);
  assert.ok(!Robots.disallowAll().check(new URL("https://s.test/x"), "a").allowed);
});

Deno.test("normalizePath() compares percent-encodings as RFC 9309 §2.2.2 does", () => {
  assert.equal(normalizePath("/foo/bar?baz=quz"), "/foo/bar?baz=quz");
  assert.equal(normalizePath("/foo/bar/ツ"), "/foo/bar/%E3%83%84");
  assert.equal(normalizePath("/foo/bar/%e3%83%84"), "/foo/bar/%E3%83%84");
  assert.equal(normalizePath("/foo/bar/%62%61%7A"), "/foo/bar/baz");
  assert.equal(normalizePath("/a b/%2F/😀"), "/a%20b/%2F/%F0%9F%98%80");
  const robots = Robots.parse("User-agent: *\nDisallow: /foo/bar/%62%61%7A\nDisallow: /café");
  assert.ok(!allowed(robots, "/foo/bar/baz", "x"));
  assert.ok(!allowed(robots, "/caf%C3%A9/menu", "x"));
  assert.ok(!allowed(robots, "/café", "x"));
});

// ---------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------

Deno.test("extractStories() reads the broken fixture page: titles, links resolved, details", () => {
  const site = fixtureSite();
  const page = site.handler(new Request("http://fixture.test/news"));
  return page.text().then((html) => {
    const { stories, next, parseErrors } = extractStories(html, "http://fixture.test/news");
    assert.ok(parseErrors > 0, "the fixture has syntax errors");
    assert.deepEqual(stories, [
      {
        rank: 1,
        id: "101",
        title: "Show HN: A TCP stack in 500 lines",
        url: "https://example.com/tcp",
        site: "example.com",
        points: 142,
        by: "alice",
        comments: 37,
      },
      {
        rank: 2,
        id: "102",
        title: "Ask HN: How do you test network code?",
        url: "http://fixture.test/item?id=102",
        points: 88,
        by: "bob",
        comments: 64,
      },
      {
        rank: 3,
        id: "103",
        title: `Why "it works on loopback" isn't enough`,
        url: "https://blog.example.org/loopback?utm=a&ref=b",
        site: "blog.example.org",
        points: 57,
        by: "carol",
        comments: 0,
      },
      {
        rank: 4,
        id: "104",
        title: "RFC 9309 \u2014 robots.txt, finally a standard",
        url: "http://fixture.test/from?site=rfc-editor.org",
        site: "rfc-editor.org",
        points: 230,
        by: "dave",
        comments: 12,
      },
      {
        rank: 5,
        id: "105",
        title: "The case of the unclosed tag",
        url: "http://fixture.test/docs/html-parsing.html",
        site: "localhost",
        points: 9,
        by: "erin",
        comments: 1,
      },
    ]);
    assert.equal(next?.href, "http://fixture.test/news?p=2");
  });
});

Deno.test("extractStories() on page 2: odd links kept only when they are http(s)", async () => {
  const html = await fixtureSite().handler(new Request("http://fixture.test/news?p=2")).text();
  const { stories, next } = extractStories(html, "http://fixture.test/news?p=2");
  assert.deepEqual(stories.map((story) => [story.rank, story.url]), [
    [6, "https://deno.example/Blog/Permissions"], // scheme and host lowercased
    [7, undefined], // javascript: is not a link to follow
    [8, "http://fixture.test/item?id=203"], // surrounding spaces stripped
    [9, "http://fixture.test/wiki/Caf%C3%A9"],
    [10, "http://cdn.example.net/story"], // protocol-relative: the page's scheme
  ]);
  assert.equal(next?.href, "http://fixture.test/x?fnid=Zk9sZA");
});

Deno.test("extractStories() resolves against <base href>, and survives tag soup", () => {
  const html = `<base href="https://other.example/dir/"><table>
    <tr class="athing" id=1><td><span class=titleline><a href="item?id=1">One</span>
    <tr><td class=subtext><span class=score>5 points</span>
    <tr class=athing id=2><td><span class=titleline><a>No href</a></span>
    <tr class="x athing y" id=3><td><span class="titleline"><a href="/abs">Three <i>with</i>   markup</a>
  </table><a class="morelink" href="?p=2">More</a>`;
  const { stories, next, base } = extractStories(html, "http://page.test/a/b");
  assert.equal(base.href, "https://other.example/dir/");
  assert.deepEqual(stories, [
    { id: "1", title: "One", url: "https://other.example/dir/item?id=1", points: 5 },
    { id: "2", title: "No href" },
    { id: "3", title: "Three with markup", url: "https://other.example/abs" },
  ]);
  assert.equal(next?.href, "https://other.example/dir/?p=2");
});

Deno.test("parse5 repairs the fixture as a browser would: the stray <p> leaves the table", async () => {
  const html = await fixtureSite().handler(new Request("http://fixture.test/news")).text();
  const document = parse(html);
  const body = document.childNodes.find((n) => n.nodeName === "html")!;
  // Foster parenting: the <p> written inside the inner table ends up before it.
  const text = textOf(body);
  assert.ok(text.indexOf("This paragraph is inside a table") < text.indexOf("Show HN"));
  const tbodies: string[] = [];
  const walk = (node: { nodeName: string; childNodes?: unknown[] }) => {
    if (node.nodeName === "tbody") tbodies.push("tbody");
    for (const child of (node.childNodes ?? []) as typeof node[]) walk(child);
  };
  walk(body as never);
  assert.equal(tbodies.length, 2, "an implied <tbody> for each table");
});

Deno.test("resolveLink() follows RFC 3986 §5 and keeps only http(s)", () => {
  const base = new URL("http://h.test/a/b/c?q=1");
  assert.equal(resolveLink("d", base)?.href, "http://h.test/a/b/d");
  assert.equal(resolveLink("../d", base)?.href, "http://h.test/a/d");
  assert.equal(resolveLink("/d", base)?.href, "http://h.test/d");
  assert.equal(resolveLink("?x", base)?.href, "http://h.test/a/b/c?x");
  assert.equal(resolveLink("#top", base)?.href, "http://h.test/a/b/c?q=1#top");
  assert.equal(resolveLink("//o.test/p", base)?.href, "http://o.test/p");
  assert.equal(resolveLink("javascript:void(0)", base), undefined);
  assert.equal(resolveLink("mailto:a@b.test", base), undefined);
  assert.equal(resolveLink("http://[bad", base), undefined);
  assert.equal(resolveLink(undefined, base), undefined);
});

// ---------------------------------------------------------------------------
// Politeness, on a fake clock
// ---------------------------------------------------------------------------

Deno.test("scrape() reads robots.txt first, spaces requests, never asks for the forbidden page", async () => {
  const fixture = startFixture(2);
  try {
    const clock = fakeClock();
    const fetcher = new PoliteFetcher({ delay: 500, clock });
    const pages = await Array.fromAsync(scrape(fetcher, `${fixture.origin}/news`, 5));
    assert.equal(pages.length, 2);
    assert.deepEqual(pages.map((page) => page.stories.length), [5, 5]);
    assert.equal(pages[1].stop, "robots.txt forbids /x?fnid=Zk9sZA (Disallow: /x?)");
    assert.deepEqual(fixture.seen.map((r) => r.path), ["/robots.txt", "/news", "/news?p=2"]);
    assert.ok(fixture.seen.every((r) => r.userAgent === fetcher.userAgent));
    assert.equal(fetcher.product, "wirebook-scraper");
    // The Crawl-delay (2 s) is longer than our delay (0.5 s), so it wins.
    assert.deepEqual(clock.waits, [2000, 2000]);
  } finally {
    await fixture.close();
  }
});

Deno.test("PoliteFetcher: our delay when it is the longer, none for a first request", async () => {
  const fixture = startFixture(1);
  try {
    const clock = fakeClock();
    const events: string[] = [];
    const fetcher = new PoliteFetcher({
      delay: 3000,
      clock,
      onFetch: ({ url, waited, reason }) => events.push(`${url.pathname} ${waited} ${reason}`),
    });
    await fetcher.page(`${fixture.origin}/news`);
    await fetcher.page(`${fixture.origin}/news?p=2`);
    assert.deepEqual(clock.waits, [3000, 3000]);
    assert.deepEqual(events, [
      "/robots.txt 0 first request to this site",
      "/news 3000 --delay 3 s",
      "/news 3000 --delay 3 s",
    ]);
    // Concurrent calls queue behind each other rather than going at once.
    await Promise.all([
      fetcher.page(`${fixture.origin}/news`),
      fetcher.page(`${fixture.origin}/news`),
    ]);
    assert.deepEqual(clock.waits, [3000, 3000, 3000, 6000]);
  } finally {
    await fixture.close();
  }
});

Deno.test("PoliteFetcher: with no delay and no Crawl-delay it never sleeps", async () => {
  const fixture = startFixture(0);
  try {
    const clock = fakeClock();
    const fetcher = new PoliteFetcher({ delay: 0, clock });
    await Array.fromAsync(scrape(fetcher, `${fixture.origin}/news`, 2));
    assert.deepEqual(clock.waits, []);
  } finally {
    await fixture.close();
  }
});

Deno.test("PoliteFetcher: redirects are followed, each hop checked against robots.txt", async () => {
  const fixture = startFixture(0);
  try {
    const fetcher = new PoliteFetcher({ delay: 0, clock: fakeClock() });
    const page = await fetcher.page(`${fixture.origin}/`);
    assert.equal(page.url.pathname, "/news");
    await assert.rejects(fetcher.page(`${fixture.origin}/moved`), (error: unknown) => {
      assert.ok(error instanceof DisallowedError);
      assert.equal(error.url.pathname, "/private/new");
      assert.equal(error.message, "robots.txt forbids /private/new (Disallow: /private/)");
      return true;
    });
    await assert.rejects(fetcher.page(`${fixture.origin}/x?fnid=1`), DisallowedError);
    assert.ok(!fixture.seen.some((r) => r.path.startsWith("/private/") || r.path.startsWith("/x")));
    // A page robots.txt allows, past a Disallow, thanks to a longer Allow.
    const welcome = await fetcher.page(`${fixture.origin}/private/welcome`);
    assert.match(welcome.html, /Private/);
  } finally {
    await fixture.close();
  }
});

/** A second site on loopback that notes every path asked of it (none should be). */
function anotherSite() {
  const otherSeen: string[] = [];
  const other = serve((request) => {
    otherSeen.push(new URL(request.url).pathname);
    return new Response("<p>elsewhere", { headers: { "content-type": "text/html" } });
  });
  return { other, otherSeen };
}

Deno.test("scrape() stays on the start origin: a More link elsewhere (via <base href>) ends it", async () => {
  const { other, otherSeen } = anotherSite();
  const first = serve((request) => {
    if (new URL(request.url).pathname === "/robots.txt") return new Response("", { status: 404 });
    return new Response(
      `<base href="${other.origin}/"><table><tr class=athing id=1><td>` +
        `<span class=titleline><a href=a>one</a></span></table>` +
        `<a class=morelink href="news?p=2">More</a>`,
      { headers: { "content-type": "text/html" } },
    );
  });
  try {
    const fetcher = new PoliteFetcher({ delay: 0, clock: fakeClock() });
    const pages = await Array.fromAsync(scrape(fetcher, `${first.origin}/news`, 3));
    assert.equal(pages.length, 1);
    // Story links may point anywhere: they are reported, never fetched.
    assert.equal(pages[0].stories[0].url, `${other.origin}/a`);
    assert.equal(
      pages[0].stop,
      `the next page is on another origin (${other.origin}/news?p=2); not following`,
    );
    assert.deepEqual(otherSeen, [], "neither robots.txt nor a page of the other site");
  } finally {
    await first.close();
    await other.close();
  }
});

Deno.test("PoliteFetcher: a redirect to another origin is an error, and not followed", async () => {
  const { other, otherSeen } = anotherSite();
  const first = serve((request) => {
    if (new URL(request.url).pathname === "/robots.txt") return new Response("", { status: 404 });
    return new Response(null, { status: 302, headers: { location: `${other.origin}/away` } });
  });
  try {
    const fetcher = new PoliteFetcher({ delay: 0, clock: fakeClock() });
    await assert.rejects(
      fetcher.page(`${first.origin}/news`),
      new RegExp(`^Error: GET /news redirects to another origin \\(${other.origin}/away\\)`),
    );
    assert.deepEqual(otherSeen, []);
  } finally {
    await first.close();
    await other.close();
  }
});

Deno.test("PoliteFetcher: robots.txt 404 allows all, 5xx forbids all, a named bad bot is shut out", async () => {
  let robotsStatus = 404;
  const pages: string[] = [];
  const server = serve((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/robots.txt") return new Response("nope", { status: robotsStatus });
    pages.push(path);
    return new Response("<p>ok", { headers: { "content-type": "text/html" } });
  });
  try {
    const missing = new PoliteFetcher({ delay: 0, clock: fakeClock() });
    assert.equal((await missing.page(`${server.origin}/a`)).status, 200);
    robotsStatus = 503;
    const unreachable = new PoliteFetcher({ delay: 0, clock: fakeClock() });
    await assert.rejects(unreachable.page(`${server.origin}/b`), DisallowedError);
    assert.deepEqual(pages, ["/a"], "nothing asked for while robots.txt is unreachable");
  } finally {
    await server.close();
  }
  const fixture = startFixture(0);
  try {
    const bad = new PoliteFetcher({ userAgent: "BadBot/2.0", delay: 0, clock: fakeClock() });
    await assert.rejects(bad.page(`${fixture.origin}/news`), /forbids \/news \(Disallow: \/\)/);
  } finally {
    await fixture.close();
  }
});

Deno.test("PoliteFetcher: a non-HTML answer, a 404 and an oversized page are errors", async () => {
  const server = serve((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/robots.txt") return new Response("", { status: 404 });
    if (path === "/json") return Response.json({ a: 1 });
    if (path === "/huge") {
      return new Response("<p>".padEnd(3 * 1024 * 1024, "x"), {
        headers: { "content-type": "text/html" },
      });
    }
    return new Response("gone", { status: 404, headers: { "content-type": "text/html" } });
  });
  try {
    const fetcher = new PoliteFetcher({ delay: 0, clock: fakeClock() });
    await assert.rejects(
      fetcher.page(`${server.origin}/json`),
      /expected HTML, got application\/json/,
    );
    await assert.rejects(fetcher.page(`${server.origin}/gone`), /-> 404 Not Found/);
    await assert.rejects(fetcher.page(`${server.origin}/huge`), /over 2097152 bytes/);
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// The script as a user runs it
// ---------------------------------------------------------------------------

Deno.test("CLI: scrape --json, robots, and a start page robots.txt forbids", async () => {
  const server = await startServer("web_scrape", ["--crawl-delay", "0"]);
  const origin = `http://127.0.0.1:${server.port}`;
  try {
    const json = await runScript("web_scrape", [
      "scrape",
      "--url",
      `${origin}/news`,
      "--delay",
      "0",
      "--json",
    ]);
    assert.equal(json.code, 0, json.stderr);
    const stories = JSON.parse(json.stdout);
    assert.equal(stories.length, 10);
    assert.equal(stories[1].url, `${origin}/item?id=102`);

    const text = await runScript("web_scrape", [
      "scrape",
      "--url",
      `${origin}/news`,
      "--delay",
      "0",
      "--pages",
      "1",
    ]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      /^GET \/robots\.txt -> 200 \(first request to this site\)\nGET \/news -> 200/,
    );
    assert.match(
      text.stdout,
      / {4}1\. Show HN: A TCP stack in 500 lines\n {7}https:\/\/example\.com\/tcp {2}\[142 points, by alice, 37 comments\]/,
    );
    assert.doesNotMatch(text.stdout, /p=2 ->/);

    const robots = await runScript("web_scrape", [
      "robots",
      "--url",
      origin,
      "/x?fnid=1",
      "/news",
      "/private/welcome",
    ]);
    assert.equal(robots.code, 0, robots.stderr);
    assert.match(robots.stdout, /\/x\?fnid=1: disallowed \(Disallow: \/x\?\)/);
    assert.match(robots.stdout, /\/news: allowed \(no rule matches\)/);
    assert.match(robots.stdout, /\/private\/welcome: allowed \(Allow: \/private\/welcome\)/);

    const forbidden = await runScript("web_scrape", [
      "scrape",
      "--url",
      `${origin}/x?fnid=1`,
      "--delay",
      "0",
    ]);
    assert.equal(forbidden.code, 1);
    assert.match(
      forbidden.stderr,
      /^error: robots\.txt forbids \/x\?fnid=1 \(Disallow: \/x\?\)\n$/,
    );
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("CLI: a missing --allow-net for another site, and a bad --url, are one line", async () => {
  const remote = await runScript("web_scrape", [
    "scrape",
    "--url",
    "https://news.ycombinator.com/news",
  ]);
  assert.equal(remote.code, 1);
  assert.match(
    remote.stderr,
    /^error: missing permission: .*--allow-net=news\.ycombinator\.com\n$/,
  );
  const bad = await runScript("web_scrape", ["scrape", "--url", "ftp://x.test/"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: --url must be an http\(s\) URL/);
});
