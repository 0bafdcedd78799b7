/**
 * Times the task centre's queries on a SQLite store of 1,000,000 tasks (the figures in
 * docs/web.md): node --import tsx tools/task-centre-million.ts
 */
import Database from "better-sqlite3";
import { SqliteDriver } from "../src/store/sqlite/driver.ts";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
const path = join(tmpdir(), "underway-million.db");
for (const f of [path, path + "-wal", path + "-shm"]) rmSync(f, { force: true });
const d = new SqliteDriver({ path, watch: false });
await d.migrate();
await d.close();
const db = new Database(path);
const now = Date.now();
const insert = db.prepare(`INSERT INTO underway_tasks (name, queue, state, parameters, run_at, max_attempts, user_id, created_at, finished_at, updated_at, attempt)
  VALUES (?, ?, ?, x'80', ?, 3, ?, ?, ?, ?, 1)`);
const states = ["succeeded", "succeeded", "succeeded", "succeeded", "succeeded", "succeeded", "succeeded", "dead", "canceled", "queued"];
db.transaction(() => {
  for (let i = 0; i < 1_000_000; i++) {
    const t = now - (1_000_000 - i) * 10;
    const s = states[i % 10] ?? "queued";
    insert.run(i % 100 === 0 ? "RareTask" : "Common", "default", s, t, `user${i % 50}`, t, s === "queued" ? null : t, t);
  }
})();
db.close();
const driver = new SqliteDriver({ path, watch: false });
await driver.migrate();
const time = async (label: string, fn: () => Promise<unknown>) => {
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) await fn();
  console.log(label.padEnd(40), ((performance.now() - t0) / 5).toFixed(2), "ms");
};
await time("list newest 50", () => driver.taskList({ limit: 51 }));
await time("list state=dead", () => driver.taskList({ states: ["dead"], limit: 51 }));
await time("list user", () => driver.taskList({ userId: "user7", limit: 51 }));
await time("list user+state", () => driver.taskList({ userId: "user7", states: ["canceled"], limit: 51 }));
await time("list name=RareTask", () => driver.taskList({ name: "RareTask", limit: 51 }));
await time("list deep page before=500000", () => driver.taskList({ beforeId: "500000", limit: 51 }));
await time("counts up to 10k (admin)", () => driver.taskCountByStateUpTo({ cap: 10_000 }));
await time("counts up to 10k (user)", () => driver.taskCountByStateUpTo({ cap: 10_000, userId: "user7" }));
await time("change mark", () => driver.taskChangeMark());
await time("activity buckets last hour", () => driver.taskActivityBuckets({ windowMs: 3_600_000, bucketMs: 60_000 }));
await time("(old) count(*) group by state", () => driver.taskCountByState());
await driver.close();
for (const f of [path, path + "-wal", path + "-shm"]) rmSync(f, { force: true });
