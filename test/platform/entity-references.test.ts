/**
 * Deleting a record others refer to is refused, and nothing is deleted: a user's contact, a
 * contact an Activity's lookups name. On PostgreSQL, a save and a delete that cross wait for each
 * other instead of leaving a reference to nothing, and an update's rights are those of the record
 * as it is written.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sql } from "../../src/platform/db/kysely-module.ts";
import { Activity } from "../../src/platform/entities/activity.ts";
import { Entity } from "../../src/platform/entities/entity.ts";
import { EntityInUseError, EntitySecurityError } from "../../src/platform/entities/errors.ts";
import { SystemIds } from "../../src/platform/constants.ts";
import type { Platform } from "../../src/platform/platform.ts";
import type { UserConnection } from "../../src/platform/user-connection.ts";
import { until } from "../helpers.ts";
import { STORES, startPlatform } from "./helpers.ts";

async function contact(uc: UserConnection, name: string): Promise<Entity> {
  const c = Entity.create(uc, "Contact");
  c.setColumnValue("Name", name);
  c.setDefColumnValues();
  await c.save();
  return c;
}

async function activity(uc: UserConnection, title: string, ownerId: string): Promise<Activity> {
  const a = new Activity(uc);
  a.title = title;
  a.setDefColumnValues();
  a.ownerId = ownerId;
  await a.save();
  return a;
}

async function exists(platform: Platform, schema: string, id: string): Promise<boolean> {
  const e = Entity.create(platform.appConnection.systemUserConnection, schema);
  e.useAdminRights = false;
  return e.fetchFromDB(id);
}

/** Resolves once a backend of this database waits for a lock in a statement that matches. */
function lockWaitOf(platform: Platform, pattern: string): Promise<unknown> {
  return until(async () => {
    const { rows } = await sql<{ n: number | string }>`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE ${pattern}`.execute(platform.db);
    return Number(rows[0]?.n) > 0 ? true : null;
  }, `a statement like ${pattern} to wait for a lock`);
}

/** An open transaction of the platform's store that runs `work`, then waits until released. */
function holdOpen(platform: Platform, work: () => Promise<void>): { ready: Promise<void>; release: () => void; done: Promise<void> } {
  let release!: () => void;
  let ready!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const readyPromise = new Promise<void>((r) => (ready = r));
  const done = platform.runtime.transaction(async () => {
    await work();
    ready();
    await released;
  });
  return { ready: readyPromise, release, done };
}

for (const store of STORES) {
  describe(`entity references on ${store}`, () => {
    it("refuses to delete a user's contact, the Supervisor's too, and the user still signs in", async () => {
      const platform = await startPlatform(store, { isolation: "none" });
      const admin = platform.appConnection.systemUserConnection;
      const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice A" });
      for (const [contactId, login] of [
        [alice.contactId, "alice"],
        [SystemIds.SupervisorContactId, "Supervisor"],
      ] as const) {
        const c = Entity.create(admin, "Contact");
        assert.equal(await c.fetchFromDB(contactId), true);
        await assert.rejects(c.delete(), (e: unknown) => {
          assert.ok(e instanceof EntityInUseError, String(e));
          assert.equal(e.message, `Contact record ${contactId} cannot be deleted: 1 user (as its contact) refers to it`);
          return true;
        });
        assert.equal(await exists(platform, "Contact", contactId), true);
        assert.equal((await platform.users.getByLogin(login))?.contactId, contactId);
      }
      assert.ok(await platform.sessions.signIn("alice", "alice-pass"));
    });

    it("refuses to delete a contact an Activity's lookup names, counted per column; who created a record does not count", async () => {
      const platform = await startPlatform(store, { isolation: "none" });
      const admin = platform.appConnection.systemUserConnection;
      const owner = await contact(admin, "Owner O");
      const first = await activity(admin, "first", owner.id!);
      const second = await activity(admin, "second", owner.id!);
      const deleting = Entity.create(admin, "Contact");
      assert.equal(await deleting.fetchFromDB(owner.id!), true);
      await assert.rejects(deleting.delete(), new RegExp(`^EntityInUseError: Contact record ${owner.id} cannot be deleted: 2 Activity records \\(Owner\\) refer to it$`));
      assert.equal(await exists(platform, "Contact", owner.id!), true);

      assert.equal(await first.delete(), true);
      assert.equal(await second.delete(), true);
      // A contact that only created and changed records (CreatedBy, ModifiedBy) can go.
      const bob = await platform.users.create({ login: "bob", password: "bob-pass" });
      const made = await activity(platform.userConnection(bob), "made by bob", bob.contactId);
      made.ownerId = owner.id;
      await made.save();
      made.ownerId = SystemIds.SupervisorContactId;
      await made.save();
      assert.equal(await deleting.fetchFromDB(owner.id!), true);
      assert.equal(await deleting.delete(), true);
      assert.equal(await exists(platform, "Contact", owner.id!), false);
    });

    if (store === "postgres") {
      it("a delete waits for a save that names the record, then refuses; a save waits for a delete, then finds nothing to name", async () => {
        const platform = await startPlatform(store, { isolation: "none" });
        const admin = platform.appConnection.systemUserConnection;
        const target = await contact(admin, "Target T");

        // The save first: the delete waits for it, and then sees its reference.
        const saving = holdOpen(platform, async () => void (await activity(admin, "names the target", target.id!)));
        await saving.ready;
        const deleting = Entity.create(admin, "Contact");
        assert.equal(await deleting.fetchFromDB(target.id!), true);
        // Its refusal is expected from the start: it may come before the save's end is seen.
        const deleted = assert.rejects(deleting.delete(), EntityInUseError);
        // It waits as it reads the record to delete (the save holds it in share mode).
        await lockWaitOf(platform, '%from "Contact"%for update%').finally(saving.release);
        await saving.done;
        await deleted;
        assert.equal(await exists(platform, "Contact", target.id!), true);

        // The delete first: the save waits for it, and then finds no such contact.
        const other = await contact(admin, "Other O");
        const removing = holdOpen(platform, async () => {
          const c = Entity.create(admin, "Contact");
          assert.equal(await c.fetchFromDB(other.id!), true);
          assert.equal(await c.delete(), true);
        });
        await removing.ready;
        const naming = assert.rejects(activity(admin, "names the other", other.id!), /Activity.OwnerId refers to no Contact record/);
        await lockWaitOf(platform, '%from "Contact"%for share%').finally(removing.release);
        await removing.done;
        await naming;
      });

      it("an update's rights are checked against the record as it is written, not as it was before another's change", async () => {
        const platform = await startPlatform(store, { isolation: "none" });
        const admin = platform.appConnection.systemUserConnection;
        const alice = await platform.users.create({ login: "alice", password: "alice-pass" });
        const bob = await platform.users.create({ login: "bob", password: "bob-pass" });
        const record = await activity(platform.userConnection(bob), "Bob's for now", bob.contactId);
        const bobsCopy = new Activity(platform.userConnection(bob));
        assert.equal(await bobsCopy.fetchFromDB(record.id!), true);

        // The administrator hands the record to Alice, in a transaction still open.
        const handing = holdOpen(platform, async () => {
          const a = new Activity(admin);
          assert.equal(await a.fetchFromDB(record.id!), true);
          a.ownerId = alice.contactId;
          a.setColumnValue("Author", alice.contactId);
          await a.save();
        });
        await handing.ready;
        bobsCopy.title = "Bob was here";
        const bobSaves = assert.rejects(bobsCopy.save(), EntitySecurityError);
        await lockWaitOf(platform, '%from "Activity"%for update%').finally(handing.release);
        await handing.done;
        await bobSaves;
        const now = new Activity(admin);
        assert.equal(await now.fetchFromDB(record.id!), true);
        assert.equal(now.title, "Bob's for now");
      });
    }
  });
}
