import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import { describe, it } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Task } from "../../src/index.ts";
import { CreateActivityTask, WhoTask } from "../fixtures/platform-tasks.ts";
import { tempDir } from "../helpers.ts";
import { ActivityConsts, ActivityPriorityIds, ActivityStatusIds, SystemIds } from "../../src/platform/constants.ts";
import { Activity } from "../../src/platform/entities/activity.ts";
import { Entity } from "../../src/platform/entities/entity.ts";
import { EntitySecurityError, EntityValidationError } from "../../src/platform/entities/errors.ts";
import { EntitySchemaQuery, MAX_UNPAGED_RECORDS } from "../../src/platform/entities/query.ts";
import type { ColumnDefinition, EntitySchemaDefinition } from "../../src/platform/entities/schema.ts";
import { sql } from "../../src/platform/db/kysely-module.ts";
import { STORES, startPlatform } from "./helpers.ts";

for (const store of STORES) {
  describe(`platform on ${store}`, () => {
    it("signs in with the right password only; sessions expire and end at sign-out", async () => {
      const platform = await startPlatform(store);
      assert.equal(await platform.sessions.signIn("Supervisor", "wrong"), null);
      assert.equal(await platform.sessions.signIn("nobody", "supervisor-pass"), null);
      assert.equal(await platform.sessions.signIn({ $ne: 1 }, "x"), null);
      const session = await platform.sessions.signIn("Supervisor", "supervisor-pass");
      assert.ok(session);
      assert.equal(session.user.isAdmin, true);
      assert.equal((await platform.sessions.authenticate(session.token))?.user.id, SystemIds.SupervisorUserId);
      platform.runtime.driver.clockShift(8 * 60 * 60 * 1000 + 1);
      assert.equal(await platform.sessions.authenticate(session.token), null);
      const again = await platform.sessions.signIn("Supervisor", "supervisor-pass");
      await platform.sessions.signOut(again?.token);
      assert.equal(await platform.sessions.authenticate(again?.token), null);
      // An unpaired surrogate would be hashed as U+FFFD: such a password is refused, never matched.
      await assert.rejects(platform.users.create({ login: "carol", password: "pass\ud800" }), /a password must be well-formed Unicode text/);
      const carol = await platform.users.create({ login: "carol", password: "pass\ufffd" });
      assert.ok(await platform.sessions.signIn("carol", "pass\ufffd"));
      assert.equal(await platform.sessions.signIn("carol", "pass\ud800"), null);
      await assert.rejects(platform.users.setPassword(carol.id, "\udfff"), /well-formed Unicode/);
    });

    it("gives the Supervisor a generated password on a fresh database, shown once", async () => {
      const shown: string[] = [];
      const platform = await startPlatform(store, { adminPassword: undefined, onGeneratedAdminPassword: (p) => shown.push(p) });
      assert.equal(shown.length, 1);
      assert.ok((shown[0] ?? "").length >= 16);
      assert.ok(await platform.sessions.signIn("Supervisor", shown[0]));
      assert.deepEqual(await platform.users.ensureSupervisorPassword(undefined), { generated: null });
    });

    it("fills the Activity defaults of the platform and checks required columns", async () => {
      const platform = await startPlatform(store);
      const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice A" });
      const uc = platform.userConnection(alice);
      const activity = new Activity(uc);
      activity.setDefColumnValues();
      assert.match(activity.id ?? "", /^[0-9a-f-]{36}$/);
      assert.equal(activity.typeId, ActivityConsts.TaskTypeUId);
      assert.equal(activity.activityCategoryId, ActivityConsts.TaskCategoryId);
      assert.equal(activity.statusId, ActivityStatusIds.NotStarted);
      assert.equal(activity.priorityId, ActivityPriorityIds.Medium);
      assert.equal(activity.ownerId, alice.contactId);
      assert.equal(activity.authorId, alice.contactId);
      assert.ok(activity.startDate instanceof Date && activity.dueDate instanceof Date);
      await assert.rejects(activity.save(), (e: unknown) => e instanceof EntityValidationError && /required column Title has no value/.test(e.message));
      // save(false) skips the check; the database still refuses a missing NOT NULL title.
      await assert.rejects(activity.save(false));
      activity.title = "Call the customer";
      await activity.save();
      const loaded = new Activity(uc);
      assert.equal(await loaded.fetchFromDB(activity.id ?? ""), true);
      assert.equal(loaded.title, "Call the customer");
      assert.ok(loaded.createdOn instanceof Date);
      assert.equal(loaded.createdById, alice.contactId);
      assert.throws(() => (loaded.typeId = "not a guid"), /Activity.TypeId must be a GUID/);
    });

    it("refuses values, records and filters the stores would not treat alike, with the column named", async () => {
      const platform = await startPlatform(store);
      const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice A" });
      const uc = platform.userConnection(alice);
      const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof EntityValidationError && pattern.test(e.message));
      const activity = new Activity(uc);
      activity.setDefColumnValues();
      refused(() => (activity.title = "a\u0000b"), /Activity.Title must not contain a NUL character \(U\+0000\), at index 1/);
      refused(() => (activity.title = "half \ud800 pair"), /Activity.Title is not well-formed Unicode/);
      refused(() => (activity.startDate = new Date("0000-06-01T00:00:00Z")), /Activity.StartDate must be a date and time from the year 1 to the year 9999/);
      refused(() => (activity.startDate = new Date(8.64e15)), /from the year 1 to the year 9999/);
      // Text must say which instant it is: no local times, no loose forms, no days that do not exist.
      for (const loose of ["January 5", "2026-02-30", "2026-02-30T10:00:00Z", "2025-02-29", "2026-01-02 10:00", "2026-01-02T24:00:00Z", "2026-01-02T10:00:00+25:00"]) {
        refused(() => activity.setColumnValue("StartDate", loose), new RegExp(`Activity.StartDate must be a date and time: .* got ${JSON.stringify(loose).replace(/[+]/g, "\\+")}$`));
      }
      const instants: [string, string][] = [
        ["2024-02-29", "2024-02-29T00:00:00.000Z"],
        ["2026-12-07T10:30+01:00", "2026-12-07T09:30:00.000Z"],
        // Without an offset, UTC, whatever the server's time zone.
        ["2026-12-07T10:30:00", "2026-12-07T10:30:00.000Z"],
        ["2026-12-07T09:30:15.123456Z", "2026-12-07T09:30:15.123Z"],
      ];
      for (const [text, iso] of instants) {
        activity.setColumnValue("StartDate", text);
        assert.equal(activity.startDate?.toISOString(), iso, text);
      }
      activity.startDate = new Date("0001-01-01T00:00:00Z");
      activity.dueDate = new Date("9999-12-31T23:59:59.999Z");
      // Blank text is no value for a required column.
      for (const blank of ["", "  \t"]) {
        activity.title = blank;
        await assert.rejects(activity.save(), (e: unknown) => e instanceof EntityValidationError && /required column Title has no value/.test(e.message));
      }
      activity.title = "Ärger mit Öl";
      await activity.save();
      const back = new Activity(uc);
      assert.equal(await back.fetchFromDB(activity.id ?? ""), true);
      assert.equal(back.startDate?.toISOString(), "0001-01-01T00:00:00.000Z");
      assert.equal(back.dueDate?.toISOString(), "9999-12-31T23:59:59.999Z");

      // A second record with the same Id: refused as such, the first kept.
      const twin = new Activity(uc);
      twin.setDefColumnValues();
      twin.setColumnValue("Id", activity.id);
      twin.title = "Twin";
      await assert.rejects(twin.save(), (e: unknown) => e instanceof EntityValidationError && e.message === `Activity cannot be saved: a record with the Id ${activity.id} already exists`);
      assert.equal(await back.fetchFromDB(activity.id ?? ""), true);
      assert.equal(back.title, "Ärger mit Öl");

      // A lookup must name a record of its schema, on insert and on update; nothing is saved otherwise.
      const nowhere = "0badc0de-0000-4000-8000-000000000001";
      const dangling = new Activity(uc);
      dangling.setDefColumnValues();
      dangling.title = "Dangling";
      dangling.setColumnValue("Owner", nowhere);
      await assert.rejects(dangling.save(), (e: unknown) => e instanceof EntityValidationError && e.message === `Activity.OwnerId refers to no Contact record: there is none with the Id ${nowhere}`);
      assert.equal(await new Activity(uc).fetchFromDB(dangling.id ?? nowhere), false);
      back.setColumnValue("Status", nowhere);
      await assert.rejects(back.save(), /Activity.StatusId refers to no ActivityStatus record/);
      assert.equal(await back.fetchFromDB(activity.id ?? ""), true);
      assert.equal(back.getColumnValue("Status"), ActivityStatusIds.NotStarted);
      // A lookup left as it was is not looked up again; one set to an existing record saves.
      back.setColumnValue("Owner", SystemIds.SupervisorContactId);
      await back.save();

      const titles = async (build: (q: EntitySchemaQuery) => EntitySchemaQuery) => (await build(new EntitySchemaQuery(uc, "Activity").addColumn("Title")).getEntityCollection()).map((r) => r.Title);
      // Any letter, in any case, as JavaScript lowercases it, on either store.
      assert.deepEqual(await titles((q) => q.addFilter("Title", "contains", "ärger")), ["Ärger mit Öl"]);
      assert.deepEqual(await titles((q) => q.addFilter("Title", "startsWith", "ÄRGER MIT ö")), ["Ärger mit Öl"]);
      // Equal to null means no value; not equal to null, a value.
      assert.deepEqual(await titles((q) => q.addFilter("Owner", "equal", null)), []);
      assert.deepEqual(await titles((q) => q.addFilter("Owner", "notEqual", null)), ["Ärger mit Öl"]);
      assert.throws(() => new EntitySchemaQuery(uc, "Activity").addFilter("Title", "like" as never, "x"), (e: unknown) => e instanceof EntityValidationError && /unknown comparison "like" on Title/.test(e.message));
      const failing = (build: (q: EntitySchemaQuery) => EntitySchemaQuery, pattern: RegExp) =>
        assert.rejects(build(new EntitySchemaQuery(uc, "Activity")).getEntityCollection(), (e: unknown) => e instanceof EntityValidationError && pattern.test(e.message));
      await failing((q) => q.addFilter("StartDate", "contains", "20"), /a contains filter needs a text column; StartDate is datetime/);
      await failing((q) => q.addFilter("Title", "contains", "x".repeat(1_001)), /is longer than 1,000 characters/);
      await failing((q) => q.addFilter("StartDate", "greater", null), /a greater filter on StartDate needs a value/);
      // Searched text is held to what a stored value is: SQLite would end the pattern at the NUL
      // and find every record, PostgreSQL would refuse the statement with a database error.
      await failing((q) => q.addFilter("Title", "contains", "\u0000"), /^a contains filter on Title must not contain a NUL character \(U\+0000\), at index 0$/);
      await failing((q) => q.addFilter("Title", "contains", "Är\u0000zzz"), /^a contains filter on Title must not contain a NUL character \(U\+0000\), at index 2$/);
      await failing((q) => q.addFilter("Owner.Name", "startsWith", "A\u0000"), /^a startsWith filter on Owner.Name must not contain a NUL character \(U\+0000\), at index 1$/);
      await failing((q) => q.addFilter("Title", "contains", "\ud800"), /^a contains filter on Title is not well-formed Unicode: it holds an unpaired UTF-16 surrogate$/);
      await failing((q) => q.addFilter("Title", "startsWith", "Ärger \udfff"), /^a startsWith filter on Title is not well-formed Unicode/);

      // A title searched as it is stored is found, whatever lowercasing does with its letters in
      // context (a final Σ, a dotted İ): the store lowers both sides alike.
      for (const title of ["ΟΔΟΣ", "İstanbul"]) {
        const a = new Activity(uc);
        a.setDefColumnValues();
        a.title = title;
        await a.save();
        assert.deepEqual(await titles((q) => q.addFilter("Title", "contains", title)), [title]);
        assert.deepEqual(await titles((q) => q.addFilter("Title", "startsWith", title)), [title]);
      }
    });

    it("writes only the columns set since the record was read, and stamps who created it", async () => {
      const platform = await startPlatform(store);
      const alice = await platform.users.create({ login: "alice", password: "alice-pass" });
      const uc = platform.userConnection(alice);
      const activity = new Activity(uc);
      activity.setDefColumnValues();
      activity.title = "Plan";
      activity.setColumnValue("CreatedBy", SystemIds.SupervisorContactId);
      await activity.save();
      const id = activity.id ?? "";

      // Two copies read before either saves: each save keeps what the other changed.
      const first = new Activity(uc);
      const second = new Activity(uc);
      assert.equal(await first.fetchFromDB(id), true);
      assert.equal(await second.fetchFromDB(id), true);
      first.setColumnValue("Status", ActivityStatusIds.Completed);
      await first.save();
      second.title = "Plan, revised";
      await second.save();
      const stored = new Activity(uc);
      assert.equal(await stored.fetchFromDB(id), true);
      assert.equal(stored.title, "Plan, revised");
      assert.equal(stored.getColumnValue("Status"), ActivityStatusIds.Completed);
      assert.equal(stored.getColumnValue("CreatedBy"), alice.contactId, "the creator is the user who saved it first");
    });

    it("asks again for a user's rights after a lookup that failed", { skip: store !== "postgres" && "a failed statement ends a transaction on PostgreSQL only" }, async () => {
      const platform = await startPlatform(store);
      const alice = await platform.users.create({ login: "alice", password: "alice-pass" });
      const uc = platform.userConnection(alice);
      await assert.rejects(
        platform.runtime.transaction(async () => {
          await sql`SELECT 1 / 0`.execute(platform.db).catch(() => undefined);
          await assert.rejects(uc.schemaRights("Activity"), /current transaction is aborted/);
          throw new Error("rolled back");
        }),
        /rolled back/,
      );
      const activity = new Activity(uc);
      activity.setDefColumnValues();
      activity.title = "After a failed lookup";
      await activity.save();
      assert.equal(await new Activity(uc).fetchFromDB(activity.id ?? ""), true);
    });

    it("enforces object and record rights unless useAdminRights is false", async () => {
      const platform = await startPlatform(store);
      const alice = await platform.users.create({ login: "alice", password: "alice-pass" });
      const bob = await platform.users.create({ login: "bob", password: "bob-pass" });
      const aliceUc = platform.userConnection(alice);
      const bobUc = platform.userConnection(bob);
      const mine = new Activity(aliceUc);
      mine.title = "Alice's";
      mine.setDefColumnValues();
      await mine.save();

      // Alice may edit her own record.
      mine.title = "Alice's, edited";
      await mine.save();

      // Bob cannot read, edit or delete Alice's record.
      const asBob = new Activity(bobUc);
      assert.equal(await asBob.fetchFromDB(mine.id ?? ""), false);
      const forced = new Activity(bobUc);
      forced.useAdminRights = false;
      assert.equal(await forced.fetchFromDB(mine.id ?? ""), true);
      forced.useAdminRights = true;
      forced.title = "Bob was here";
      await assert.rejects(forced.save(), (e: unknown) => e instanceof EntitySecurityError && /no right to edit this Activity record/.test(e.message));
      await assert.rejects(forced.delete(), EntitySecurityError);
      forced.useAdminRights = false;
      await forced.save();

      // No insert right on Contact for employees; administrators may do everything.
      const contact = Entity.create(bobUc, "Contact");
      contact.setColumnValue("Name", "New contact");
      contact.setDefColumnValues();
      await assert.rejects(contact.save(), /bob has no right to add Contact records/);
      contact.useAdminRights = false;
      await contact.save();
      const admin = platform.appConnection.systemUserConnection;
      const asAdmin = new Activity(admin);
      assert.equal(await asAdmin.fetchFromDB(mine.id ?? ""), true);
      assert.equal(asAdmin.title, "Bob was here");
      assert.equal(await asAdmin.delete(), true);
    });

    it("queries with lookup display values, filters, order, paging and read rights", async () => {
      const platform = await startPlatform(store);
      const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice A" });
      const bob = await platform.users.create({ login: "bob", password: "bob-pass", contactName: "Bob B" });
      for (const [user, title] of [
        [alice, "Alpha 100%"],
        [alice, "Beta"],
        [bob, "Alpha of Bob"],
      ] as const) {
        const a = new Activity(platform.userConnection(user));
        a.title = title;
        a.setDefColumnValues();
        await a.save();
      }
      const esq = new EntitySchemaQuery(platform.userConnection(alice), "Activity")
        .addColumn("Title")
        .addColumn("Owner.Name")
        .addColumn("Status.Name")
        .addColumn("StartDate")
        .orderBy("Title", "asc");
      const rows = await esq.getEntityCollection();
      assert.deepEqual(
        rows.map((r) => [r.Title, r["Owner.Name"], r["Status.Name"]]),
        [
          ["Alpha 100%", "Alice A", "Not started"],
          ["Beta", "Alice A", "Not started"],
        ],
      );
      assert.ok(rows[0]?.StartDate instanceof Date);
      const filtered = await new EntitySchemaQuery(platform.userConnection(alice), "Activity").addColumn("Title").addFilter("Title", "contains", "100%").getEntityCollection();
      assert.deepEqual(filtered.map((r) => r.Title), ["Alpha 100%"]);
      const noWildcards = await new EntitySchemaQuery(platform.userConnection(alice), "Activity").addFilter("Title", "contains", "%").getEntityCollection();
      assert.equal(noWildcards.length, 1); // % is a character here, not a wildcard
      const all = await new EntitySchemaQuery(platform.appConnection.systemUserConnection, "Activity").addColumn("Title").orderBy("Title").setPaging(1, 1).getEntityCollection();
      assert.deepEqual(all.map((r) => r.Title), ["Alpha of Bob"]);
      assert.throws(() => new EntitySchemaQuery(platform.userConnection(alice), "Activity").addColumn("Owner.Password"), /has no column "Password"/);
      assert.throws(() => new EntitySchemaQuery(platform.userConnection(alice), "Activity").addColumn("Title; DROP TABLE x"), /has no column/);
    });

    it("sorts records without a value first in ascending order and last in descending order, on both stores", async () => {
      const platform = await startPlatform(store, { isolation: "none" });
      const admin = platform.appConnection.systemUserConnection;
      for (const [title, due] of [["early", "2026-01-01T00:00:00Z"], ["none", null], ["late", "2026-06-01T00:00:00Z"]] as const) {
        const a = new Activity(admin);
        a.title = title;
        a.setDefColumnValues();
        a.setColumnValue("DueDate", due === null ? null : new Date(due));
        await a.save();
      }
      const titles = async (direction: "asc" | "desc") =>
        (await new EntitySchemaQuery(admin, "Activity").addColumn("Title").orderBy("DueDate", direction).getEntityCollection()).map((r) => r.Title);
      assert.deepEqual(await titles("asc"), ["none", "early", "late"]);
      assert.deepEqual(await titles("desc"), ["late", "early", "none"]);
      // Any other direction is refused, not taken for descending.
      for (const [direction, given] of [["ASC", '"ASC"'], ["ascending", '"ascending"'], ["", '""'], [1, "number"]] as const) {
        assert.throws(
          () => new EntitySchemaQuery(admin, "Activity").orderBy("DueDate", direction as never),
          (e: unknown) => e instanceof EntityValidationError && e.message === `the order of DueDate must be "asc" or "desc", got ${given}`,
        );
      }
    });

    it("returns every matching record without setPaging, and refuses a query that would return more than 10,000", async () => {
      const platform = await startPlatform(store, { isolation: "none" });
      const admin = platform.appConnection.systemUserConnection;
      await platform.db.schema.createTable("UsrItem").addColumn("Id", "text", (c) => c.primaryKey()).addColumn("Name", "text").execute();
      platform.entitySchemaManager.register({
        name: "UsrItem",
        primaryDisplayColumn: "Name",
        columns: [
          { name: "Id", type: "guid", required: true, default: { source: "newId" } },
          { name: "Name", type: "text" },
        ],
      });
      const db = platform.db as unknown as Kysely<{ UsrItem: { Id: string; Name: string } }>;
      let count = 0;
      const addItems = async (n: number) => {
        for (let left = n; left > 0; left -= 500) {
          const rows = Array.from({ length: Math.min(left, 500) }, () => ({ Id: randomUUID(), Name: `item ${count++}` }));
          await db.insertInto("UsrItem").values(rows).execute();
        }
      };
      const names = async (build: (q: EntitySchemaQuery) => EntitySchemaQuery = (q) => q) =>
        (await build(new EntitySchemaQuery(admin, "UsrItem").addColumn("Name")).getEntityCollection()).map((r) => r.Name);

      // More than a page of the web's list: all of them, with and without a filter.
      await addItems(60);
      assert.equal((await names()).length, 60);
      assert.equal((await names((q) => q.addFilter("Name", "startsWith", "item"))).length, 60);
      assert.deepEqual(await names((q) => q.orderBy("Name").setPaging(1, 2)), ["item 1", "item 10"]);

      assert.equal(MAX_UNPAGED_RECORDS, 10_000);
      await addItems(MAX_UNPAGED_RECORDS - 60);
      assert.equal(new Set(await names()).size, 10_000);
      // One more, and the query is refused rather than cut short.
      await addItems(1);
      await assert.rejects(
        names(),
        (e: unknown) =>
          e instanceof EntityValidationError &&
          e.message ===
            "a query of UsrItem without setPaging asks for every matching record, and more than 10,000 match: use setPaging(offset, limit) to read them a page (of up to 1,000) at a time",
      );
      // Paged, or filtered to fewer, it runs.
      assert.deepEqual(await names((q) => q.orderBy("Name").setPaging(10_000, 1_000)), ["item 9999"]);
      assert.equal((await names((q) => q.addFilter("Name", "startsWith", "item 1"))).length, 1_112);
    });

    it("joins lookups whose long names begin alike, which PostgreSQL would cut to one name", async () => {
      const platform = await startPlatform(store, { isolation: "none" });
      const admin = platform.appConnection.systemUserConnection;
      // Two lookup columns of the longest names a lookup may have (61 bytes, 63 with "Id") that
      // share their first 58 characters: an alias made of the name and the column shown
      // (`<name>_Name`) would be the same 63 bytes for both.
      const shared = `Usr${"Contact".repeat(7)}Of${"X".repeat(4)}`;
      assert.equal(shared.length, 58);
      const [first, second] = [`${shared}One`, `${shared}Two`];
      await platform.db.schema
        .createTable("UsrLongLookups")
        .addColumn("Id", "text", (c) => c.primaryKey())
        .addColumn("Name", "text")
        .addColumn(`${first}Id`, "text")
        .addColumn(`${second}Id`, "text")
        .execute();
      platform.entitySchemaManager.register({
        name: "UsrLongLookups",
        primaryDisplayColumn: "Name",
        columns: [
          { name: "Id", type: "guid", required: true, default: { source: "newId" } },
          { name: "Name", type: "text" },
          { name: first, type: "lookup", referenceSchema: "Contact" },
          { name: second, type: "lookup", referenceSchema: "Contact" },
        ],
      });
      const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice A" });
      const record = Entity.create(admin, "UsrLongLookups");
      record.setDefColumnValues();
      record.setColumnValue("Name", "both");
      record.setColumnValue(first, alice.contactId);
      record.setColumnValue(second, SystemIds.SupervisorContactId);
      await record.save();
      const rows = await new EntitySchemaQuery(admin, "UsrLongLookups")
        .addColumn("Name")
        .addColumn(`${first}.Name`)
        .addColumn(`${second}.Name`)
        .addFilter(`${first}.Name`, "startsWith", "Alice")
        .orderBy(`${second}.Name`)
        .getEntityCollection();
      assert.deepEqual(
        rows.map((r) => [r.Name, r[`${first}.Name`], r[`${second}.Name`]]),
        [["both", "Alice A", "Supervisor"]],
      );
    });

    it("refuses schema and column names longer than PostgreSQL's 63-byte identifiers, a lookup's with its Id, on both stores", async () => {
      const platform = await startPlatform(store, { isolation: "none" });
      const admin = platform.appConnection.systemUserConnection;
      const manager = platform.entitySchemaManager;
      const named = (n: number, start = "Usr") => `${start}${"Abcdefghij".repeat(7)}`.slice(0, n);
      const id = { name: "Id", type: "guid", required: true, default: { source: "newId" } } as const;
      const schemaOf = (name: string, ...columns: ColumnDefinition[]): EntitySchemaDefinition => ({ name, primaryDisplayColumn: "Name", columns: [id, { name: "Name", type: "text" }, ...columns] });
      const limit = "a table or column name may be at most 63 bytes (UTF-8), the longest identifier PostgreSQL keeps whole";

      // The longest names there are: a table of 63 bytes, a column of 63, and a lookup of 61 whose column is 63.
      const [table, text, lookup] = [named(63), named(63, "Txt"), named(61, "Lkp")];
      await platform.db.schema
        .createTable(table)
        .addColumn("Id", "text", (c) => c.primaryKey())
        .addColumn("Name", "text")
        .addColumn(text, "text")
        .addColumn(`${lookup}Id`, "text")
        .execute();
      manager.register(schemaOf(table, { name: text, type: "text" }, { name: lookup, type: "lookup", referenceSchema: "Contact" }));

      // A lookup of 62 to 64 characters would be stored as 64 to 66 bytes, which PostgreSQL cut to 63
      // (its value read back as null); a column or schema of 64, the same. Refused as it is
      // registered, on SQLite too, and an earlier schema of that name is kept.
      for (const n of [62, 63, 64]) {
        const name = named(n, "Lkp");
        assert.throws(
          () => manager.register(schemaOf(table, { name, type: "lookup", referenceSchema: "Contact" })),
          (e: unknown) =>
            e instanceof Error &&
            e.message === `schema ${table}: the lookup column ${name} is stored as ${name}Id, ${n + 2} bytes long: ${limit}, so a lookup's name at most 61 (its column adds "Id")`,
        );
      }
      const column = named(64, "Txt");
      assert.throws(
        () => manager.register(schemaOf("UsrOther", { name: column, type: "text" })),
        (e: unknown) => e instanceof Error && e.message === `schema UsrOther: the column ${column} is 64 bytes long: ${limit}`,
      );
      assert.equal(manager.findInstanceByName("UsrOther"), undefined);
      const longTable = named(64);
      assert.throws(() => manager.register(schemaOf(longTable)), (e: unknown) => e instanceof Error && e.message === `schema ${longTable}: its name, its table's, is 64 bytes long: ${limit}`);
      assert.equal(manager.findInstanceByName(longTable), undefined);
      assert.equal(manager.getInstanceByName(table).findColumn(text)?.type, "text");

      // The longest names work on the store: a lookup saved is read back, and shown.
      const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice A" });
      const record = Entity.create(admin, table);
      record.setDefColumnValues();
      record.setColumnValue("Name", "longest");
      record.setColumnValue(text, "some text");
      record.setColumnValue(lookup, alice.contactId);
      await record.save();
      const read = Entity.create(admin, table);
      assert.equal(await read.fetchFromDB(record.id ?? ""), true);
      assert.deepEqual([read.getColumnValue(text), read.getColumnValue(lookup)], ["some text", alice.contactId]);
      const rows = await new EntitySchemaQuery(admin, table).addColumn(text).addColumn(`${lookup}.Name`).getEntityCollection();
      assert.deepEqual(
        rows.map((r) => [r[text], r[`${lookup}.Name`]]),
        [["some text", "Alice A"]],
      );
    });

    it("refuses two columns of one schema by one name, a lookup's stored <name>Id or a system column's, in any letter case, on both stores", async () => {
      const platform = await startPlatform(store, { isolation: "none" });
      const admin = platform.appConnection.systemUserConnection;
      const manager = platform.entitySchemaManager;
      const id = { name: "Id", type: "guid", required: true, default: { source: "newId" } } as const;
      const schemaOf = (name: string, ...columns: ColumnDefinition[]): EntitySchemaDefinition => ({ name, primaryDisplayColumn: "Name", columns: [id, { name: "Name", type: "text" }, ...columns] });
      const owner = { name: "Owner", type: "lookup", referenceSchema: "Contact" } as const;
      const lookupOwner = "the lookup column Owner (to Contact, stored as OwnerId)";
      const own = "each column needs a name, and a lookup a stored name (<name>Id), of its own";
      const caseOnly = "which SQLite ignores (one column) and PostgreSQL does not (two columns): names and stored names (a lookup's <name>Id) must differ in more than letter case";

      // Names that merely begin alike are columns of their own; the system columns, as the platform's schemas have them.
      await platform.db.schema
        .createTable("UsrClash")
        .addColumn("Id", "text", (c) => c.primaryKey())
        .addColumn("Name", "text")
        .addColumn("OwnerId", "text")
        .addColumn("OwnerName", "text")
        .addColumn("CreatedOn", store === "postgres" ? "timestamptz" : "integer")
        .addColumn("CreatedById", "text")
        .execute();
      manager.register(
        schemaOf(
          "UsrClash",
          owner,
          { name: "OwnerName", type: "text" },
          { name: "CreatedOn", type: "datetime" },
          { name: "CreatedBy", type: "lookup", referenceSchema: "Contact" },
        ),
      );

      const refusals: [ColumnDefinition[], string][] = [
        // The second column would have replaced the first in the lookup by name.
        [[{ name: "Name", type: "integer" }], `the text column Name and the integer column Name clash: the schema would find both by the name Name, and the table would hold both in its one column Name: ${own}`],
        [[owner, owner], `${lookupOwner} and ${lookupOwner} clash: the schema would find both by the name Owner, and the table would hold both in its one column OwnerId: ${own}`],
        // A column named as a lookup is stored, before or after it.
        [[owner, { name: "OwnerId", type: "text" }], `${lookupOwner} and the text column OwnerId clash: the schema would find both by the name OwnerId, and the table would hold both in its one column OwnerId: ${own}`],
        [[{ name: "OwnerId", type: "guid" }, owner], `the guid column OwnerId and ${lookupOwner} clash: the schema would find both by the name OwnerId, and the table would hold both in its one column OwnerId: ${own}`],
        [[{ name: "Owner", type: "text" }, owner], `the text column Owner and ${lookupOwner} clash: the schema would find both by the name Owner: ${own}`],
        // One column on SQLite, two on PostgreSQL.
        [[{ name: "NAME", type: "text" }], `the text column Name and the text column NAME clash: Name and NAME differ only in letter case, ${caseOnly}`],
        [[owner, { name: "OWNERID", type: "text" }], `${lookupOwner} and the text column OWNERID clash: OwnerId and OWNERID differ only in letter case, ${caseOnly}`],
        [[owner, { name: "OWNER", type: "lookup", referenceSchema: "Contact" }], `${lookupOwner} and the lookup column OWNER (to Contact, stored as OWNERId) clash: Owner and OWNER differ only in letter case, ${caseOnly}`],
        [[{ name: "ID", type: "guid" }], `the guid column Id and the guid column ID clash: Id and ID differ only in letter case, ${caseOnly}`],
        // The columns the platform writes by name are those columns, or none.
        [
          [{ name: "CreatedOn", type: "text" }],
          "the text column CreatedOn clashes with the system column CreatedOn, stamped with the time a record is added: a column of that name, in any letter case, must be a datetime column CreatedOn",
        ],
        [
          [{ name: "ModifiedOn", type: "lookup", referenceSchema: "Contact" }],
          "the lookup column ModifiedOn (to Contact, stored as ModifiedOnId) clashes with the system column ModifiedOn, stamped with the time a record is saved: a column of that name, in any letter case, must be a datetime column ModifiedOn",
        ],
        [
          [{ name: "CreatedById", type: "text" }],
          "the text column CreatedById clashes with the system column CreatedBy, stamped (as CreatedById) with the contact of the user who adds a record: a column of that name (or stored name CreatedById), in any letter case, must be a lookup column CreatedBy to Contact",
        ],
        [
          [{ name: "ModifiedBy", type: "lookup", referenceSchema: "ActivityType" }],
          "the lookup column ModifiedBy (to ActivityType, stored as ModifiedById) clashes with the system column ModifiedBy, stamped (as ModifiedById) with the contact of the user who saves a record: a column of that name (or stored name ModifiedById), in any letter case, must be a lookup column ModifiedBy to Contact",
        ],
        [
          [{ name: "Modifiedon", type: "datetime" }],
          "the datetime column Modifiedon clashes with the system column ModifiedOn, stamped with the time a record is saved: a column of that name, in any letter case, must be a datetime column ModifiedOn",
        ],
      ];
      for (const [columns, why] of refusals) {
        for (const name of ["UsrClash", "UsrClashOther"]) {
          assert.throws(
            () => manager.register(schemaOf(name, ...columns)),
            (e: unknown) => e instanceof Error && e.message === `schema ${name}: ${why}`,
          );
        }
      }
      // The record's key itself: a lookup Id would be stored as IdId.
      assert.throws(
        () => manager.register({ name: "UsrClashOther", primaryDisplayColumn: "Name", columns: [{ name: "Id", type: "lookup", referenceSchema: "Contact" }, { name: "Name", type: "text" }] }),
        (e: unknown) =>
          e instanceof Error &&
          e.message ===
            "schema UsrClashOther: the lookup column Id (to Contact, stored as IdId) clashes with the system column Id, the record's key, which the platform fills with a new GUID and finds records by: a column of that name, in any letter case, must be a guid column Id",
      );

      // Nothing refused was registered; the earlier UsrClash is kept, and works; the platform's own schemas are there.
      assert.equal(manager.findInstanceByName("UsrClashOther"), undefined);
      const kept = manager.getInstanceByName("UsrClash");
      assert.deepEqual(
        kept.columns.map((c) => [c.name, c.type]),
        [
          ["Id", "guid"],
          ["Name", "text"],
          ["Owner", "lookup"],
          ["OwnerName", "text"],
          ["CreatedOn", "datetime"],
          ["CreatedBy", "lookup"],
        ],
      );
      assert.equal(kept.findColumn("OwnerId"), kept.findColumn("Owner"));
      for (const name of ["Contact", "Activity", "ActivityType", "ActivityCategory", "ActivityStatus", "ActivityPriority"]) assert.ok(manager.findInstanceByName(name), name);
      const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice A" });
      const record = Entity.create(admin, "UsrClash");
      record.setDefColumnValues();
      record.setColumnValue("Name", "kept");
      record.setColumnValue("OwnerId", alice.contactId);
      record.setColumnValue("OwnerName", "Alice");
      await record.save();
      const read = Entity.create(admin, "UsrClash");
      assert.equal(await read.fetchFromDB(record.id ?? ""), true);
      assert.deepEqual([read.getColumnValue("Owner"), read.getColumnValue("OwnerName"), read.getColumnValue("CreatedById")], [alice.contactId, "Alice", SystemIds.SupervisorContactId]);
      assert.ok(read.getColumnValue("CreatedOn") instanceof Date);
    });

    it("searches text in any case alike on both stores: Σ, σ and ς are one letter, İ is i", async () => {
      const platform = await startPlatform(store, { isolation: "none" });
      const admin = platform.appConnection.systemUserConnection;
      for (const title of ["ΟΔΟΣΤΡΩΜΑ", "ΟΔΟΣ", "οδος", "İSTANBUL", "istanbul"]) {
        const a = new Activity(admin);
        a.setDefColumnValues();
        a.title = title;
        await a.save();
      }
      const titles = async (comparison: "contains" | "startsWith", text: string) =>
        (await new EntitySchemaQuery(admin, "Activity").addColumn("Title").addFilter("Title", comparison, text).orderBy("Title").getEntityCollection()).map((r) => r.Title);
      // JavaScript's toLowerCase (SQLite's lower()) makes a Σ at the end of a word a ς, so a
      // search for ΟΔΟΣ found ΟΔΟΣΤΡΩΜΑ on PostgreSQL only, and οδος found ΟΔΟΣ on SQLite only.
      const greek = ["ΟΔΟΣ", "ΟΔΟΣΤΡΩΜΑ", "οδος"];
      assert.deepEqual(await titles("contains", "ΟΔΟΣ"), greek);
      assert.deepEqual(await titles("contains", "οδος"), greek);
      assert.deepEqual(await titles("startsWith", "οδοσ"), greek);
      assert.deepEqual(await titles("contains", "ΣΤΡ"), ["ΟΔΟΣΤΡΩΜΑ"]);
      assert.deepEqual(await titles("contains", "ςτρ"), ["ΟΔΟΣΤΡΩΜΑ"]);
      // And it made İ an i with a combining dot, which PostgreSQL's lower() does not.
      assert.deepEqual(await titles("contains", "istanbul"), ["istanbul", "İSTANBUL"]);
      assert.deepEqual(await titles("startsWith", "İST"), ["istanbul", "İSTANBUL"]);
      assert.deepEqual(await titles("contains", "STANBUL"), ["istanbul", "İSTANBUL"]);
    });

    it("reads a lookup's display value with the rights on its own schema: none to read Contact, no names", async () => {
      const platform = await startPlatform(store);
      const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice Secret" });
      const bob = await platform.users.create({ login: "bob", password: "bob-pass", contactName: "Bob B" });
      const bobUc = platform.userConnection(bob);
      const given = new Activity(bobUc);
      given.title = "Owned by Alice";
      given.setDefColumnValues();
      given.ownerId = alice.contactId;
      await given.save();
      const query = (uc = platform.userConnection(bob)) =>
        new EntitySchemaQuery(uc, "Activity").addColumn("Title").addColumn("Owner.Name").addColumn("Status.Name");
      assert.deepEqual(
        (await query().getEntityCollection()).map((r) => [r.Title, r["Owner.Name"], r["Status.Name"]]),
        [["Owned by Alice", "Alice Secret", "Not started"]],
      );
      // An administrator takes the employees' right to read contacts.
      await sql`UPDATE ${sql.table("SysSchemaRight")} SET ${sql.ref("CanRead")} = ${store === "postgres" ? sql`false` : sql`0`} WHERE ${sql.ref("SchemaName")} = 'Contact'`.execute(platform.db);
      await assert.rejects(new EntitySchemaQuery(platform.userConnection(bob), "Contact").addColumn("Name").getEntityCollection(), EntitySecurityError);
      assert.deepEqual(
        (await query().getEntityCollection()).map((r) => [r.Title, r["Owner.Name"], r["Status.Name"]]),
        [["Owned by Alice", null, "Not started"]],
      );
      // Nor found by filtering or sorting on it.
      assert.deepEqual(await query().addFilter("Owner.Name", "startsWith", "Alice").getEntityCollection(), []);
      assert.equal((await query().addFilter("Owner.Name", "isNull").getEntityCollection()).length, 1);
      // Without rights checks (system work), and for administrators, the names are there.
      const unchecked = query();
      unchecked.useAdminRights = false;
      assert.equal((await unchecked.getEntityCollection())[0]?.["Owner.Name"], "Alice Secret");
      assert.equal((await query(platform.appConnection.systemUserConnection).getEntityCollection())[0]?.["Owner.Name"], "Alice Secret");
    });

    it("reads a lookup to a schema with record rights only where the user may see the record", async () => {
      const platform = await startPlatform(store);
      const alice = await platform.users.create({ login: "alice", password: "alice-pass" });
      const bob = await platform.users.create({ login: "bob", password: "bob-pass" });
      // A schema of its own whose lookup points at Activity (record rights: author and owner only).
      await platform.db.schema
        .createTable("UsrNote")
        .addColumn("Id", "text", (c) => c.primaryKey())
        .addColumn("Name", "text")
        .addColumn("ActivityId", "text")
        .execute();
      platform.entitySchemaManager.register({
        name: "UsrNote",
        primaryDisplayColumn: "Name",
        columns: [
          { name: "Id", type: "guid", required: true, default: { source: "newId" } },
          { name: "Name", type: "text" },
          { name: "Activity", type: "lookup", referenceSchema: "Activity" },
        ],
      });
      await sql`INSERT INTO ${sql.table("SysSchemaRight")} (${sql.ref("RoleId")}, ${sql.ref("SchemaName")}, ${sql.ref("CanRead")}, ${sql.ref("CanInsert")}, ${sql.ref("CanUpdate")}, ${sql.ref("CanDelete")})
        VALUES (${SystemIds.AllEmployeesRoleId}, 'UsrNote', ${store === "postgres" ? sql`true, true, true, true` : sql`1, 1, 1, 1`})`.execute(platform.db);
      const activityOf = async (user: typeof alice, title: string) => {
        const activity = new Activity(platform.userConnection(user));
        activity.setDefColumnValues();
        activity.title = title;
        await activity.save();
        return activity.id;
      };
      for (const [name, activityId] of [
        ["about Alice's", await activityOf(alice, "Alice's private call")],
        ["about Bob's", await activityOf(bob, "Bob's call")],
      ] as const) {
        const note = Entity.create(platform.userConnection(bob), "UsrNote");
        note.setDefColumnValues();
        note.setColumnValue("Name", name);
        note.setColumnValue("Activity", activityId);
        await note.save();
      }
      const titles = async (user: typeof alice) =>
        (await new EntitySchemaQuery(platform.userConnection(user), "UsrNote").addColumn("Name").addColumn("Activity.Title").orderBy("Name").getEntityCollection()).map((r) => [
          r.Name,
          r["Activity.Title"],
        ]);
      assert.deepEqual(await titles(bob), [
        ["about Alice's", null],
        ["about Bob's", "Bob's call"],
      ]);
      assert.deepEqual(await titles(alice), [
        ["about Alice's", "Alice's private call"],
        ["about Bob's", null],
      ]);
      const filtered = await new EntitySchemaQuery(platform.userConnection(bob), "UsrNote").addColumn("Name").addFilter("Activity.Title", "contains", "private").getEntityCollection();
      assert.deepEqual(filtered, []);
    });

    it("runs a task, isolated in a thread, as the user who started it: the Activity is A's; a deactivated user is refused", async () => {
      const platform = await startPlatform(store, { tasks: [CreateActivityTask, WhoTask] });
      const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice A" });
      const threads = join(tempDir(), "threads.txt");
      const handle = await platform.runAs(alice, () => Task.startNewWithUserConnection(CreateActivityTask, { title: "Made in the background", file: threads }));
      assert.equal((await handle.wait({ timeoutMs: 10_000 })).state, "succeeded");
      assert.notEqual(readFileSync(threads, "utf8").trim(), "0", "the task ran in a worker thread");
      const rows = await new EntitySchemaQuery(platform.userConnection(alice), "Activity").addColumn("Title").addColumn("OwnerId").addColumn("AuthorId").getEntityCollection();
      assert.deepEqual(rows.map((r) => [r.Title, r.OwnerId, r.AuthorId]), [["Made in the background", alice.contactId, alice.contactId]]);

      const bob = await platform.users.create({ login: "bob", password: "bob-pass" });
      await platform.runtime.worker?.stop({ graceMs: 1_000 });
      const refused = await platform.runAs(bob, () => Task.startNewWithUserConnection(CreateActivityTask, { title: "never" }));
      await platform.users.setActive(bob.id, false);
      const fresh = await platform.runtime.getTask(refused.id);
      assert.equal(fresh.state, "queued");
      platform.runtime.worker?.start();
      const error = (await refused.wait({ timeoutMs: 10_000 }).catch((e: unknown) => e)) as { task: { state: string; attempt: number; lastError: { name: string; message: string } } };
      assert.equal(error.task.state, "dead");
      assert.equal(error.task.attempt, 1);
      assert.equal(error.task.lastError.name, "TaskSecurityError");
      assert.match(error.task.lastError.message, /bob who started the task has been deactivated/);
    });

    it("never lets interleaved tasks of two users see each other's user", async () => {
      const platform = await startPlatform(store, { tasks: [WhoTask], worker: { concurrency: 8 } });
      const carol = await platform.users.create({ login: "carol", password: "carol-pass" });
      const dave = await platform.users.create({ login: "dave", password: "dave-pass" });
      const file = join(tempDir(), "seen.txt");
      const handles = [];
      for (let i = 0; i < 20; i++) {
        const user = i % 2 ? carol : dave;
        handles.push(await platform.runAs(user, () => Task.startNewWithUserConnection(WhoTask, { expected: user.name, file })));
      }
      for (const h of handles) await h.wait({ timeoutMs: 10_000 });
      const seenUsers = readFileSync(file, "utf8").trim().split("\n");
      assert.equal(seenUsers.length, 20);
      for (const entry of seenUsers) {
        const [expected, actual] = entry.split("=");
        assert.equal(actual, expected);
      }
    });
  });
}
