import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import Database from "better-sqlite3";
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Task } from "../../src/index.ts";
import { MarkTask, TouchTask } from "../fixtures/tasks.ts";
import { Platform } from "../../src/platform/platform.ts";
import pg from "pg";
import { startRuntime, tempDb, tempDir, tempSchema, TEST_POSTGRES_URL, until } from "../helpers.ts";

const dir = tempDir();
const root = join(import.meta.dirname, "..", "..");

function underway(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  return underwayWith({}, ...args);
}

/** The CLI with more environment variables, or a shorter limit (`timeoutMs`: a command that should end at once). */
function underwayWith(more: { env?: Record<string, string>; timeoutMs?: number }, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const { timeoutMs = 60_000, env: vars = {} } = more;
  const r = spawnSync(process.execPath, [join(root, "bin", "underway.mjs"), ...args], {
    cwd: root,
    env: { ...process.env, UNDERWAY_LOG_LEVEL: "warn", UNDERWAY_DB: "", UNDERWAY_EXAMPLE_DELAY_MS: "50", ...vars },
    encoding: "utf8",
    timeout: timeoutMs,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The CLI started as a serving process (start, worker): everything it prints, and its exit. */
function serving(...args: string[]): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
  const child = spawn(process.execPath, [join(root, "bin", "underway.mjs"), ...args], {
    cwd: root,
    env: { ...process.env, UNDERWAY_LOG_LEVEL: "warn", UNDERWAY_DB: "", UNDERWAY_ADMIN_PASSWORD: "" },
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, output: () => output };
}

/** Until a serving worker says it runs, or ends (its output then says why); bounded, so a failure never hangs the file. */
function runningOrEnded(child: ChildProcess, output: () => string): Promise<unknown> {
  return until(() => /underway worker \S+ running/.test(output()) || child.exitCode !== null, "the worker to run or end", 30_000);
}

describe("underway CLI", () => {
  it("migrates a new database", () => {
    const db = tempDb(dir);
    const r = underway("migrate", "--db", db);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /is up to date/);
  });

  it("lists tasks as a table and as JSON, shows one task, and waits for it", async () => {
    const db = tempDb(dir);
    const runtime = await startRuntime({ dir, db, tasks: [TouchTask] });
    const handle = await runtime.run(() => Task.startNew(TouchTask, { file: join(dir, "cli-touch.txt") }));
    await handle.wait({ timeoutMs: 5_000 });
    const queued = await runtime.run(() => Task.startNew(TouchTask, { file: join(dir, "later.txt") }, { delayMs: 3_600_000 }));

    const table = underway("tasks", "--db", db);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`${handle.id}.*TouchTask.*succeeded`));
    const json = underway("tasks", "--db", db, "--json", "--state", "queued");
    const page = JSON.parse(json.stdout) as { items: { id: string; state: string }[] };
    assert.deepEqual(
      page.items.map((t) => [t.id, t.state]),
      [[queued.id, "queued"]],
    );
    const one = underway("task", handle.id, "--db", db);
    assert.match(one.stdout, /state {6}succeeded \(attempt 1 of 5\)/);
    const waited = underway("wait", handle.id, "--db", db);
    assert.equal(waited.code, 0, waited.stderr);
    const timedOut = underway("wait", queued.id, "--db", db, "--timeout", "1");
    assert.equal(timedOut.code, 1);
    assert.match(timedOut.stderr, new RegExp(`task ${queued.id} is still queued after 1 s`));
  });

  it("lists the other tasks, and says which time it cannot read, when a row's time was changed by hand", async () => {
    const db = tempDb(dir);
    const runtime = await startRuntime({ dir, db, tasks: [TouchTask], worker: false });
    const bad = await runtime.run(() => Task.startNew(TouchTask, { file: join(dir, "bad.txt") }));
    const good = await runtime.run(() => Task.startNew(TouchTask, { file: join(dir, "good.txt") }));
    await runtime.transaction((tx) => tx.execute("UPDATE underway_tasks SET created_at = 'abc', run_at = 'abc' WHERE id = ?", [Number(bad.id)]));
    await runtime.stop();
    const table = underway("tasks", "--db", db);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`${good.id}.*TouchTask.*queued`));
    assert.match(table.stdout, new RegExp(`${bad.id}.*TouchTask.*\\(unreadable\\)`));
    const one = underway("task", bad.id, "--db", db);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /created {4}\(unreadable\)/);
  });

  it("runs a published process as a user and waits for it", async () => {
    const db = tempDb(dir);
    const platform = await Platform.start({ db, logger: false, worker: false, adminPassword: "cli-pass", packages: [join(root, "examples", "background-activity")] });
    await platform.stop();
    const run = underway("run", "UsrBackgroundTaskExampleProcess", "--db", db, "--wait");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /process UsrBackgroundTaskExampleProcess started: instance [0-9a-f-]{36}/);
    assert.match(run.stdout, /Create background task \(scriptTask\): Completed/);
    assert.match(run.stdout, /status: Completed/);
    const unknown = underway("run", "UsrNoSuchProcess", "--db", db);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no published process has the code "UsrNoSuchProcess"/);
    const badParam = underway("run", "UsrBackgroundTaskExampleProcess", "--db", db, "--param", "oops");
    assert.equal(badParam.code, 1);
    assert.match(badParam.stderr, /--param "oops": expected name=value/);
    const nobody = underway("run", "UsrBackgroundTaskExampleProcess", "--db", db, "--user", "ghost");
    assert.match(nobody.stderr, /no active user with the login "ghost"/);
  });

  it("ends quietly, with success, when the reader of its output goes away (underway tasks | head)", async () => {
    const db = tempDb(dir);
    const runtime = await startRuntime({ dir, db, tasks: [TouchTask] });
    await runtime.run(() => Task.startNewMany(TouchTask, Array.from({ length: 1_000 }, (_, i) => ({ file: join(dir, `many-${i}.txt`) })), { delayMs: 3_600_000 }));
    const r = spawnSync("bash", ["-c", `"${process.execPath}" bin/underway.mjs tasks --db "${db}" --json --limit 1000 | head -c 10 > /dev/null; echo "exit $\{PIPESTATUS[0]}" >&2`], {
      cwd: root,
      env: { ...process.env, UNDERWAY_LOG_LEVEL: "warn", UNDERWAY_DB: "" },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.doesNotMatch(r.stderr, /EPIPE|Error/);
    assert.match(r.stderr, /^exit 0$/m);
  });

  it("explains bad arguments and missing tasks", () => {
    const db = tempDb(dir);
    assert.equal(underway("migrate", "--db", db).code, 0);
    const badState = underway("tasks", "--db", db, "--state", "finished");
    assert.equal(badState.code, 1);
    assert.match(badState.stderr, /unknown state "finished"; states are queued, running/);
    const missing = underway("task", "12345", "--db", db);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /underway: no task with id "12345"/);
    const badLimit = underway("tasks", "--db", db, "--limit", "-3");
    assert.equal(badLimit.code, 1);
    assert.match(badLimit.stderr, /expected an integer >= 1/);
    // Past what a timer can wait, Node would fire at once: running tasks stopped with no grace.
    const badGrace = underway("worker", "--db", db, "--grace", "3000000000");
    assert.equal(badGrace.code, 1);
    assert.match(badGrace.stderr, /option '--grace <ms>' argument '3000000000' is invalid. expected an integer from 0 to 2147483647/);
    const badLease = underway("worker", "--db", db, "--lease", "9000000000");
    assert.equal(badLease.code, 1);
    assert.match(badLease.stderr, /expected an integer from 1000 to 2147483647/);
    const badProxy = underway("start", "--db", db, "--trust-proxy", "10.0.0.0/33");
    assert.equal(badProxy.code, 1);
    assert.match(badProxy.stderr, /trust proxy: "10.0.0.0\/33" is not an IP address or CIDR range/);
    // An empty value (an unset variable) or a number not in decimal digits is no number.
    for (const [args, pattern] of [
      [["start", "--db", db, "--port", ""], /option '--port <port>' argument '' is invalid. expected an integer from 0 to 65535, got an empty value/],
      [["worker", "--db", db, "--grace", " "], /expected an integer from 0 to 2147483647, got an empty value/],
      [["tasks", "--db", db, "--limit", "0x10"], /expected an integer >= 1, got "0x10"/],
      // The same integers everywhere: `dead list` and `stats` once read these with Number().
      [["dead", "list", "--db", db, "--limit", "0x2"], /option '--limit <n>' argument '0x2' is invalid. expected an integer >= 1, got "0x2"/],
      [["dead", "list", "--db", db, "--limit", "1e1"], /expected an integer >= 1, got "1e1"/],
      [["stats", "--db", db, "--minutes", "0x3"], /option '--minutes <n>' argument '0x3' is invalid. expected whole minutes from 1 to 1440, got "0x3"/],
      [["stats", "--db", db, "--minutes", " "], /expected whole minutes from 1 to 1440, got an empty value/],
      [["tasks", "--db", db, "--state", ""], /expected one or more of queued, running, .*got an empty value/],
    ] as const) {
      const r = underway(...args);
      assert.equal(r.code, 1, args.join(" "));
      assert.match(r.stderr, pattern);
    }
    const emptyPort = spawnSync(process.execPath, [join(root, "bin", "underway.mjs"), "start", "--db", db], {
      cwd: root,
      env: { ...process.env, UNDERWAY_LOG_LEVEL: "warn", UNDERWAY_DB: "", PORT: "" },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(emptyPort.status, 1);
    assert.match(emptyPort.stderr, /got an empty value/);
    const unknown = underway("frobnicate");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  });

  it("refuses an empty --queues list and queue names no task can have, rather than idling", () => {
    const db = tempDb(dir);
    assert.equal(underway("migrate", "--db", db).code, 0);
    // A worker that accepted these would run until the limit: the limit is short.
    for (const [value, pattern] of [
      ["", /option '--queues <names>' argument '' is invalid. expected one or more comma-separated queue names, got an empty list \(leave --queues out to take every queue\)/],
      [" , ", /got an empty list/],
      ["reports,bad queue!", /option '--queues <names>' argument 'reports,bad queue!' is invalid. a queue name must be 1-100 letters, digits or _ . : -, got "bad queue!"/],
      [`${"q".repeat(101)}`, /a queue name must be 1-100 letters/],
    ] as const) {
      const r = underwayWith({ timeoutMs: 20_000 }, "worker", "--db", db, "--queues", value);
      assert.equal(r.code, 1, `--queues ${JSON.stringify(value)}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
  });

  it("names UNDERWAY_LOG_LEVEL when its level is unknown", () => {
    const r = underwayWith({ env: { UNDERWAY_LOG_LEVEL: "verbose" }, timeoutMs: 20_000 }, "worker", "--db", tempDb(dir));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /^underway: UNDERWAY_LOG_LEVEL is "verbose": expected one of trace, debug, info, warn, error, fatal, silent \(unset or empty: info\)$/m);
  });

  it("says clearly when the database cannot be opened", () => {
    const r = underway("tasks", "--db", join(dir, "no-such-dir-file", "..", ".."));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /underway: cannot open the SQLite database .*: it is a directory, not a database file/);
    // A file that is not SQLite's, and a folder: the path, and what is wrong with it.
    const notSqlite = join(tempDir(), "notes.db");
    writeFileSync(notSqlite, "not a database at all, just some text\n".repeat(4));
    for (const command of ["tasks", "migrate"]) {
      const file = underway(command, "--db", notSqlite);
      assert.equal(file.code, 1, command);
      assert.match(file.stderr, /^underway: cannot open the SQLite database \/.*\/notes\.db: the file is not a SQLite database$/m);
      const folder = underway(command, "--db", dir);
      assert.equal(folder.code, 1, command);
      assert.match(folder.stderr, new RegExp(`^underway: cannot open the SQLite database ${dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: it is a directory, not a database file$`, "m"));
    }
    const pg = underway("tasks", "--db", "mysql://localhost/db");
    assert.match(pg.stderr, /unsupported database URL scheme/);
    // Settings that would once have made a SQLite file of a misspelt URL, or a new empty database.
    const root = tempDir();
    const checks: [string[], RegExp][] = [
      [["tasks", "--db", "postgres:/postgres@127.0.0.1:5432/test"], /unsupported database URL scheme "postgres:": .*a PostgreSQL URL begins postgres:\/\//],
      [["migrate", "--db", "postgresql:postgres@127.0.0.1/test"], /unsupported database URL scheme "postgresql:"/],
      [["tasks", "--db", `sqlite:${join(root, "q.db")}?mode=ro`], /has query parameters; a sqlite: URL names a file and takes none/],
      [["migrate", "--db", "postgres://postgres@127.0.0.1:5432/test?schema="], /the PostgreSQL URL's schema parameter is empty/],
      [["tasks", "--db", join(root, "typo", "app.db")], /no database at .*typo\/app\.db: this command needs an existing one and creates none \(underway migrate creates it\)/],
    ];
    for (const [args, pattern] of checks) {
      const r = underway(...args);
      assert.equal(r.code, 1, args.join(" "));
      assert.match(r.stderr, pattern);
    }
    assert.deepEqual(readdirSync(root), [], "nothing created");
  });

  it("creates and upgrades nothing when only reading, nor runs a process on a new store", async () => {
    const root = tempDir();
    // An empty file, and another application's database.
    const empty = join(root, "empty.db");
    writeFileSync(empty, "");
    const foreign = join(root, "foreign.db");
    const other = new Database(foreign);
    other.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
    other.close();
    for (const file of [empty, foreign]) {
      for (const args of [["tasks"], ["stats"], ["dead", "list"], ["schedules", "list"]]) {
        const r = underway(...args, "--db", file);
        assert.equal(r.code, 1, `${args.join(" ")} ${file}: ${r.stdout}`);
        assert.match(r.stderr, /no underway store in sqlite:.*: this command needs an existing one and creates none/);
      }
    }
    const tables = (file: string): string[] => {
      const db = new Database(file, { readonly: true });
      try {
        return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
      } finally {
        db.close();
      }
    };
    assert.deepEqual(tables(foreign), ["customers"]);
    assert.deepEqual(tables(empty), []);
    // Looked at, not changed: the other application's file keeps its journal mode and its bytes.
    const mode = new Database(foreign, { readonly: true });
    assert.equal(mode.pragma("journal_mode", { simple: true }), "delete");
    mode.close();
    assert.equal(statSync(empty).size, 0, "the empty file stays empty");

    // A store older than this underway: read as it is, never upgraded by a command that reads.
    const older = tempDb(dir);
    assert.equal(underway("migrate", "--db", older).code, 0);
    const store = new Database(older);
    const latest = (store.prepare("SELECT max(version) AS v FROM underway_migrations").get() as { v: number }).v;
    store.prepare("DELETE FROM underway_migrations WHERE version = ?").run(latest);
    store.close();
    const refused = underway("tasks", "--db", older);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /has an older schema than this underway: this command reads it and upgrades nothing \(underway migrate upgrades it/);
    const after = new Database(older, { readonly: true });
    assert.equal((after.prepare("SELECT max(version) AS v FROM underway_migrations").get() as { v: number }).v, latest - 1, "upgraded");
    after.close();

    // run with a mistyped --db: no new store, no new Supervisor.
    const typo = join(root, "typo.db");
    const run = underway("run", "UsrBackgroundTaskExampleProcess", "--db", typo);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /no database at .*typo\.db: this command needs an existing one/);
    assert.doesNotMatch(run.stdout + run.stderr, /password/);
    assert.equal(existsSync(typo), false);
  });

  it("reads an existing PostgreSQL store only: a misspelt schema is an error, and nothing is created", async () => {
    const schema = tempSchema();
    const url = `${TEST_POSTGRES_URL}?schema=${schema}`;
    for (const args of [["tasks"], ["stats"], ["schedules", "resume", "nightly"], ["dead", "list"]]) {
      const r = underway(...args, "--db", url);
      assert.equal(r.code, 1, args.join(" "));
      assert.match(r.stderr, new RegExp(`no underway store in .*\\(schema ${schema}\\): this command needs an existing one and creates none`));
    }
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    try {
      const { rows } = await client.query("SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", [schema]);
      assert.equal(rows.length, 0, "no schema created");
    } finally {
      await client.end();
    }
    assert.equal(underway("migrate", "--db", url).code, 0);
    const listed = underway("tasks", "--db", url);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /no tasks/);
  });

  it("loads a TypeScript task module outside any package, as `node --import tsx` would", () => {
    // No package.json of type "module" around it: tsx's require hooks load it, not its import hooks alone.
    const module = join(tempDir(), "loose-tasks.ts");
    writeFileSync(module, "export const notATask: number = 1;\n");
    const r = underway("worker", "--db", tempDb(dir), "--tasks", module);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /loose-tasks\.ts exports no task class/, "loaded, then found no class");
  });

  it("refuses a task module that exports no task class", () => {
    const r = underway("worker", "--db", tempDb(dir), "--tasks", "src/codec/limits.ts");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /exports no task class/);
  });

  it("serves /metrics and /healthz of a worker on --metrics-port, and nothing else there", async () => {
    const { child, exited, output } = serving("worker", "--db", tempDb(dir), "--isolation", "none", "--metrics-port", "0");
    try {
      await runningOrEnded(child, output);
      const url = /underway worker metrics on (http:\/\/\S+)\/metrics/.exec(output())?.[1];
      assert.ok(url, `the worker ended:\n${output()}`);
      const metrics = await fetch(`${url}/metrics`);
      assert.equal(metrics.status, 200);
      const text = await metrics.text();
      assert.match(text, /^underway_store_up 1$/m);
      assert.match(text, /^# TYPE underway_task_run_seconds histogram$/m);
      const health = await fetch(`${url}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { status: string }).status, "ok");
      assert.equal((await fetch(`${url}/api/tasks`)).status, 404);
      // A worker on a fresh database leaves the Supervisor's password to the web application's process.
      assert.doesNotMatch(output(), /password/i);
    } finally {
      if (child.exitCode === null) child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, output());
  });

  it("writes an IPv6 address of --metrics-host in brackets in the URL it prints", async (t) => {
    const probe = createServer();
    const ipv6 = await new Promise<boolean>((resolve) => {
      probe.once("error", () => resolve(false));
      probe.listen(0, "::1", () => probe.close(() => resolve(true)));
    });
    if (!ipv6) {
      t.skip("no IPv6 loopback here");
      return;
    }
    const { child, exited, output } = serving("worker", "--db", tempDb(dir), "--isolation", "none", "--metrics-port", "0", "--metrics-host", "::1");
    try {
      await runningOrEnded(child, output);
      const url = /underway worker metrics on (http:\/\/\S+)\/metrics/.exec(output())?.[1];
      assert.ok(url, `the worker ended:\n${output()}`);
      assert.match(url, /^http:\/\/\[::1\]:\d+$/);
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
    } finally {
      if (child.exitCode === null) child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, output());
  });

  it("exits at once on a second SIGINT while a task holds up the graceful stop; the task stays leased, to run again", async () => {
    const db = tempDb(dir);
    const mark = join(dir, `mark-${Date.now()}.txt`);
    const { child, exited, output } = serving("worker", "--db", db, "--tasks", "test/fixtures/tasks.ts", "--isolation", "none", "--grace", "60000");
    try {
      await runningOrEnded(child, output);
      const runtime = await startRuntime({ dir, db, worker: false, tasks: [MarkTask] });
      const hangs = await runtime.run(() => Task.startNew(MarkTask, { file: mark, hangUntilAttempt: 1 }));
      await until(() => existsSync(mark), "the task to start", 30_000);
      child.kill("SIGINT");
      // The first one stops gracefully: the task may take its 60 s. The second does not wait.
      // Later than a second: one sooner is taken for the same request (see signals.test.ts).
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      child.kill("SIGINT");
      assert.equal(await exited, 130, output());
      assert.match(output(), /SIGINT again: exiting now/);
      assert.equal((await runtime.getTask(hangs.id)).state, "running", "leased still: the rescue runs it again when the lease runs out");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  // In the worker's own process (isolation none), as published package code loads in a server.
  it("logs a promise that task code left to fail unhandled, and keeps the worker running", async () => {
    const { child, exited, output } = serving("worker", "--db", tempDb(dir), "--tasks", "test/fixtures/unhandled-rejection-tasks.ts", "--isolation", "none");
    try {
      await runningOrEnded(child, output);
      assert.ok(/underway worker \S+ running/.test(output()), `the worker ended:\n${output()}`);
      assert.match(output(), /a promise was rejected and nothing handled it .*the process goes on: Error: warm-up failed: the lookup table is missing/);
      assert.equal(child.exitCode, null, "still running");
    } finally {
      if (child.exitCode === null) child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, output());
  });
});
