/**
 * Guessing passwords: failed sign-ins are counted per login and per client address in the
 * database, so every node shares the counts; past the limit the sign-in is refused with 429 and
 * Retry-After before its password is checked, until the window ends.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createHttpServer, parseTrustProxy } from "../../src/http/server.ts";
import { Platform } from "../../src/platform/platform.ts";
import { SignInThrottledError } from "../../src/platform/users/sign-in-limits.ts";
import { tempDb, tempDir } from "../helpers.ts";
import { STORES, startPlatform } from "../platform/helpers.ts";

type App = Awaited<ReturnType<typeof createHttpServer>>;

const login = (app: App, name: string, password: string, address = "203.0.113.7") =>
  app.inject({ method: "POST", url: "/api/auth/login", payload: { login: name, password }, remoteAddress: address });

for (const store of STORES) {
  describe(`sign-in limits (${store})`, () => {
    it("refuses a login with 429 and Retry-After once its failures reach the limit, even with the right password, until the window ends", async () => {
      const platform = await startPlatform(store, { isolation: "none", signInLimits: { perLogin: 3, perAddress: 100, windowMs: 60_000 } });
      const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
      for (let i = 0; i < 3; i++) assert.equal((await login(app, "Supervisor", `wrong-${i}`)).statusCode, 401);

      const refused = await login(app, "Supervisor", "supervisor-pass");
      assert.equal(refused.statusCode, 429, refused.body);
      const retryAfter = Number(refused.headers["retry-after"]);
      assert.ok(retryAfter > 50 && retryAfter <= 60, `Retry-After ${String(refused.headers["retry-after"])}`);
      assert.match((refused.json() as { error: string }).error, /too many failed sign-ins: try again in \d+ s/);
      // From another address too: the count is the login's.
      assert.equal((await login(app, "Supervisor", "supervisor-pass", "198.51.100.1")).statusCode, 429);
      // A login that does not exist is counted the same way, so a 429 tells nothing about which logins exist.
      for (let i = 0; i < 3; i++) assert.equal((await login(app, "nobody", "x")).statusCode, 401);
      assert.equal((await login(app, "nobody", "x")).statusCode, 429);
      // Other logins are not affected.
      await platform.users.create({ login: "alice", password: "alice-pass" });
      assert.equal((await login(app, "alice", "alice-pass")).statusCode, 200);

      platform.runtime.driver.clockShift(61_000);
      assert.equal((await login(app, "Supervisor", "supervisor-pass")).statusCode, 200);
      await app.close();
    });

    it("counts failures per client address across logins, and a success does not clear its address's failures", async () => {
      const platform = await startPlatform(store, { isolation: "none", signInLimits: { perLogin: 100, perAddress: 4, windowMs: 60_000 } });
      const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
      await platform.users.create({ login: "alice", password: "alice-pass" });
      for (const name of ["a", "b", "c"]) assert.equal((await login(app, name, "x")).statusCode, 401);
      // Signing in to one's own account in between takes back only that attempt.
      assert.equal((await login(app, "alice", "alice-pass")).statusCode, 200);
      assert.equal((await login(app, "d", "x")).statusCode, 401);
      assert.equal((await login(app, "e", "x")).statusCode, 429);
      assert.equal((await login(app, "alice", "alice-pass")).statusCode, 429);
      // Another address is served.
      assert.equal((await login(app, "alice", "alice-pass", "198.51.100.1")).statusCode, 200);
      await app.close();
    });

    it("refuses an address over its limit without counting against the logins it names", async () => {
      const platform = await startPlatform(store, { isolation: "none", signInLimits: { perLogin: 3, perAddress: 2, windowMs: 60_000 } });
      const attacker = "203.0.113.5";
      const accounts = ["alice", "bob", "carol"];
      for (const name of accounts) await platform.users.create({ login: name, password: `${name}-pass` });
      // The attacker spends the address's budget, then hammers every account.
      for (const junk of ["x", "y"]) assert.equal(await platform.sessions.signIn(junk, "x", attacker), null);
      for (const name of accounts) {
        for (let i = 0; i < 5; i++) await assert.rejects(platform.sessions.signIn(name, "guess", attacker), SignInThrottledError);
      }
      const rows = await platform.db.selectFrom("SysSignInThrottle").select("Key").execute();
      assert.deepEqual(rows.map((r) => r.Key).sort(), ["address:203.0.113.5", "login:x", "login:y"]);
      // The owners, from their own addresses, still sign in.
      for (const [i, name] of accounts.entries()) assert.ok(await platform.sessions.signIn(name, `${name}-pass`, `198.51.100.${i + 1}`), `${name} was locked out`);
    });

    it("a success clears its login's failures", async () => {
      const platform = await startPlatform(store, { isolation: "none", signInLimits: { perLogin: 3, windowMs: 60_000 } });
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 2; i++) assert.equal(await platform.sessions.signIn("Supervisor", "wrong"), null);
        assert.ok(await platform.sessions.signIn("Supervisor", "supervisor-pass"));
      }
    });

    it("counts a burst of parallel guesses before checking any of them", async () => {
      const platform = await startPlatform(store, { isolation: "none", signInLimits: { perLogin: 5, windowMs: 60_000 } });
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => platform.sessions.signIn("Supervisor", `guess-${i}`, "192.0.2.1")));
      const refused = results.filter((r) => r.status === "rejected");
      assert.equal(refused.length, 15);
      for (const r of refused) assert.ok((r as PromiseRejectedResult).reason instanceof SignInThrottledError);
      assert.equal(results.filter((r) => r.status === "fulfilled" && r.value === null).length, 5);
    });
  });
}

describe("client addresses behind a proxy", () => {
  it("counts the address X-Forwarded-For gives only when the proxy is trusted", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none", signInLimits: { perLogin: 100, perAddress: 2, windowMs: 60_000 } });
    const forwarded = (app: App, client: string) =>
      app.inject({ method: "POST", url: "/api/auth/login", payload: { login: "x", password: "x" }, remoteAddress: "10.0.0.5", headers: { "x-forwarded-for": client } });
    const trusting = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false, trustProxy: parseTrustProxy("10.0.0.0/8") });
    for (const client of ["192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2"]) assert.equal((await forwarded(trusting, client)).statusCode, 401);
    assert.equal((await forwarded(trusting, "192.0.2.1")).statusCode, 429);
    // Not trusted: the header is ignored, and the proxy's own address (10.0.0.5) is counted.
    const plain = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
    assert.equal((await forwarded(plain, "192.0.2.3")).statusCode, 401);
    assert.equal((await forwarded(plain, "192.0.2.4")).statusCode, 401);
    assert.equal((await forwarded(plain, "192.0.2.5")).statusCode, 429);
    await trusting.close();
    await plain.close();
  });

  it("reads trust-proxy settings and refuses what is not one", () => {
    assert.equal(parseTrustProxy("true"), true);
    assert.equal(parseTrustProxy("false"), false);
    assert.equal(parseTrustProxy("2"), 2);
    assert.deepEqual(parseTrustProxy("10.0.0.0/8, ::1,192.168.1.1"), ["10.0.0.0/8", "::1", "192.168.1.1"]);
    assert.throws(() => parseTrustProxy("10.0.0.0/33"), /"10.0.0.0\/33" is not an IP address or CIDR range/);
    assert.throws(() => parseTrustProxy("proxy.local"), /"proxy.local" is not an IP address/);
    assert.throws(() => parseTrustProxy("101"), /at most 100 hops/);
  });
});

describe("sign-in limit settings", () => {
  for (const [limits, message] of [
    [{ perLogin: 0 }, /signInLimits\.perLogin must be an integer from 1/],
    [{ perAddress: 1.5 }, /signInLimits\.perAddress must be an integer from 1/],
    [{ windowMs: Number.NaN }, /signInLimits\.windowMs must be an integer from 1/],
    ["10", /signInLimits must be an object/],
  ] as const) {
    it(`refuses ${JSON.stringify(limits)}`, async () => {
      await assert.rejects(
        Platform.start({ db: tempDb(tempDir()), logger: false, adminPassword: "supervisor-pass", signInLimits: limits as never }),
        message,
      );
    });
  }

  it("refuses a session lifetime that is not a whole number of ms from 1 s to 366 days", async () => {
    for (const sessionTtlMs of [0, -5, 1.5, Number.POSITIVE_INFINITY, 400 * 24 * 60 * 60 * 1000]) {
      await assert.rejects(Platform.start({ db: tempDb(tempDir()), logger: false, adminPassword: "supervisor-pass", sessionTtlMs }), /sessionTtlMs must be an integer/);
    }
  });
});
