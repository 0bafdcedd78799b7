import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SystemIds } from "../../src/platform/constants.ts";
import { sql } from "../../src/platform/db/kysely-module.ts";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Platform } from "../../src/platform/platform.ts";
import { TEST_POSTGRES_URL } from "../helpers.ts";
import { STORES, startPlatform } from "./helpers.ts";

for (const store of STORES) {
  describe(`users and sessions on ${store}`, () => {
    it("refuses to delete or deactivate the Supervisor, and says so for an unknown user", async () => {
      const platform = await startPlatform(store);
      await assert.rejects(platform.users.delete(SystemIds.SupervisorUserId), /the Supervisor cannot be deleted/);
      await assert.rejects(platform.users.setActive(SystemIds.SupervisorUserId, false), /the Supervisor cannot be deactivated/);
      assert.ok(await platform.sessions.signIn("Supervisor", "supervisor-pass"), "the Supervisor still signs in");
      await platform.users.setActive(SystemIds.SupervisorUserId, true);
      await assert.rejects(platform.users.delete("no-such-user"), /no user with id "no-such-user"/);
      await assert.rejects(platform.users.setActive("no-such-user", false), /no user with id "no-such-user"/);
      const bob = await platform.users.create({ login: "bob", password: "bob-pass" });
      await platform.users.delete(bob.id);
      assert.equal(await platform.users.getById(bob.id), null);
    });

    it("checks a new user's login, contact name and culture, and names a taken login", async () => {
      const platform = await startPlatform(store);
      await assert.rejects(platform.users.create({ login: "  ", password: "p" }), /a login must be 1-250 characters/);
      await assert.rejects(platform.users.create({ login: "a\u0000b", password: "p" }), /a login "a\\u0000b" holds a control character/);
      await assert.rejects(platform.users.create({ login: "ann", password: "p", contactName: "" }), /a contact name must be 1-250 characters/);
      await assert.rejects(platform.users.create({ login: "ann", password: "p", culture: "not a culture" }), /culture "not a culture" is not a language tag/);
      await assert.rejects(platform.users.create({ login: "ann", password: "p", timeZone: "Mars/Olympus" }), /unknown time zone "Mars\/Olympus"/);
      const ann = await platform.users.create({ login: " ann ", password: "p", contactName: " Ann A ", culture: "de-DE", timeZone: "Europe/Berlin" });
      assert.equal(ann.name, "ann");
      assert.equal(ann.contactName, "Ann A");
      assert.equal(ann.culture, "de-DE");
      await assert.rejects(platform.users.create({ login: "ann", password: "q" }), /a user with the login "ann" already exists/);
      // Two creates of one login at once: one wins, the other is told the login is taken.
      const both = await Promise.allSettled([
        platform.users.create({ login: "twin", password: "p" }),
        platform.users.create({ login: "twin", password: "p" }),
      ]);
      assert.equal(both.filter((r) => r.status === "fulfilled").length, 1);
      const lost = both.find((r) => r.status === "rejected");
      assert.match(String(lost?.reason), /a user with the login "twin" already exists/);
    });

    it("stores a login in one Unicode form: look-alike logins are one login, signed in to whichever form is typed", async () => {
      const platform = await startPlatform(store);
      const decomposed = "Jose\u0301"; // "José" with a combining accent
      const composed = "Jos\u00e9";
      const jose = await platform.users.create({ login: decomposed, password: "jose-pass" });
      assert.equal(jose.name, composed);
      await assert.rejects(platform.users.create({ login: composed, password: "other" }), /a user with the login "José" already exists/);
      assert.ok(await platform.sessions.signIn(composed, "jose-pass"));
      assert.ok(await platform.sessions.signIn(decomposed, "jose-pass"));
      assert.equal((await platform.users.getByLogin(decomposed))?.id, jose.id);
    });

    it("refuses a platform option it does not know, naming the nearest it does", async () => {
      await assert.rejects(
        startPlatform(store, { pakages: [] } as never),
        /Platform\.start's configuration has no option "pakages" \(did you mean "packages"\?\)/,
      );
      await assert.rejects(startPlatform(store, { signInLimits: { perUser: 3 } } as never), /signInLimits has no option "perUser"; its options are perLogin, perAddress, windowMs/);
    });

    it("logins do not depend on case: found, signed in and refused as taken in any case, failures counted as one login's", async () => {
      const platform = await startPlatform(store, { signInLimits: { perLogin: 3, perAddress: 100, windowMs: 60_000 } });
      const anna = await platform.users.create({ login: "Anna.Smith", password: "anna-pass" });
      assert.equal(anna.name, "Anna.Smith", "stored as typed");
      assert.equal((await platform.users.getByLogin("anna.smith"))?.id, anna.id);
      assert.equal((await platform.users.getByLogin("ANNA.SMITH"))?.id, anna.id);
      assert.equal((await platform.sessions.signIn("anna.SMITH", "anna-pass"))?.user.id, anna.id);
      assert.ok(await platform.sessions.signIn("supervisor", "supervisor-pass"), "the Supervisor signs in as supervisor");
      await assert.rejects(
        platform.users.create({ login: "ANNA.smith", password: "p" }),
        /a user with the login "ANNA.smith" already exists \(as "Anna.Smith": logins do not depend on case\)/,
      );
      // Two creates of one login in two cases at once: one wins, the other is told it is taken.
      const both = await Promise.allSettled([platform.users.create({ login: "Twin", password: "p" }), platform.users.create({ login: "tWIN", password: "p" })]);
      assert.equal(both.filter((r) => r.status === "fulfilled").length, 1);
      assert.match(String(both.find((r) => r.status === "rejected")?.reason), /already exists/);
      // Wrong passwords under three cases of one login are three failures of that login.
      for (const login of ["anna.smith", "ANNA.SMITH", "Anna.Smith"]) assert.equal(await platform.sessions.signIn(login, "wrong"), null);
      await assert.rejects(platform.sessions.signIn("aNNA.sMITH", "anna-pass"), /too many/i);
    });

    it("a sign-in whose password was checked before a password change or a deactivation gets no session", async () => {
      const platform = await startPlatform(store);
      const carol = await platform.users.create({ login: "carol", password: "old-pass" });
      const users = platform.users;
      const read = users.passwordHashOf.bind(users);
      // The change lands between reading the hash and storing the session, where the slow password
      // check runs.
      let meanwhile: (() => Promise<void>) | null = () => users.setPassword(carol.id, "new-pass");
      users.passwordHashOf = async (login: string) => {
        const found = await read(login);
        const change = meanwhile;
        meanwhile = null;
        if (change) await change();
        return found;
      };
      assert.equal(await platform.sessions.signIn("carol", "old-pass"), null, "the old password made a session after it was changed");
      assert.ok(await platform.sessions.signIn("carol", "new-pass"));
      meanwhile = () => users.setActive(carol.id, false);
      assert.equal(await platform.sessions.signIn("carol", "new-pass"), null, "a deactivated user got a session");
    });

    it("removes expired sessions when someone signs in", async () => {
      const platform = await startPlatform(store);
      const first = await platform.sessions.signIn("Supervisor", "supervisor-pass");
      assert.ok(first);
      const count = async () =>
        Number((await sql<{ n: number }>`SELECT count(*) AS n FROM ${sql.table("SysSession")}`.execute(platform.db)).rows[0]?.n);
      assert.equal(await count(), 1);
      platform.runtime.driver.clockShift(8 * 60 * 60 * 1000 + 1);
      assert.ok(await platform.sessions.signIn("Supervisor", "supervisor-pass"));
      assert.equal(await count(), 1, "the expired session is still stored");
      assert.equal(await platform.sessions.authenticate(first.token), null);
    });

    if (store === "postgres") {
      it("starts, once its tables are in place, as a role that may read and write them but not create any", async () => {
        const owner = await startPlatform(store);
        const schema = owner.runtime.driver.schema!;
        await owner.stop({ graceMs: 0 });
        const role = `underway_test_dml_${randomBytes(4).toString("hex")}`;
        const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
        await admin.connect();
        try {
          await admin.query(`CREATE ROLE ${role} LOGIN`);
          await admin.query(`GRANT USAGE ON SCHEMA "${schema}" TO ${role}`);
          await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${schema}" TO ${role}`);
          await admin.query(`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "${schema}" TO ${role}`);
          const url = new URL(TEST_POSTGRES_URL);
          url.username = role;
          url.searchParams.set("schema", schema);
          const restricted = await Platform.start({ db: url.toString(), logger: false, secret: "platform tests secret value", adminPassword: "supervisor-pass" });
          try {
            assert.ok(await restricted.sessions.signIn("Supervisor", "supervisor-pass"));
          } finally {
            await restricted.stop({ graceMs: 0 });
          }
        } finally {
          await admin.query(`DROP OWNED BY ${role}`).catch(() => undefined);
          await admin.query(`DROP ROLE IF EXISTS ${role}`);
          await admin.end();
        }
      });
    }
  });
}
