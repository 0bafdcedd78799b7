import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { currentUser } from "../../src/index.ts";
import { createHttpServer } from "../../src/http/server.ts";
import { Activity } from "../../src/platform/entities/activity.ts";
import { STORES, startPlatform } from "../platform/helpers.ts";

for (const store of STORES) {
  describe(`HTTP API on ${store}`, () => {
    it("signs in and out, guards every route, protects cookie writes against CSRF, lists activities", async () => {
      const platform = await startPlatform(store);
      const app = await createHttpServer({ runtime: platform.runtime, platform });
      // The signed-in user is ambient while a request is handled.
      app.get("/api/test/whoami", async () => {
        await new Promise((r) => setTimeout(r, 1));
        return { userId: currentUser()?.userId ?? null };
      });
      const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice A" });
      const bob = await platform.users.create({ login: "bob", password: "bob-pass", contactName: "Bob B" });
      for (const [user, title] of [
        [alice, "First of Alice"],
        [bob, "Bob's own"],
        [alice, "Second of Alice"],
      ] as const) {
        const a = new Activity(platform.userConnection(user));
        a.title = title;
        a.setDefColumnValues();
        a.setColumnValue("CreatedOn", new Date(Date.now() + (title.startsWith("Second") ? 1000 : 0)));
        await a.save();
      }

      assert.equal((await app.inject({ method: "GET", url: "/api/activities" })).statusCode, 401);
      const wrong = await app.inject({ method: "POST", url: "/api/auth/login", payload: { login: "alice", password: "nope" } });
      assert.equal(wrong.statusCode, 401);
      assert.equal(wrong.headers["set-cookie"], undefined);
      const bad = await app.inject({ method: "POST", url: "/api/auth/login", payload: { login: "alice" } });
      assert.equal(bad.statusCode, 400);
      assert.match((bad.json() as { error: string }).error, /password/);

      const login = await app.inject({ method: "POST", url: "/api/auth/login", payload: { login: "alice", password: "alice-pass" } });
      assert.equal(login.statusCode, 200);
      const { token, csrfToken, user } = login.json() as { token: string; csrfToken: string; user: { name: string } };
      assert.equal(user.name, "alice");
      const cookie = String(login.headers["set-cookie"]);
      assert.match(cookie, /underway_session=[^;]+; .*HttpOnly/);
      assert.match(cookie, /SameSite=Lax/);
      assert.equal(login.headers["x-content-type-options"], "nosniff");
      assert.doesNotMatch(login.body, /alice-pass|PasswordHash/);

      const list = await app.inject({ method: "GET", url: "/api/activities", headers: { authorization: `Bearer ${token}` } });
      assert.equal(list.statusCode, 200);
      const body = list.json() as { items: { title: string; type: { name: string }; category: { name: string }; status: { name: string }; priority: { name: string }; owner: { id: string; name: string }; author: { name: string } }[] };
      assert.deepEqual(body.items.map((i) => i.title), ["Second of Alice", "First of Alice"]);
      const first = body.items[0];
      assert.deepEqual(
        [first?.type.name, first?.category.name, first?.status.name, first?.priority.name, first?.owner.name, first?.author.name],
        ["Task", "To do", "Not started", "Medium", "Alice A", "Alice A"],
      );
      assert.equal(first?.owner.id, alice.contactId);

      const who = await app.inject({ method: "GET", url: "/api/test/whoami", headers: { authorization: `Bearer ${token}` } });
      assert.deepEqual(who.json(), { userId: alice.id });
      const viaCookie = await app.inject({ method: "GET", url: "/api/activities?title=first", cookies: { underway_session: token } });
      assert.deepEqual((viaCookie.json() as { items: { title: string }[] }).items.map((i) => i.title), ["First of Alice"]);
      const paged = await app.inject({ method: "GET", url: "/api/activities?limit=1", headers: { authorization: `Bearer ${token}` } });
      assert.equal((paged.json() as { nextOffset: number | null }).nextOffset, 1);
      const badQuery = await app.inject({ method: "GET", url: "/api/activities?limit=100000", headers: { authorization: `Bearer ${token}` } });
      assert.equal(badQuery.statusCode, 400);

      // A cookie-authenticated write without the CSRF header is refused; with it, it works.
      const forged = await app.inject({ method: "POST", url: "/api/auth/logout", cookies: { underway_session: token } });
      assert.equal(forged.statusCode, 403);
      const out = await app.inject({ method: "POST", url: "/api/auth/logout", cookies: { underway_session: token }, headers: { "x-csrf-token": csrfToken } });
      assert.equal(out.statusCode, 204);
      assert.equal((await app.inject({ method: "GET", url: "/api/activities", headers: { authorization: `Bearer ${token}` } })).statusCode, 401);
      await app.close();
    });
  });
}
