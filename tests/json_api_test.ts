// scripts/json_api.ts: Link parsing, validation that names the field, paging,
// conditional requests and the rate limit, against the fixture it serves.

import assert from "node:assert/strict";
import {
  ApiError,
  findLink,
  fixtureHandler,
  formatRateLimit,
  GitHubClient,
  parseLinkHeader,
  parseRateLimitBody,
  parseUser,
  parseUserList,
  parseUserSummary,
  readRateLimit,
  ValidationError,
} from "../scripts/json_api.ts";
import { runScript, startServer } from "./_helpers.ts";

/** The fixture on a free port, with a log of every request it saw. */
function startFixture(options: Parameters<typeof fixtureHandler>[0] = {}) {
  const handler = fixtureHandler(options);
  const seen: { url: URL; headers: Headers }[] = [];
  const controller = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: () => {} },
    (request, info) => {
      seen.push({ url: new URL(request.url), headers: request.headers });
      return handler(request, info);
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  return {
    base,
    seen,
    paths: () => seen.map(({ url }) => url.pathname + url.search),
    async close() {
      controller.abort();
      await server.finished;
    },
  };
}

/** A one-route server answering with `respond`. */
function startCustom(respond: (request: Request) => Response | Promise<Response>) {
  const controller = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: () => {} },
    respond,
  );
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    async close() {
      controller.abort();
      await server.finished;
    },
  };
}

const simple = {
  login: "octocat",
  id: 1,
  type: "User",
  site_admin: false,
  html_url: "https://github.com/octocat",
  gravatar_id: "",
  some_field_added_next_year: { nested: true },
};

// ---------------------------------------------------------------------------
// Link (RFC 8288)
// ---------------------------------------------------------------------------

Deno.test("parseLinkHeader() reads GitHub's Link header", () => {
  const links = parseLinkHeader(
    '<https://api.github.com/users?per_page=5&since=5>; rel="next", ' +
      '<https://api.github.com/users{?since}>; rel="first"',
  );
  assert.deepEqual(links, [
    {
      target: "https://api.github.com/users?per_page=5&since=5",
      rel: ["next"],
      params: { rel: "next" },
    },
    { target: "https://api.github.com/users{?since}", rel: ["first"], params: { rel: "first" } },
  ]);
});

Deno.test("parseLinkHeader() handles commas inside <> and quotes, several rels, odd spacing", () => {
  const links = parseLinkHeader(
    ' <https://x.test/a,b?c=1,2>;rel=next ; title="one, \\"two\\"",, ' +
      '</p/2>;REL="Prev  LAST";rel="ignored" ;anchor="#x";  hreflang=en,<z>',
  );
  assert.equal(links.length, 3);
  assert.equal(links[0].target, "https://x.test/a,b?c=1,2");
  assert.deepEqual(links[0].rel, ["next"]);
  assert.equal(links[0].params.title, 'one, "two"');
  assert.deepEqual(links[1].rel, ["prev", "last"], "rel types lowercased, second rel ignored");
  assert.equal(links[1].params.anchor, "#x");
  assert.equal(links[1].params.hreflang, "en");
  assert.deepEqual(links[2], { target: "z", rel: [], params: {} });
  assert.deepEqual(parseLinkHeader(""), []);
  for (const bad of ["next", "<a", '<a>; rel="next', "<a> rel=next", "<a>; =x"]) {
    assert.throws(() => parseLinkHeader(bad), SyntaxError, bad);
  }
});

Deno.test("findLink() resolves a relative target against the request URL", () => {
  const headers = new Headers({ link: '</users?since=9>; rel="next", <../x>; rel="first"' });
  assert.equal(
    findLink(headers, "next", "http://h.test/api/users?since=0")?.href,
    "http://h.test/users?since=9",
  );
  assert.equal(
    findLink(headers, "first", "http://h.test/api/v1/users")?.href,
    "http://h.test/api/x",
  );
  assert.equal(findLink(headers, "last", "http://h.test/"), undefined);
  assert.equal(findLink(new Headers(), "next", "http://h.test/"), undefined);
});

// ---------------------------------------------------------------------------
// Rate-limit headers
// ---------------------------------------------------------------------------

Deno.test("readRateLimit() reads X-RateLimit-*; formatRateLimit() says when it resets", () => {
  const headers = new Headers({
    "x-ratelimit-limit": "60",
    "x-ratelimit-remaining": "58",
    "x-ratelimit-reset": "1700000000",
    "x-ratelimit-used": "2",
    "x-ratelimit-resource": "core",
  });
  const rate = readRateLimit(headers)!;
  assert.deepEqual(rate, {
    limit: 60,
    remaining: 58,
    used: 2,
    reset: new Date(1_700_000_000_000),
    resource: "core",
  });
  assert.equal(
    formatRateLimit(rate, 1_700_000_000_000 - 90_000),
    "58/60 left, resets 22:13:20 UTC (in 90 s)",
  );
  assert.equal(readRateLimit(new Headers({ "x-ratelimit-limit": "60" })), undefined);
  assert.equal(
    readRateLimit(
      new Headers({
        "x-ratelimit-limit": "60",
        "x-ratelimit-remaining": "lots",
        "x-ratelimit-reset": "1",
      }),
    ),
    undefined,
  );
});

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

Deno.test("parseUserSummary() keeps the fields it uses and ignores the rest", () => {
  assert.deepEqual(parseUserSummary(simple), {
    login: "octocat",
    id: 1,
    type: "User",
    siteAdmin: false,
    htmlUrl: "https://github.com/octocat",
  });
});

Deno.test("the validators name the path of the bad field and what was there", () => {
  const cases: [() => unknown, string, RegExp][] = [
    [() => parseUserSummary(null), "user", /expected an object, got null/],
    [
      () => parseUserSummary({ ...simple, id: "1" }),
      "user.id",
      /whole number >= 0, got "1" \(a string\)/,
    ],
    [() => parseUserSummary({ ...simple, id: -1 }), "user.id", /got -1/],
    [() => parseUserSummary({ ...simple, login: undefined }), "user.login", /missing/],
    [() => parseUserSummary({ ...simple, login: "a/b" }), "user.login", /GitHub login/],
    [() => parseUserSummary({ ...simple, site_admin: "no" }), "user.site_admin", /true or false/],
    [() => parseUserSummary({ ...simple, html_url: "/octocat" }), "user.html_url", /absolute URL/],
    [() => parseUserList({ users: [] }), "users", /expected an array, got an object/],
    [
      () => parseUserList([simple, simple, simple, { ...simple, type: 7 }]),
      "users[3].type",
      /a string, got 7/,
    ],
    [() => parseUser({ ...simple }), "user.name", /a string or null, got nothing/],
    [
      () =>
        parseUser({
          ...simple,
          name: null,
          company: null,
          location: null,
          bio: null,
          public_repos: 1,
          followers: 2,
          following: 3,
          created_at: "yesterday",
        }),
      "user.created_at",
      /ISO 8601/,
    ],
    [() => parseRateLimitBody({ resources: {} }), "body.resources.core", /an object/],
  ];
  for (const [parse, path, message] of cases) {
    assert.throws(parse, (error: unknown) => {
      assert.ok(error instanceof ValidationError, String(error));
      assert.equal(error.path, path);
      assert.match(error.message, message);
      assert.ok(error.message.startsWith(`${path}: expected `));
      return true;
    });
  }
});

// ---------------------------------------------------------------------------
// The client against the fixture
// ---------------------------------------------------------------------------

Deno.test("users() follows Link rel=next page by page and stops at the last page", async () => {
  const fixture = startFixture();
  try {
    const client = new GitHubClient(fixture.base);
    const pages = await Array.fromAsync(client.users({ perPage: 5, maxPages: 10 }));
    assert.deepEqual(pages.map((page) => page.data.length), [5, 5, 2]);
    assert.deepEqual(pages.flatMap((page) => page.data.map((user) => user.id)), [
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      9,
      10,
      11,
      12,
    ]);
    // The second and third URLs are the server's, from its Link header.
    assert.deepEqual(fixture.paths(), [
      "/users?since=0&per_page=5",
      "/users?per_page=5&since=5",
      "/users?per_page=5&since=10",
    ]);
    assert.equal(pages[2].next, undefined);
    assert.equal(pages[0].rateLimit?.remaining, 59);
    assert.equal(pages[2].rateLimit?.remaining, 57);
    // Every request carried the client's User-Agent and GitHub's media type.
    for (const { headers } of fixture.seen) {
      assert.match(headers.get("user-agent")!, /^wirebook-json-api\//);
      assert.equal(headers.get("accept"), "application/vnd.github+json");
    }
  } finally {
    await fixture.close();
  }
});

Deno.test("users() stops after maxPages, and at an empty page", async () => {
  const fixture = startFixture();
  try {
    const client = new GitHubClient(fixture.base);
    assert.equal((await Array.fromAsync(client.users({ perPage: 2, maxPages: 2 }))).length, 2);
    const past = await Array.fromAsync(client.users({ since: 100, maxPages: 5 }));
    assert.deepEqual(past.map((page) => page.data.length), [0]);
  } finally {
    await fixture.close();
  }
});

Deno.test("a repeated GET sends If-None-Match, gets 304, and costs no rate limit", async () => {
  const fixture = startFixture();
  try {
    const client = new GitHubClient(fixture.base);
    const first = await client.user("octocat");
    assert.equal(first.status, 200);
    assert.equal(first.fromCache, false);
    assert.match(first.etag!, /^W\/"[0-9a-f]{32}"$/);
    assert.equal(first.data.name, "The Octocat");
    assert.deepEqual(first.data.createdAt, new Date("2011-01-25T18:44:36Z"));
    const second = await client.user("octocat");
    assert.equal(second.status, 304);
    assert.equal(second.fromCache, true);
    assert.deepEqual(second.data, first.data);
    assert.equal(fixture.seen[1].headers.get("if-none-match"), first.etag);
    assert.equal(second.rateLimit?.remaining, first.rateLimit?.remaining, "a 304 is free");

    // A fresh client that passes the ETag it kept elsewhere.
    const other = new GitHubClient(fixture.base);
    const conditional = await other.user("octocat", { etag: first.etag });
    assert.equal(conditional.status, 304);
    assert.equal(conditional.data, undefined);
    const stale = await other.user("octocat", { etag: 'W/"0000"' });
    assert.equal(stale.status, 200);
  } finally {
    await fixture.close();
  }
});

Deno.test("the rate limit: the client stops sending at 0 left; the server says 403", async () => {
  // The server's clock, which the test moves; the client keeps the real one.
  let now = Date.now();
  const fixture = startFixture({ rateLimit: 3, now: () => now });
  try {
    const client = new GitHubClient(fixture.base);
    const pages = await Array.fromAsync(client.users({ perPage: 4, maxPages: 3 }));
    assert.equal(pages.at(-1)?.rateLimit?.remaining, 0);
    const sent = fixture.seen.length;
    await assert.rejects(client.user("octocat"), (error: unknown) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, 429);
      assert.match(
        error.message,
        /^not sent: the rate limit is used up \(0\/3 left, resets \d\d:\d\d:\d\d UTC \(in \d+ s\)\)$/,
      );
      return true;
    });
    assert.equal(fixture.seen.length, sent, "nothing was sent");
    // /rate_limit is free, and says the same.
    const rate = await client.rate();
    assert.equal(rate.remaining, 0);
    assert.deepEqual(rate.reset, new Date((Math.floor(now / 1000) + 3600) * 1000));

    // A client that ignores the headers hears 403 from the server.
    const careless = new GitHubClient(fixture.base);
    await assert.rejects(careless.user("hubot"), (error: unknown) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, 403);
      assert.match(error.message, /rate limit exceeded \(0\/3 left/);
      assert.equal(error.rateLimit?.remaining, 0);
      return true;
    });

    // An hour later (by the server's clock) the window starts over.
    now += 3600_000;
    const again = await new GitHubClient(fixture.base).user("hubot");
    assert.equal(again.rateLimit?.remaining, 2);
  } finally {
    await fixture.close();
  }
});

Deno.test("a response of the wrong shape is refused, naming the field; a 404 is an ApiError", async () => {
  const fixture = startFixture();
  try {
    const client = new GitHubClient(fixture.base);
    await assert.rejects(client.user("mallory"), (error: unknown) => {
      assert.ok(error instanceof ValidationError);
      assert.equal(error.path, "user.id");
      assert.equal(error.got, "13");
      return true;
    });
    await assert.rejects(client.user("nobody"), (error: unknown) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, 404);
      assert.equal(error.message, "404 Not Found");
      return true;
    });
  } finally {
    await fixture.close();
  }
});

Deno.test("the fixture refuses a request without a User-Agent, as GitHub does", () => {
  const response = fixtureHandler()(new Request("http://fixture.test/users"));
  assert.equal(response.status, 403);
  assert.equal(response.headers.get("x-ratelimit-remaining"), "60");
});

Deno.test("the fixture answers a malformed %-escape with 400 in GitHub's shape, at no cost", async () => {
  const handler = fixtureHandler();
  const get = (path: string) =>
    handler(new Request(`http://fixture.test${path}`, { headers: { "user-agent": "test" } }));
  for (const path of ["/users/%E0", "/users/%ZZ", "/users/100%", "/%C3%28"]) {
    const response = get(path);
    assert.equal(response.status, 400, path);
    assert.match(response.headers.get("content-type")!, /^application\/json/);
    const body = await response.json();
    assert.deepEqual(Object.keys(body), ["message", "documentation_url", "status"]);
    assert.equal(body.status, "400");
    assert.match(body.message, /malformed percent-encoding/);
    assert.equal(response.headers.get("x-ratelimit-remaining"), "60", "not counted");
  }
  // A well-formed escape still finds its user.
  assert.equal(get("/users/%6Fctocat").status, 200);
});

Deno.test("the client refuses non-JSON, oversized answers, and a next link to another origin", async () => {
  const server = startCustom((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/users/html") {
      return new Response("<html>oops</html>", { headers: { "content-type": "text/html" } });
    }
    if (path === "/users/huge") {
      const body = `{"login":"big","padding":"${"x".repeat(2 * 1024 * 1024)}"}`;
      return new Response(body, { headers: { "content-type": "application/json" } });
    }
    return new Response("[]", {
      headers: {
        "content-type": "application/json",
        link: '<https://elsewhere.test/users?since=1>; rel="next"',
      },
    });
  });
  try {
    const client = new GitHubClient(server.base);
    await assert.rejects(client.user("html"), /expected JSON, got text\/html: <html>oops/);
    await assert.rejects(client.user("huge"), /over 1048576 bytes/);
    await assert.rejects(
      Array.fromAsync(client.users()),
      /rel="next" points to another origin \(https:\/\/elsewhere\.test\); not following/,
    );
    await assert.rejects(client.get("https://elsewhere.test/x", (v) => v), /is not under/);
  } finally {
    await server.close();
  }
});

Deno.test("the client gives up on a silent server after its timeout", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const server = startCustom(async () => {
    await released;
    return new Response("{}", { headers: { "content-type": "application/json" } });
  });
  try {
    const client = new GitHubClient(server.base, { timeout: 100 });
    await assert.rejects(client.user("slow"), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, /cannot reach http:\/\/127\.0\.0\.1/);
      assert.equal((error.cause as Error).name, "TimeoutError");
      return true;
    });
  } finally {
    release();
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// The script as a user runs it
// ---------------------------------------------------------------------------

Deno.test("CLI: users, user (and --etag for a 304), rate, against `serve`", async () => {
  const server = await startServer("json_api");
  const url = ["--url", `http://127.0.0.1:${server.port}`];
  try {
    const users = await runScript("json_api", [
      "users",
      "--per-page",
      "4",
      "--max-pages",
      "2",
      ...url,
    ]);
    assert.equal(users.code, 0, users.stderr);
    assert.match(users.stdout, /^GET \/users\?since=0&per_page=4 -> 200, 4 user\(s\)/);
    assert.match(users.stdout, /GET \/users\?per_page=4&since=4 -> 200, 4 user\(s\)/);
    assert.match(users.stdout, /Link rel="next": \/users\?per_page=4&since=8/);
    assert.match(users.stdout, /rate limit: 58\/60 left/);

    const user = await runScript("json_api", ["user", "monalisa", ...url]);
    assert.equal(user.code, 0, user.stderr);
    assert.match(user.stdout, /monalisa \(id 3, User\): Mona Lisa Octocat/);
    const etag = user.stdout.match(/ETag: (W\/"[0-9a-f]+")/)![1];
    const again = await runScript("json_api", ["user", "monalisa", "--etag", etag, ...url]);
    assert.match(again.stdout, /-> 304 Not Modified\n {2}\(your copy with that ETag is current\)/);
    assert.match(again.stdout, /rate limit: 57\/60 left/);

    const rate = await runScript("json_api", ["rate", ...url]);
    assert.match(rate.stdout, /^rate limit: 57\/60 left, resets \d\d:\d\d:\d\d UTC/);

    const missing = await runScript("json_api", ["user", "nobody", ...url]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "error: 404 Not Found\n");
    const broken = await runScript("json_api", ["user", "mallory", ...url]);
    assert.equal(broken.code, 1);
    assert.equal(
      broken.stderr,
      'error: user.id: expected a whole number >= 0, got "13" (a string)\n',
    );
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("CLI: a refused connection, a missing --allow-net and a bad flag are one line", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const refused = await runScript("json_api", ["rate", "--url", `http://127.0.0.1:${port}`]);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /^error: cannot reach http:\/\/127\.0\.0\.1:\d+: connection refused/,
  );
  assert.equal(refused.stderr.trim().split("\n").length, 1);

  const github = await runScript("json_api", [
    "user",
    "octocat",
    "--url",
    "https://api.github.com",
  ]);
  assert.equal(github.code, 1);
  assert.match(github.stderr, /^error: missing permission: .*--allow-net=api\.github\.com\n$/);

  const usage = await runScript("json_api", ["user"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /^error: user takes 1 argument/);
});
