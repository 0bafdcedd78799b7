/**
 * Dates are stored as the instants they are, whatever Node's time zone. Under a zone whose
 * historical offset has seconds (Europe/Berlin before 1893: +00:53:28), PostgreSQL was once given
 * local text with the offset cut to minutes, and moved such dates by those seconds.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Activity } from "../../src/platform/entities/activity.ts";
import { STORES, startPlatform } from "./helpers.ts";

const INSTANTS = ["0001-01-01T00:00:00.000Z", "1850-06-01T12:34:56.789Z", "1892-12-31T23:59:59.999Z", "1970-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"];

describe("entity dates under a time zone with historical offsets in seconds", () => {
  const zone = process.env.TZ;
  before(() => {
    process.env.TZ = "Europe/Berlin";
  });
  after(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });

  for (const store of STORES) {
    it(`keeps each instant exactly on ${store}`, async () => {
      // Node reads TZ as it changes; the offset it gives is cut to whole minutes (53:28 -> 53).
      assert.equal(new Date("1850-06-01T12:00:00Z").getTimezoneOffset(), -53);
      const platform = await startPlatform(store, { isolation: "none" });
      const admin = platform.appConnection.systemUserConnection;
      for (const instant of INSTANTS) {
        const a = new Activity(admin);
        a.title = instant;
        a.setDefColumnValues();
        a.startDate = new Date(instant);
        await a.save();
        const read = new Activity(admin);
        assert.equal(await read.fetchFromDB(a.id!), true);
        assert.equal(read.startDate?.toISOString(), instant);
      }
    });
  }
});
