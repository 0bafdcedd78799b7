/**
 * Requests a careless or hostile client sends: encoded paths around the sign-in check, script code
 * spelled so a text filter misses it, ids past 64 bits, NUL characters, paths out of the assets
 * folder, and an event stream kept after signing out. Each gets a clear 4xx (or nothing to read),
 * never a 500 and never another user's data.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createHttpServer } from "../../src/http/server.ts";
import { tempDir, until } from "../helpers.ts";
import { processXml } from "../platform/process-helpers.ts";
import { STORES, startPlatform } from "../platform/helpers.ts";

type App = Awaited<ReturnType<typeof createHttpServer>>;

async function signIn(app: App, login: string, password: string) {
  const response = await app.inject({ method: "POST", url: "/api/auth/login", payload: { login, password } });
  assert.equal(response.statusCode, 200, response.body);
  const { token, csrfToken } = response.json() as { token: string; csrfToken: string };
  return { bearer: { authorization: `Bearer ${token}` }, cookie: { cookie: `underway_session=${token}` }, csrfToken };
}

describe("hostile and careless requests", () => {
  it("gives users who may not read the configuration no script or condition code, however it is spelled", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none" });
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
    await platform.users.create({ login: "alice", password: "alice-pass" });
    const admin = await signIn(app, "Supervisor", "supervisor-pass");
    const alice = await signIn(app, "alice", "alice-pass");
    const xml = processXml("UsrSecretProc", "Secret", [
      { kind: "script", id: "First", body: "/* SECRET-IN-ELEMENT */ return true;" },
      {
        kind: "gateway",
        id: "Choice",
        branches: [
          { condition: "/* SECRET-IN-CONDITION */ true", steps: [{ kind: "script", id: "Second", body: "/* SECRET-IN-TEXT </bpmn:script> */ return true;" }, { kind: "end", id: "End1" }] },
          { steps: [{ kind: "end", id: "End2" }] },
        ],
      },
    ])
      // The first script as an attribute rather than an element: moddle reads both as the body.
      .replace(/(<bpmn:scriptTask id="First"[^>]*)><bpmn:script>[^<]*<\/bpmn:script>/, '$1 script="/* SECRET-IN-ATTRIBUTE */ return true;">');
    assert.match(xml, /SECRET-IN-ATTRIBUTE/);
    const ask = (method: "GET" | "POST" | "PUT", url: string, payload?: Record<string, unknown>) =>
      app.inject({ method, url, headers: admin.bearer, ...(payload === undefined ? {} : { payload }) });
    assert.equal((await ask("POST", "/api/packages", { name: "UsrSecret" })).statusCode, 201);
    const saved = await ask("PUT", "/api/packages/UsrSecret/schemas/UsrSecretProc", { kind: "process", body: xml });
    assert.equal(saved.statusCode, 200, saved.body);
    const published = await ask("POST", "/api/packages/UsrSecret/publish");
    assert.equal(published.statusCode, 200, published.body);

    const forAdmin = (await ask("GET", "/api/processes/UsrSecretProc")).json() as { xml: string };
    for (const secret of ["SECRET-IN-ATTRIBUTE", "SECRET-IN-CONDITION", "SECRET-IN-TEXT"]) assert.match(forAdmin.xml, new RegExp(secret));
    const forAlice = await app.inject({ method: "GET", url: "/api/processes/UsrSecretProc", headers: alice.bearer });
    assert.equal(forAlice.statusCode, 200);
    assert.doesNotMatch(forAlice.body, /SECRET/);
    // The diagram itself is still there.
    assert.match((forAlice.json() as { xml: string }).xml, /<bpmn:scriptTask id="Second"/);
    await app.close();
  });

  it("checks the session of a request whatever the encoding of its path", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none" });
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
    const admin = await signIn(app, "Supervisor", "supervisor-pass");
    assert.equal((await app.inject({ method: "GET", url: "/%61pi/tasks" })).statusCode, 401);
    assert.equal((await app.inject({ method: "GET", url: "/%61pi/auth/me" })).statusCode, 401);
    // A cookie-authenticated write without the CSRF header is refused, encoded or not.
    const logout = await app.inject({ method: "POST", url: "/%61pi/auth/logout", headers: admin.cookie });
    assert.equal(logout.statusCode, 403);
    assert.equal((await app.inject({ method: "GET", url: "/api/auth/me", headers: admin.bearer })).statusCode, 200, "still signed in");
    assert.equal((await app.inject({ method: "GET", url: "/%61pi/nothing-here" })).statusCode, 401);
    await app.close();
  });

  for (const store of STORES) {
    it(`answers ids past 64 bits, huge offsets and NUL characters with a 4xx (${store})`, async () => {
      const platform = await startPlatform(store, { isolation: "none" });
      const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
      const admin = await signIn(app, "Supervisor", "supervisor-pass");
      const get = (url: string) => app.inject({ method: "GET", url, headers: admin.bearer });
      const post = (url: string) => app.inject({ method: "POST", url, headers: admin.bearer });

      assert.equal((await get("/api/tasks/9223372036854775807")).statusCode, 404, "the largest id is an id");
      assert.equal((await get("/api/tasks/9999999999999999999")).statusCode, 404);
      assert.equal((await get("/api/tasks/99999999999999999999")).statusCode, 404, "20 digits");
      assert.equal((await post("/api/tasks/99999999999999999999/retry")).statusCode, 404, "20 digits");
      assert.equal((await post("/api/tasks/9223372036854775808/retry")).statusCode, 404);
      assert.equal((await post("/api/tasks/9223372036854775808/cancel")).statusCode, 404);
      assert.equal((await app.inject({ method: "DELETE", url: "/api/tasks/9223372036854775808", headers: admin.bearer })).statusCode, 404);
      const before = await get("/api/tasks?before=9999999999999999999");
      assert.equal(before.statusCode, 400);
      assert.match(before.body, /before/);
      assert.equal((await get("/api/tasks?before=9223372036854775807")).statusCode, 200);

      for (const offset of ["100000000000000000000", "1e300", "1000001"]) {
        assert.equal((await get(`/api/process-log?offset=${offset}`)).statusCode, 400, offset);
      }

      const nulLogin = await app.inject({ method: "POST", url: "/api/auth/login", payload: { login: "\u0000", password: "x" } });
      assert.equal(nulLogin.statusCode, 400);
      assert.match(nulLogin.body, /body\/login must not contain a NUL character/);
      for (const url of ["/api/tasks?name=%00", "/api/tasks?queue=a%00b", "/api/tasks?user=%00", "/api/activities?title=%00", "/api/process-log/%00", "/api/packages/%00/schemas"]) {
        const response = await get(url);
        assert.equal(response.statusCode, 400, `${url}: ${response.body}`);
        assert.match(response.body, /NUL character/);
      }
      assert.equal((await post("/api/process-log/%00/cancel")).statusCode, 400);
      const nulKey = await app.inject({ method: "POST", url: "/api/processes/Nope/run", headers: admin.bearer, payload: { parameters: { "a\u0000b": 1 } } });
      assert.equal(nulKey.statusCode, 400);
      assert.match(nulKey.body, /body\/parameters\/a\\\\u0000b must not contain/);
      // A lone surrogate, which PostgreSQL would store as U+FFFD, is refused alike.
      for (const [url, method, payload] of [
        ["/api/auth/login", "POST", '{"login":"x\\ud800","password":"x"}'],
        ["/api/packages/UsrX/schemas/UsrY", "PUT", '{"kind":"source","body":"const a = \\"\\udc00\\";"}'],
      ] as const) {
        const response = await app.inject({ method, url, headers: { ...admin.bearer, "content-type": "application/json" }, payload });
        assert.equal(response.statusCode, 400, `${url}: ${response.body}`);
        assert.match(response.body, /must not contain a lone surrogate/);
      }
      assert.equal((await get("/api/tasks?name=%ED%A0%80")).statusCode, 200, "a query string's bad UTF-8 reads as U+FFFD, not a surrogate");
      await app.close();
    });
  }

  it("refuses fields and parameters no route names, numbers not written in digits, and bodies of the wrong types", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none" });
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
    const admin = await signIn(app, "Supervisor", "supervisor-pass");
    const get = (url: string) => app.inject({ method: "GET", url, headers: admin.bearer });
    const send = (method: "POST" | "PUT", url: string, payload: Record<string, unknown>) => app.inject({ method, url, headers: admin.bearer, payload });

    // A misspelt filter is not an unfiltered list, a misspelt field not a default.
    const status = await get("/api/tasks?status=dead");
    assert.equal(status.statusCode, 400);
    assert.match((status.json() as { error: string }).error, /querystring must not have the property "status": there is no such field/);
    const misspelt = await send("POST", "/api/packages", { name: "UsrZ", dependecies: ["Nope"] });
    assert.equal(misspelt.statusCode, 400);
    assert.match((misspelt.json() as { error: string }).error, /body must not have the property "dependecies": there is no such field/);
    assert.equal((await get("/api/packages/UsrZ")).statusCode, 404, "nothing was created");
    const parameter = await send("POST", "/api/processes/UsrAnything/run", { parameter: { Anything: 1 } });
    assert.equal(parameter.statusCode, 400);

    for (const limit of ["0x10", "1e1", "%201", "1.0", "+1"]) {
      const response = await get(`/api/tasks?limit=${limit}`);
      assert.equal(response.statusCode, 400, `limit=${limit}: ${response.body}`);
      assert.match(response.body, /querystring\/limit must be an integer written in decimal digits/);
    }
    assert.equal((await get("/api/activities?offset=1e3")).statusCode, 400);
    // The router's own refusals say what was wrong as { error }, without echoing the path.
    const long = await get(`/api/processes/${"x".repeat(5_000)}`);
    assert.equal(long.statusCode, 414);
    assert.deepEqual(long.json(), { error: "a part of the path is longer than 100 characters" });
    // A route that does not exist, by any method: { error }, the path shortened.
    const unknown = await send("POST", `/api/nothing-here/${"y".repeat(300)}`, {});
    assert.equal(unknown.statusCode, 404);
    assert.deepEqual(Object.keys(unknown.json() as object), ["error"]);
    assert.match((unknown.json() as { error: string }).error, /^no route POST \/api\/nothing-here\/y+…$/);
    const badUrl = await get("/api/process-log/%ff");
    assert.equal(badUrl.statusCode, 400);
    assert.deepEqual(badUrl.json(), { error: "the path is not valid: it has a malformed percent-encoding" });
    assert.equal((await get("/api/tasks?limit=16")).statusCode, 200);

    assert.equal((await send("POST", "/api/packages", { name: "UsrY" })).statusCode, 201);
    const nullBody = await send("PUT", "/api/packages/UsrY/schemas/UsrSrc", { kind: "source", body: null });
    assert.equal(nullBody.statusCode, 400);
    assert.match(nullBody.body, /body\/body must be string/);
    await app.close();
  });

  it("answers a refused package or process request with its reason, and a failure of the server with no detail", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none" });
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
    const admin = await signIn(app, "Supervisor", "supervisor-pass");
    const ask = (method: "GET" | "POST" | "PUT", url: string, payload?: Record<string, unknown>) =>
      app.inject({ method, url, headers: admin.bearer, ...(payload === undefined ? {} : { payload }) });
    const expect = async (response: ReturnType<typeof ask>, status: number, pattern: RegExp) => {
      const answer = await response;
      assert.equal(answer.statusCode, status, answer.body);
      assert.match((answer.json() as { error: string }).error, pattern);
    };

    // Refused requests: the reason, as the packages give it.
    await expect(ask("POST", "/api/packages", { name: "1bad" }), 400, /package name "1bad" must be letters/);
    await expect(ask("GET", "/api/packages/UsrNone/schemas"), 404, /no package named "UsrNone"/);
    await expect(ask("POST", "/api/packages/UsrNone/publish"), 404, /no package named "UsrNone"/);
    await expect(ask("PUT", "/api/packages/UsrNone/schemas/UsrS", { kind: "source", body: "export {};" }), 404, /no package named "UsrNone"/);
    assert.equal((await ask("POST", "/api/packages", { name: "UsrShop" })).statusCode, 201);
    await expect(ask("PUT", "/api/packages/UsrShop/schemas/1x", { kind: "source", body: "export {};" }), 400, /schema name "1x" must be letters/);
    const xml = processXml("UsrOrder", "Order", [{ kind: "script", id: "Step", body: "return true;" }, { kind: "end", id: "End" }], [{ name: "Count", type: "integer" }]);
    assert.equal((await ask("PUT", "/api/packages/UsrShop/schemas/UsrOrder", { kind: "process", body: xml })).statusCode, 200);
    const published = await ask("POST", "/api/packages/UsrShop/publish");
    assert.equal(published.statusCode, 200, published.body);
    await expect(ask("POST", "/api/processes/UsrOrder/run", { parameters: { Count: "many" } }), 400, /process parameter Count must be integer/);
    await expect(ask("POST", "/api/processes/UsrOrder/run", { parameters: { Nope: 1 } }), 400, /has no parameter "Nope"/);

    // Failures of the server: 500, no detail (the store's message may say where and what it keeps).
    await platform.runtime.transaction((tx) =>
      tx.execute("CREATE TRIGGER fail_start BEFORE INSERT ON SysProcessLog BEGIN SELECT RAISE(ABORT, 'parameter store at /srv/secret is read-only'); END"),
    );
    await expect(ask("POST", "/api/processes/UsrOrder/run", { parameters: { Count: 2 } }), 500, /^internal error$/);
    await platform.runtime.transaction((tx) =>
      tx.execute("CREATE TRIGGER fail_build BEFORE INSERT ON SysPackageBuild BEGIN SELECT RAISE(ABORT, 'disk full at /srv/secret'); END"),
    );
    await expect(ask("POST", "/api/packages/UsrShop/publish"), 500, /^internal error$/);
    await app.close();
  });

  it("serves only regular files from the assets folder", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none" });
    const webRoot = tempDir();
    writeFileSync(join(webRoot, "index.html"), "<!doctype html><title>underway</title>");
    writeFileSync(join(webRoot, ".env"), "SECRET=1");
    mkdirSync(join(webRoot, "assets"));
    writeFileSync(join(webRoot, "assets", "app-1234.js"), "console.log(1)");
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot });
    assert.equal((await app.inject({ method: "GET", url: "/assets/app-1234.js" })).statusCode, 200);
    assert.equal((await app.inject({ method: "GET", url: "/assets/" })).statusCode, 404);
    assert.equal((await app.inject({ method: "GET", url: "/assets" })).statusCode, 200, "a page path: the application");
    for (const url of ["/assets/..%2f.env", "/assets/..%2f..%2fetc%2fpasswd"]) {
      const response = await app.inject({ method: "GET", url });
      assert.equal(response.statusCode, 404, url);
      assert.doesNotMatch(response.body, /SECRET|root:/);
    }
    // Dot segments are resolved before routing: a page path, answered with the application.
    assert.doesNotMatch((await app.inject({ method: "GET", url: "/assets/%2e%2e/.env" })).body, /SECRET/);
    assert.equal((await app.inject({ method: "GET", url: "/%E0%A4%A" })).statusCode, 400);
    await app.close();
  });

  it("ends an event stream once its session is signed out", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none" });
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false, sessionCheckMs: 50 });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const address = app.server.address();
    const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    const admin = await signIn(app, "Supervisor", "supervisor-pass");
    const other = await signIn(app, "Supervisor", "supervisor-pass");
    const open = async (headers: Record<string, string>) => {
      const response = await fetch(`${url}/api/events`, { headers });
      assert.equal(response.status, 200);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      const state = { received: "", ended: false };
      void (async () => {
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
          if (done || !value) break;
          state.received += Buffer.from(value).toString();
        }
        state.ended = true;
      })();
      await until(() => state.received.includes(": connected"), "the stream to open");
      return state;
    };
    const stream = await open(admin.bearer);
    const kept = await open(other.bearer);
    assert.equal((await app.inject({ method: "POST", url: "/api/auth/logout", headers: admin.bearer })).statusCode, 204);
    await until(() => stream.ended, "the signed-out session's stream to end", 5_000);
    assert.equal(kept.ended, false, "another session's stream stays open");
    await app.close();
  });

  it("leaves nothing of an event stream whose client left during its session lookup, and caps a session's streams", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none" });
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false, sessionCheckMs: 10 });
    try {
      await app.listen({ port: 0, host: "127.0.0.1" });
      const address = app.server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      const admin = await signIn(app, "Supervisor", "supervisor-pass");
      // Session lookups counted, and held at will: on PostgreSQL a lookup is a round trip, in
      // which a client may give up.
      const sessions = platform.sessions;
      const authenticate = sessions.authenticate.bind(sessions);
      let lookups = 0;
      let hold: Promise<void> | null = null;
      sessions.authenticate = async (token) => {
        lookups++;
        if (hold) await hold;
        return authenticate(token);
      };
      let release = (): void => undefined;
      hold = new Promise<void>((resolve) => (release = resolve));
      const socket = connect(port, "127.0.0.1");
      socket.write(`GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n${"Authorization: " + admin.bearer.authorization}\r\n\r\n`);
      await until(() => lookups === 1, "the session lookup");
      socket.destroy();
      const connections = (): Promise<number> => new Promise((resolve) => app.server.getConnections((_, n) => resolve(n)));
      await until(async () => (await connections()) === 0, "the server to see the client go");
      hold = null;
      release();
      // A stream left behind would look its session up every 10 ms, for good.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(lookups, 1, "a stream whose client had gone kept checking its session");

      // Eight streams per session; the ninth is refused with a reason, another session's is not.
      const streams: AbortController[] = [];
      const openStream = async (headers: Record<string, string>): Promise<Response> => {
        const abort = new AbortController();
        streams.push(abort);
        return fetch(`http://127.0.0.1:${port}/api/events`, { headers, signal: abort.signal });
      };
      for (let i = 0; i < 8; i++) assert.equal((await openStream(admin.bearer)).status, 200);
      const refused = await openStream(admin.bearer);
      assert.equal(refused.status, 429);
      assert.match(((await refused.json()) as { error: string }).error, /already has 8 live streams open, the most it may/);
      const other = await signIn(app, "Supervisor", "supervisor-pass");
      assert.equal((await openStream(other.bearer)).status, 200);
      // A closed stream frees its place.
      streams[0]?.abort();
      await until(async () => (await openStream(admin.bearer)).status === 200, "a freed place");
      for (const s of streams) s.abort();
    } finally {
      await app.close();
    }
  });

  it("answers HEAD of the event stream at once rather than holding a subscription unanswered", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none" });
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
    try {
      await app.listen({ port: 0, host: "127.0.0.1" });
      const address = app.server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      const admin = await signIn(app, "Supervisor", "supervisor-pass");
      const head = await fetch(`http://127.0.0.1:${port}/api/events`, { method: "HEAD", headers: admin.bearer, signal: AbortSignal.timeout(3_000) });
      assert.equal(head.status, 404);
    } finally {
      await app.close();
    }
  });
});
