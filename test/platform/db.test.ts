import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sql } from "kysely";
import { createKysely } from "../../src/platform/db/kysely.ts";
import { migratePlatform } from "../../src/platform/db/migrate.ts";
import { PLATFORM_MIGRATIONS } from "../../src/platform/db/migrations.ts";
import { Users } from "../../src/platform/users/users.ts";
import { Task, type IBackgroundTask } from "../../src/index.ts";
import { SystemIds } from "../../src/platform/constants.ts";
import { startRuntime, TEST_POSTGRES_URL, tempDir, tempSchema } from "../helpers.ts";

class Noop implements IBackgroundTask<null> {
  run(): void {}
}

interface TestDb {
  ActivityStatus: { Id: string; Name: string };
  Contact: { Id: string; Name: string; CreatedOn: number | Date | null };
}

const dir = tempDir();
const stores = [
  { name: "sqlite", db: () => undefined },
  { name: "postgres", db: () => `${TEST_POSTGRES_URL}?schema=${tempSchema()}` },
];

for (const store of stores) {
  describe(`platform tables on ${store.name}`, () => {
    it("migrates once, seeds the lookups, and joins the runtime's transactions", async () => {
      const url = store.db();
      const runtime = await startRuntime({ dir, ...(url ? { db: url } : {}), worker: false, tasks: [Noop] });
      const db = createKysely<TestDb>(runtime.driver);
      await migratePlatform(runtime.driver, db as never, PLATFORM_MIGRATIONS);
      await migratePlatform(runtime.driver, db as never, PLATFORM_MIGRATIONS); // idempotent
      const statuses = await db.selectFrom("ActivityStatus").select(["Id", "Name"]).orderBy("Name").execute();
      assert.deepEqual(
        statuses.map((s) => s.Name),
        ["Canceled", "Completed", "In progress", "Not started"],
      );

      // A record and a task in one transaction: both or neither.
      await assert.rejects(
        runtime.transaction(async () => {
          await db.insertInto("Contact").values({ Id: "c-1", Name: "Rolled back", CreatedOn: new Date() }).execute();
          await Task.startNew(Noop, null);
          throw new Error("undo");
        }),
        /undo/,
      );
      assert.equal((await db.selectFrom("Contact").where("Id", "=", "c-1").selectAll().execute()).length, 0);
      assert.equal((await runtime.listTasks()).items.length, 0);
      await runtime.transaction(async () => {
        await db.insertInto("Contact").values({ Id: "c-2", Name: "Kept", CreatedOn: new Date() }).execute();
        await Task.startNew(Noop, null);
      });
      assert.equal((await db.selectFrom("Contact").where("Id", "=", "c-2").selectAll().execute()).length, 1);
      assert.equal((await runtime.listTasks()).items.length, 1);

      // Kysely's own transactions would not join the store's: they are refused, saying what to use.
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          await trx.insertInto("Contact").values({ Id: "c-3", Name: "No", CreatedOn: null }).execute();
        }),
        /use runtime.transaction/,
      );
      await db.insertInto("Contact").values({ Id: "c-4", Name: "Yes", CreatedOn: null }).execute();
      // Strings that look like SQL stay data.
      const hostile = "x'); DROP TABLE \"Contact\"; --";
      await db.insertInto("Contact").values({ Id: "c-5", Name: hostile, CreatedOn: null }).execute();
      assert.equal((await db.selectFrom("Contact").select("Name").where("Name", "=", hostile).executeTakeFirst())?.Name, hostile);
      const count = await sql<{ n: number }>`SELECT count(*) AS n FROM ${sql.table("Contact")}`.execute(db);
      assert.equal(Number(count.rows[0]?.n), 4); // Supervisor, c-2, c-4, c-5
    });

    it("gives existing logins their case-free keys, except logins that differ only in case, which stay found as typed", async () => {
      const url = store.db();
      const runtime = await startRuntime({ dir, ...(url ? { db: url } : {}), worker: false, tasks: [Noop] });
      const db = createKysely<TestDb>(runtime.driver);
      const before = PLATFORM_MIGRATIONS.filter((m) => m.name !== "login_key");
      assert.equal(before.length, PLATFORM_MIGRATIONS.length - 1);
      await migratePlatform(runtime.driver, db as never, before);
      const active = url ? sql`true` : sql`1`;
      for (const [id, login] of [["u-bob", "Bob"], ["u-bob2", "bob"], ["u-carol", "Carol"]] as const) {
        await sql`INSERT INTO ${sql.table("Contact")} ("Id", "Name") VALUES (${`c-${id}`}, ${login})`.execute(db);
        await sql`INSERT INTO ${sql.table("SysAdminUnit")} ("Id", "Name", "ContactId", "Active") VALUES (${id}, ${login}, ${`c-${id}`}, ${active})`.execute(db);
      }
      await migratePlatform(runtime.driver, db as never, PLATFORM_MIGRATIONS);
      const users = new Users(runtime.driver, db as never);
      assert.equal((await users.getByLogin("carol"))?.id, "u-carol");
      assert.equal((await users.getByLogin("CAROL"))?.id, "u-carol");
      assert.equal((await users.getByLogin("Bob"))?.id, "u-bob");
      assert.equal((await users.getByLogin("bob"))?.id, "u-bob2");
      assert.equal(await users.getByLogin("BOB"), null, "ambiguous: neither Bob nor bob");
      assert.equal((await users.getByLogin("supervisor"))?.id, SystemIds.SupervisorUserId);
      await assert.rejects(users.create({ login: "CAROL", password: "p" }), /a user with the login "CAROL" already exists \(as "Carol": logins do not depend on case\)/);
    });
  });
}
