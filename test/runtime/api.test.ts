import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  createRuntime,
  runAsUser,
  Task,
  TaskSerializationError,
  TaskStartError,
  type IBackgroundTask,
  type IUserConnectionRequired,
  type TaskContext,
  type UserConnectionLike,
} from "../../src/index.ts";
import { startRuntime, tempDb, tempDir } from "../helpers.ts";

const dir = tempDir();

interface ActivityData {
  title: string;
  typeId: string;
}

const seen: { parameters: unknown; argCount: number; context?: TaskContext }[] = [];

/** Written the platform's way: run takes the parameters only. */
class RecordTask implements IBackgroundTask<ActivityData> {
  run(parameters: ActivityData): void {
    seen.push({ parameters, argCount: arguments.length });
  }
}

class ContextTask implements IBackgroundTask<{ n: number }> {
  run(_p: { n: number }, context: TaskContext): void {
    seen.push({ parameters: _p, argCount: 2, context });
  }
}

const connectionLog: string[] = [];

class NeedsConnection implements IBackgroundTask<{ note: string }>, IUserConnectionRequired {
  private userConnection: UserConnectionLike | null = null;
  setUserConnection(userConnection: UserConnectionLike): void {
    connectionLog.push(`set:${userConnection.currentUser.id}`);
    this.userConnection = userConnection;
  }
  // The connection is never passed to run: the runtime gives run the parameters and the context.
  run(parameters: { note: string }, context: TaskContext): void {
    connectionLog.push(`run:${this.userConnection?.currentUser.id}:${parameters.note}:${typeof context.signal}`);
    for (const arg of [parameters, context]) assert.notEqual(arg, this.userConnection);
  }
}

class Renamed implements IBackgroundTask<null> {
  static readonly taskName = "Billing.Renamed";
  run(): void {}
}

const userConnectionFactory = (initiator: { userId: string }) => ({ currentUser: { id: initiator.userId } });

describe("Task.startNew", () => {
  it("stores the task durably before resolving and runs it with the same parameters", async () => {
    const runtime = await startRuntime({ dir, tasks: [RecordTask] });
    const data = { title: "Activity created by background task", typeId: "FBE0ACDC-CFC0-DF11-B00F-001D60E938C6" };
    const handle = await runtime.run(() => Task.startNew(RecordTask, data));
    assert.match(handle.id, /^[1-9]\d*$/);
    const stored = await runtime.getTask(handle.id);
    assert.equal(stored.name, "RecordTask");
    const done = await handle.wait({ timeoutMs: 5_000 });
    assert.equal(done.state, "succeeded");
    assert.equal(done.attempt, 1);
    assert.ok(done.finishedAt);
    const call = seen.find((s) => (s.parameters as ActivityData).title === data.title);
    assert.deepEqual(call?.parameters, data);
    // A one-argument run still receives the context as a second argument, which it may ignore.
    assert.equal(call?.argCount, 2);
  });

  it("gives run a context with signal, attempt, ids, logger and progress", async () => {
    const runtime = await startRuntime({ dir, tasks: [ContextTask] });
    const handle = await runtime.run(() => Task.startNew(ContextTask, { n: 7 }));
    await handle.wait({ timeoutMs: 5_000 });
    const call = seen.find((s) => (s.parameters as { n?: number }).n === 7);
    assert.ok(call?.context);
    assert.equal(call.context.taskId, handle.id);
    assert.equal(call.context.taskName, "ContextTask");
    assert.equal(call.context.attempt, 1);
    assert.equal(call.context.maxAttempts, 5);
    assert.ok(call.context.signal instanceof AbortSignal);
    assert.equal(typeof call.context.logger.info, "function");
    assert.throws(() => call.context?.reportProgress(2), /fraction must be a number from 0 to 1/);
  });

  it("uses a static taskName as the stable name", async () => {
    const runtime = await startRuntime({ dir });
    const handle = await runtime.run(() => Task.startNew(Renamed, null));
    assert.equal((await handle.wait({ timeoutMs: 5_000 })).name, "Billing.Renamed");
  });

  it("finds the process's runtime without run() once one has started", async () => {
    const runtime = await startRuntime({ dir, tasks: [RecordTask] });
    const handle = await Task.startNew(RecordTask, { title: "ambient", typeId: "x" });
    // The process default is the first runtime started; it knows the task either way.
    assert.ok(handle.id);
    assert.ok(runtime);
  });

  it("refuses a class that needs a user connection, synchronously", async () => {
    const runtime = await startRuntime({ dir });
    assert.throws(
      // @ts-expect-error startNew does not accept a class implementing IUserConnectionRequired
      () => runtime.run(() => Task.startNew(NeedsConnection, { note: "x" })),
      (e: unknown) => e instanceof TaskStartError && /start it with Task.startNewWithUserConnection/.test(e.message),
    );
    assert.equal((await runtime.countTasks()).queued, 0);
  });

  it("refuses values that are not task classes with a clear message", async () => {
    const runtime = await startRuntime({ dir });
    for (const [value, pattern] of [
      [{}, /pass the class itself, not an instance/],
      [() => 1, /without a run method/],
      [null, /got null/],
      ["RecordTask", /got a string/],
    ] as const) {
      assert.throws(() => runtime.run(() => Task.startNew(value as never, null as never)), pattern);
    }
    assert.throws(
      () => runtime.run(() => Task.startNew(class { run() {} }, null as never)),
      /an anonymous class cannot be a task/,
    );
  });

  it("type-checks parameters against the class", async () => {
    const runtime = await startRuntime({ dir, tasks: [RecordTask] });
    await runtime.run(async () => {
      // @ts-expect-error typeId is missing
      const a = Task.startNew(RecordTask, { title: "t" });
      // @ts-expect-error title must be a string
      const b = Task.startNew(RecordTask, { title: 1, typeId: "x" });
      await Promise.all([a, b]);
    });
  });

  it("throws TaskSerializationError from the call itself and stores nothing", async () => {
    const runtime = await startRuntime({ dir, tasks: [RecordTask] });
    const bad = { title: "t", typeId: "x", owner: { save() {} } } as unknown as ActivityData;
    let threw = false;
    try {
      // No await: the error must come synchronously, before any promise exists.
      void runtime.run(() => Task.startNew(RecordTask, bad));
    } catch (error) {
      threw = true;
      assert.ok(error instanceof TaskSerializationError);
      assert.match(error.message, /^parameters\.owner\.save: a function cannot be serialized/);
    }
    assert.ok(threw, "startNew did not throw synchronously");
    assert.deepEqual((await runtime.listTasks()).items, []);
  });

  it("rejects parameters over the configured size limit", async () => {
    const runtime = await startRuntime({ dir, tasks: [RecordTask], maxParameterBytes: 1_000 });
    assert.throws(
      () => runtime.run(() => Task.startNew(RecordTask, { title: "x".repeat(2_000), typeId: "y" })),
      (e: unknown) => e instanceof TaskSerializationError && /exceeds the limit/.test(e.message),
    );
  });

  it("refuses periods a timer cannot wait: a lease, a heartbeat, a poll or a grace past 2^31-1 ms", async () => {
    const big = 3_000_000_000;
    for (const worker of [{ leaseMs: big }, { heartbeatMs: big }, { pollIntervalMs: big }]) {
      assert.throws(() => createRuntime({ db: tempDb(dir), logger: false, worker }), /must be at most 2147483647 ms \(about 24.8 days\)/);
    }
    // The default heartbeat is a third of the lease; a lease of 2^31-1 still fits.
    await createRuntime({ db: tempDb(dir), logger: false, worker: { leaseMs: 2_147_483_647 } }).stop();
    for (const shutdownGraceMs of [big, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => createRuntime({ db: tempDb(dir), logger: false, shutdownGraceMs }), /shutdownGraceMs must be an integer of milliseconds from 0 to 2147483647/);
    }
    const runtime = await startRuntime({ dir, tasks: [RecordTask] });
    await assert.rejects(runtime.stop({ graceMs: big }), /stop\(\{ graceMs \}\) must be an integer of milliseconds/);
    // Refused before anything stopped: the runtime still works, then stops.
    await runtime.run(() => Task.startNew(RecordTask, { title: "t", typeId: "x" }));
    await runtime.stop({ graceMs: 0 });
  });

  it("refuses careless arguments to its operations before touching anything", async () => {
    const runtime = await startRuntime({ dir, tasks: [RecordTask] });
    const untyped = runtime as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    // A string spread into an empty filter would have queued every dead task again.
    await assert.rejects(untyped["requeueTasks"]!.call(runtime, "dead"), { name: "TypeError", message: /the retry filter must be an object, got string/ });
    await assert.rejects(untyped["requeueTasks"]!.call(runtime, { states: "dead" }), /filter\.states must be an array/);
    for (const method of ["pauseSchedule", "resumeSchedule", "deleteSchedule"]) {
      await assert.rejects(untyped[method]!.call(runtime, {}), { name: "TypeError", message: /a schedule's name must be 1-200 letters, digits or _ \. : -, got object/ });
    }
    await assert.rejects(runtime.pauseSchedule("nightly"), /no schedule named "nightly"; there are no schedules/);
    assert.throws(() => runtime.taskStats({ windowMs: 1e20 }), /windowMs must be an integer from 60000 \(a minute\) to 2678400000 \(31 days\)/);
    assert.ok((await runtime.taskStats({ windowMs: 2_678_400_000 })).now > 0);
  });

  it("validates start options", async () => {
    const runtime = await startRuntime({ dir, tasks: [RecordTask] });
    const p = { title: "t", typeId: "x" };
    await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { maxAttempts: 0 })), /maxAttempts must be an integer >= 1/);
    await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { queue: "no spaces" })), /options.queue must be/);
    await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { runAt: new Date("nope") })), /runAt must be a valid Date/);
    await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { delayMs: -1 })), /delayMs must be/);
    // Where the stores and Node's timers end: a timeout above 2^31-1 ms would fire at once, a delay
    // or run time from the year 10000 on is the stores' mark of a held task, 32-bit attempts and priorities.
    await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { timeoutMs: 3_000_000_000 })), /timeoutMs must be .* <= 2147483647/);
    await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { timeoutMs: 1e300 })), /timeoutMs must be/);
    await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { delayMs: 1e16 })), /delayMs must end before 9999-12-31/);
    await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { runAt: new Date("+010000-01-01T00:00:00Z") })), /runAt must be from 0001-01-01T00:00:00Z and before 9999-12-31/);
    // Before year 1 (which PostgreSQL could not hold while SQLite did): refused on every store.
    for (const runAt of [new Date(-8.64e15), new Date("-004714-01-01T00:00:00Z"), new Date("0000-12-31T23:59:59.999Z")]) {
      await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { runAt })), /runAt must be from 0001-01-01T00:00:00Z/);
    }
    await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { maxAttempts: 1e300 })), /maxAttempts must be an integer >= 1 and <= 1000000/);
    await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { priority: 2 ** 31 })), /priority must be an integer from -2147483648 to 2147483647/);
    const sparse = [p, , p] as (typeof p)[]; // eslint-disable-line no-sparse-arrays
    assert.throws(() => runtime.run(() => Task.startNewMany(RecordTask, sparse)), /parameters\[1\] is a hole/);
    assert.deepEqual((await runtime.listTasks()).items, [], "nothing stored");
    const longest = await runtime.run(() => Task.startNew(RecordTask, p, { timeoutMs: 2_147_483_647, priority: -(2 ** 31), delayMs: 60_000 }));
    assert.equal((await runtime.getTask(longest.id)).timeoutMs, 2_147_483_647);
    await assert.rejects(runtime.waitForTask(longest.id, { timeoutMs: Number.NaN }), /timeoutMs must be a number of ms >= 0, got NaN/);
    await assert.rejects(startRuntime({ dir, tasks: [RecordTask], maxParameterBytes: 2 ** 60 }), /maxParameterBytes must be a positive integer/);
  });

  it("refuses options it does not know, naming the nearest it does", async () => {
    const runtime = await startRuntime({ dir, tasks: [RecordTask] });
    const p = { title: "t", typeId: "x" };
    await assert.rejects(
      runtime.run(() => Task.startNew(RecordTask, p, { delayMS: 60_000 } as never)),
      /the start's options has no option "delayMS" \(did you mean "delayMs"\?\); its options are queue, priority, /,
    );
    await assert.rejects(runtime.run(() => Task.startNew(RecordTask, p, { retries: 3 } as never)), /has no option "retries"; its options are/);
    class Misspelled implements IBackgroundTask<null> {
      static readonly taskOptions = { maxAtempts: 5 };
      run(): void {}
    }
    await assert.rejects(runtime.run(() => Task.startNew(Misspelled as never, null)), /Misspelled\.taskOptions has no option "maxAtempts" \(did you mean "maxAttempts"\?\)/);
    class BadBackoff implements IBackgroundTask<null> {
      static readonly taskOptions = { backoff: { base: 10 } };
      run(): void {}
    }
    await assert.rejects(runtime.run(() => Task.startNew(BadBackoff as never, null)), /BadBackoff\.taskOptions\.backoff has no option "base"/);
    assert.deepEqual((await runtime.listTasks()).items, [], "nothing stored");

    const misspelt: [Record<string, unknown>, RegExp][] = [
      [{ wroker: false }, /createRuntime's configuration has no option "wroker" \(did you mean "worker"\?\)/],
      [{ Logger: false }, /has no option "Logger" \(did you mean "logger"\?\)/],
      [{ worker: { concurency: 5 } }, /worker has no option "concurency" \(did you mean "concurrency"\?\)/],
      [{ worker: { driver: {} } }, /worker has no option "driver"; its options are concurrency, /],
      [{ isolation: { memoryLimitMB: 64 } }, /isolation has no option "memoryLimitMB" \(did you mean "memoryLimitMb"\?\)/],
      [{ maintenance: { retention: { succededMs: 1_000 } } }, /maintenance\.retention has no option "succededMs" \(did you mean "succeededMs"\?\)/],
      [{ maintenance: { rescueInterval: 1_000 } }, /maintenance has no option "rescueInterval" \(did you mean "rescueIntervalMs"\?\)/],
    ];
    for (const [extra, message] of misspelt) {
      assert.throws(() => createRuntime({ db: tempDb(dir), ...extra } as never), message);
    }
  });

  it("refuses a db that is not a path, a URL or a store driver, saying what it got", () => {
    // An unset environment variable passed as db is the usual way to get here.
    assert.throws(() => createRuntime({ tasks: [RecordTask] } as never), /db must be a SQLite file path, a sqlite: or postgres:\/\/ URL, or a store driver; got undefined \(an unset environment variable, say\)/);
    assert.throws(() => createRuntime({ db: process.env.UNDERWAY_TEST_NO_SUCH_VARIABLE } as never), /got undefined/);
    assert.throws(() => createRuntime({ db: null } as never), /db must be .*; got null/);
    assert.throws(() => createRuntime({ db: { dialect: "oracle" } } as never), /db must be .*; got object/);
  });

  it("starts many tasks in one call", async () => {
    const runtime = await startRuntime({ dir, tasks: [RecordTask] });
    const handles = await runtime.run(() =>
      Task.startNewMany(RecordTask, [1, 2, 3].map((i) => ({ title: `many ${i}`, typeId: "x" }))),
    );
    assert.equal(handles.length, 3);
    for (const h of handles) assert.equal((await h.wait({ timeoutMs: 5_000 })).state, "succeeded");
    assert.throws(
      () => runtime.run(() => Task.startNewMany(RecordTask, [{ title: "ok", typeId: "x" }, { title: Symbol("s"), typeId: "x" } as never])),
      /parameters\[1\]\.title: a symbol cannot be serialized/,
    );
  });
});

describe("Task.startNewWithUserConnection", () => {
  it("calls setUserConnection for the initiating user before run", async () => {
    const runtime = await startRuntime({ dir, tasks: [NeedsConnection], userConnectionFactory });
    const handle = await runtime.run(() =>
      runAsUser({ userId: "user-a", culture: "en-US", timeZone: "Europe/Berlin" }, () =>
        Task.startNewWithUserConnection(NeedsConnection, { note: "hello" }),
      ),
    );
    const done = await handle.wait({ timeoutMs: 5_000 });
    assert.deepEqual(done.initiator, { userId: "user-a", culture: "en-US", timeZone: "Europe/Berlin" });
    assert.equal(done.withUserConnection, true);
    assert.deepEqual(connectionLog.slice(-2), ["set:user-a", "run:user-a:hello:object"]);
  });

  it("records only the initiator's user id, culture, time zone and tenant, each checked", async () => {
    const runtime = await startRuntime({ dir, tasks: [NeedsConnection], userConnectionFactory });
    // A whole user record passed in: its other fields (a password hash here) must not reach the task row.
    const record = { userId: "user-c", culture: "de-DE", timeZone: "Europe/Berlin", tenant: "t1", passwordHash: "secret-hash", roles: ["admin"] };
    const handle = await runtime.run(() => runAsUser(record, () => Task.startNewWithUserConnection(NeedsConnection, { note: "rec" })));
    const done = await handle.wait({ timeoutMs: 5_000 });
    assert.deepEqual(done.initiator, { userId: "user-c", culture: "de-DE", timeZone: "Europe/Berlin", tenant: "t1" });
    const bad: [unknown, RegExp][] = [
      [{ userId: "" }, /runAsUser needs a user with a non-empty userId/],
      [{ userId: "u\u0000" }, /runAsUser: userId "u\\u0000" holds a control character/],
      [{ userId: "x".repeat(251) }, /runAsUser: userId must be 1-250 characters, got 251/],
      [{ userId: "u", culture: 42 }, /runAsUser: culture must be a string, got number/],
      [{ userId: "u", culture: "english please" }, /runAsUser: culture "english please" is not a language tag/],
      [{ userId: "u", timeZone: "Moon/Base" }, /runAsUser: unknown time zone "Moon\/Base"/],
      [{ userId: "u", tenant: "" }, /runAsUser: tenant must be 1-250 characters, got 0/],
      [null, /runAsUser needs a user with a non-empty userId/],
    ];
    for (const [user, message] of bad) assert.throws(() => runAsUser(user as never, () => 1), message, JSON.stringify(user));
  });

  it("needs a current user", async () => {
    const runtime = await startRuntime({ dir, tasks: [NeedsConnection], userConnectionFactory });
    assert.throws(
      () => runtime.run(() => Task.startNewWithUserConnection(NeedsConnection, { note: "x" })),
      /there is no current user to run NeedsConnection as/,
    );
  });

  it("refuses a class without setUserConnection", async () => {
    const runtime = await startRuntime({ dir });
    assert.throws(
      () =>
        runAsUser({ userId: "u" }, () =>
          // @ts-expect-error RecordTask does not implement IUserConnectionRequired
          runtime.run(() => Task.startNewWithUserConnection(RecordTask, { title: "t", typeId: "x" })),
        ),
      /does not implement IUserConnectionRequired/,
    );
  });

  it("fails the task visibly when no factory can build the connection", async () => {
    const runtime = await startRuntime({ dir, tasks: [NeedsConnection] });
    const handle = await runtime.run(() =>
      runAsUser({ userId: "user-b" }, () => Task.startNewWithUserConnection(NeedsConnection, { note: "x" }, { maxAttempts: 1 })),
    );
    await assert.rejects(handle.wait({ timeoutMs: 5_000 }), /ended dead: Error: this runtime has no UserConnection factory/);
  });
});
