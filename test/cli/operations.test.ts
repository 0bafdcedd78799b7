/** `underway stats`, `underway schedules list|pause|resume` and `underway dead list|requeue`, on both stores. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { taskDetails } from "../../src/cli/format.ts";
import { Task, type IBackgroundTask } from "../../src/index.ts";
import { PostgresDriver } from "../../src/store/postgres/driver.ts";
import { SqliteDriver } from "../../src/store/sqlite/driver.ts";
import { TEST_POSTGRES_URL, tempDb, tempDir, tempSchema } from "../helpers.ts";
import { runtimeOn } from "../scheduling/stores.ts";

const dir = tempDir();
const root = join(import.meta.dirname, "..", "..");

function underway(db: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, "bin", "underway.mjs"), ...args, "--db", db], {
    cwd: root,
    env: { ...process.env, UNDERWAY_LOG_LEVEL: "warn", UNDERWAY_DB: "" },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

class Report implements IBackgroundTask<{ n: number }> {
  run(): void {}
}

class Doomed implements IBackgroundTask<{ n: number }> {
  static readonly taskOptions = { maxAttempts: 1 };
  run(): void {
    throw new Error("doomed");
  }
}

for (const store of ["sqlite", "postgres"] as const) {
  describe(`underway CLI: stats, schedules, dead letters (${store})`, () => {
    const schema = store === "postgres" ? tempSchema() : "";
    const db = store === "sqlite" ? tempDb(dir) : `${TEST_POSTGRES_URL}?schema=${schema}`;
    const open = () => (store === "sqlite" ? new SqliteDriver({ path: db }) : new PostgresDriver({ connectionString: TEST_POSTGRES_URL, schema, poolSize: 2 }));

    it("shows counts per state and type, and throughput per minute", async () => {
      const runtime = await runtimeOn(open, { tasks: [Report, Doomed] });
      const done = await runtime.run(() => Task.startNewMany(Report, [{ n: 1 }, { n: 2 }, { n: 3 }]));
      const doomed = await runtime.run(() => Task.startNew(Doomed, { n: 1 }));
      await Promise.all(done.map((h) => h.wait({ timeoutMs: 5_000 })));
      await assert.rejects(doomed.wait({ timeoutMs: 5_000 }));
      await runtime.run(() => Task.startNew(Report, { n: 4 }, { delayMs: 3_600_000 }));
      const r = underway(db, "stats", "--minutes", "5");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /│ Report +│ 1 +│ 0 +│ 3 +│ 0 +│ 0 +│ 0 +│/);
      assert.match(r.stdout, /│ Doomed +│ 0 +│ 0 +│ 0 +│ 0 +│ 1 +│ 0 +│/);
      assert.match(r.stdout, /│ \(all\) +│ 1 +│ 0 +│ 3 +│ 0 +│ 1 +│ 0 +│/);
      assert.match(r.stdout, /tasks ended per minute, last 5 min \(0\.8\/min on average\)/);
      assert.match(r.stdout, /│ \d{4}-\d\d-\d\d \d\d:\d\dZ │ 3 +│ 1 +│ 0 +│ 4 +│/);
      const json = JSON.parse(underway(db, "stats", "--json").stdout) as { counts: { name: string; state: string; count: number }[] };
      assert.ok(json.counts.some((c) => c.name === "Report" && c.state === "succeeded" && c.count === 3));
      assert.match(underway(db, "stats", "--minutes", "0").stderr, /expected whole minutes from 1 to 1440/);
    });

    it("lists, pauses and resumes schedules", async () => {
      const runtime = await runtimeOn(open, {
        worker: false,
        tasks: [Report],
        schedules: [{ name: "nightly-report", cron: "0 2 * * *", timeZone: "Europe/Berlin", task: Report, parameters: { n: 0 } }],
      });
      const listed = underway(db, "schedules", "list");
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /nightly-report .*0 2 \* \* \* .*Europe\/Berlin .*Report .*once .*active/);
      const paused = underway(db, "schedules", "pause", "nightly-report");
      assert.equal(paused.code, 0, paused.stderr);
      assert.match(paused.stdout, /schedule nightly-report paused/);
      assert.equal((await runtime.listSchedules())[0]?.paused, true);
      // Pausing one that is paused changes nothing, and says so (as resume does).
      const pausedAgain = underway(db, "schedules", "pause", "nightly-report");
      assert.equal(pausedAgain.code, 0, pausedAgain.stderr);
      assert.match(pausedAgain.stdout, /^schedule nightly-report is already paused: nothing changed$/m);
      assert.equal((await runtime.listSchedules())[0]?.paused, true);
      assert.match(underway(db, "schedules", "list").stdout, /nightly-report .*paused/);
      const resumed = underway(db, "schedules", "resume", "nightly-report");
      assert.match(resumed.stdout, /schedule nightly-report resumed; next run \d{4}-\d\d-\d\d (00|01):00:00Z/);
      assert.equal((await runtime.listSchedules())[0]?.paused, false);
      // Resuming one that runs changes nothing: its next run (a missed tick's too) stays due.
      const next = (await runtime.listSchedules())[0]?.nextRunAt;
      const again = underway(db, "schedules", "resume", "nightly-report");
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /schedule nightly-report is not paused: nothing changed; next run /);
      assert.equal((await runtime.listSchedules())[0]?.nextRunAt?.getTime(), next?.getTime());
      const unknown = underway(db, "schedules", "pause", "weekly");
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no schedule named "weekly"; schedules: nightly-report/);
    });

    it("lists dead letters and requeues one, or all matching a filter", async () => {
      const runtime = await runtimeOn(open, { worker: false, tasks: [Doomed] });
      const handles = await runtime.run(() => Task.startNewMany(Doomed, [{ n: 1 }, { n: 2 }, { n: 3 }], { queue: "letters" }));
      const other = await runtime.run(() => Task.startNew(Doomed, { n: 4 }, { queue: "other" }));
      // Fail them for good through the store, as a worker would.
      const runs = await runtime.driver.taskClaim({ workerId: "w", limit: 10, leaseMs: 60_000 });
      await runtime.driver.taskCompleteMany(runs.map((r) => ({ kind: "failed" as const, id: r.id, runSeq: r.runSeq, attempt: 1, error: { name: "Error", message: "doomed" }, retryDelayMs: null })));
      const listed = underway(db, "dead", "list", "--queue", "letters");
      assert.equal(listed.code, 0, listed.stderr);
      for (const h of handles) assert.match(listed.stdout, new RegExp(`${h.id} .*Doomed .*dead`));
      assert.doesNotMatch(listed.stdout, new RegExp(`│ ${other.id} `));
      // A page at a time: the hint is the same command with its filters, from the last one shown.
      const newest = [...handles].reverse();
      const page = underway(db, "dead", "list", "--queue", "letters", "--limit", "2");
      const hint = /^more: underway dead list (.*)$/m.exec(page.stdout);
      assert.ok(hint, page.stdout);
      assert.equal(hint[1], `--db ${db.includes("?") ? `'${db}'` : db} --queue letters --limit 2 --before ${newest[1]?.id}`);
      const next = underway(db, "dead", "list", "--queue", "letters", "--limit", "2", "--before", newest[1]?.id ?? "");
      assert.match(next.stdout, new RegExp(`│ ${newest[2]?.id} .*Doomed`));
      assert.doesNotMatch(next.stdout, /^more:/m);
      // An empty filter (an unset shell variable) is refused, not taken for no filter.
      const empty = underway(db, "dead", "requeue", "--all", "--name", "");
      assert.equal(empty.code, 1);
      assert.match(empty.stderr, /option '--name <name>' argument '' is invalid. expected a value; an empty one would match every task/);
      assert.equal((await runtime.getTask(other.id)).state, "dead");
      const [first] = handles;
      assert.ok(first);
      assert.match(underway(db, "dead", "requeue", first.id).stdout, new RegExp(`task ${first.id} \\(Doomed\\) queued again`));
      assert.equal((await runtime.getTask(first.id)).state, "queued");
      assert.match(underway(db, "dead", "requeue", first.id).stderr, new RegExp(`task ${first.id} is queued, not dead`));
      assert.match(underway(db, "dead", "requeue").stderr, /name a task id, or --all/);
      assert.match(underway(db, "dead", "requeue", "--all", "--queue", "letters").stdout, /2 dead tasks queued again/);
      assert.equal((await runtime.getTask(other.id)).state, "dead");
      // The rest: this test's other one, and the stats test's.
      assert.match(underway(db, "dead", "requeue", "--all", "--name", "Doomed").stdout, /2 dead tasks queued again/);
      assert.match(underway(db, "dead", "list").stdout, /no dead tasks/);
    });
  });
}

class Hostile implements IBackgroundTask<{ n: number }> {
  static readonly taskOptions = { maxAttempts: 1 };
  run(): void {
    const error = new Error("boom \u001b[2J\u001b[31mRED\u001b[0m line1\nline2\roverwritten \u202eevil");
    error.name = "Evil\u001b[5mErr";
    throw error;
  }
}

describe("underway CLI: text from the store", () => {
  it("shows control characters and reordering marks of task data escaped, never raw", async () => {
    const db = tempDb(dir);
    const runtime = await runtimeOn(() => new SqliteDriver({ path: db }), { tasks: [Hostile] });
    const handle = await runtime.run(() => Task.startNew(Hostile, { n: 1 }));
    await assert.rejects(handle.wait({ timeoutMs: 5_000 }));
    const stored = await runtime.getTask(handle.id);
    await runtime.stop();
    // A progress message as a running task shows it.
    const running = taskDetails({ ...stored, progress: 0.5, progressMessage: "half \u001b[2J\u001b[H cleared \u001b]0;title\u0007\u009b" });
    assert.match(running, /progress {3}50% half \\x1b\[2J\\x1b\[H cleared \\x1b\]0;title\\x07\\x9b$/m);
    for (const args of [["task", handle.id], ["tasks"], ["dead", "list"], ["task", "no-such\u001b[2J"]]) {
      const r = underway(db, ...args);
      const out = r.stdout + r.stderr;
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch(out, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/, `${args.join(" ")}: ${JSON.stringify(out)}`);
    }
    const details = underway(db, "task", handle.id).stdout;
    assert.match(details, /Evil\\x1b\[5mErr: boom \\x1b\[2J\\x1b\[31mRED\\x1b\[0m line1\\nline2\\roverwritten \\u202eevil/);
    assert.doesNotMatch(details, /^ +line2/m, "the message's second line is not a frame of its stack");
    assert.match(details, /^ +at Hostile\.run /m);
    assert.match(underway(db, "task", "no-such\u001b[2J").stderr, /no task with id "no-such\\u001b\[2J"|no task with id "no-such\\x1b\[2J"/);
  });
});
