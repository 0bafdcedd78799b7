/**
 * One benchmark child process: runs the ChildSpec given as its only argument and sends the
 * result (or the error) to its parent over IPC. Started by bench/lib/spawn.ts, never by hand.
 *
 * Scenario modules are imported on demand, and each system's library only by the system's own
 * adapter, so a process loads what it measures and nothing else (this matters for the memory
 * scenario, and for start-up on a busy machine).
 */
import type { ChildMessage, ChildSpec, RoundResult, ScenarioId } from "./lib/protocol.ts";

type Run = (spec: ChildSpec) => Promise<RoundResult>;

const SCENARIOS: Record<ScenarioId, () => Promise<Run>> = {
  "enqueue-single": async () => (await import("./scenarios/enqueue.ts")).enqueueSingle,
  "enqueue-bulk": async () => (await import("./scenarios/enqueue.ts")).enqueueBulk,
  drain: async () => (await import("./scenarios/drain.ts")).drain,
  latency: async () => (await import("./scenarios/latency.ts")).latency,
  "latency-local": async () => (await import("./scenarios/latency-local.ts")).latencyLocal,
  isolation: async () => (await import("./scenarios/isolation.ts")).isolation,
  memory: async () => (await import("./scenarios/memory.ts")).memory,
  "limit-sqlite": async () => (await import("./scenarios/limit-sqlite.ts")).limitSqlite,
  "limit-postgres": async () => (await import("./scenarios/limit-postgres.ts")).limitPostgres,
  "limit-thread": async () => (await import("./scenarios/limit-thread.ts")).limitThread,
  enqueuer: async () => (await import("./scenarios/latency.ts")).enqueuer,
};

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) {
      console.log(JSON.stringify(message, null, 2));
      resolve();
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

async function main(): Promise<void> {
  // If the parent goes away, so does this child (and with it its own children's channels).
  process.on("disconnect", () => process.exit(2));
  const spec = JSON.parse(process.argv[2] ?? "null") as ChildSpec | null;
  if (!spec || typeof spec.scenario !== "string" || !(spec.scenario in SCENARIOS)) {
    throw new Error(`bench/child.ts: expected a ChildSpec argument, got ${process.argv[2] ?? "nothing"}`);
  }
  // The child gives up by itself before the parent's limit, saying what it was doing.
  const timer = setTimeout(() => {
    void send({ type: "error", message: `${spec.scenario} on ${spec.system} did not finish within its time limit of ${Math.round(spec.timeLimitMs / 1000)} s` }).then(() =>
      process.exit(1),
    );
  }, spec.timeLimitMs);
  timer.unref();
  const statements = spec.statementsFile ? await import("./lib/statements.ts") : null;
  statements?.countStatements();
  const run = await SCENARIOS[spec.scenario]();
  const result = await run(spec);
  if (spec.statementsFile) statements?.writeStatements(spec.statementsFile, spec.scenario, spec.count);
  await send({ type: "result", result });
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    const e = error instanceof Error ? error : new Error(String(error));
    await send({ type: "error", message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
    process.exit(1);
  },
);
