/**
 * One benchmark child process: runs the ChildSpec given as its only argument and sends the
 * result (or the error) to its parent over IPC. Started by bench/lib/spawn.ts, never by hand.
 */
import type { ChildMessage, ChildSpec, RoundResult } from "./lib/protocol.ts";
import { countStatements, writeStatements } from "./lib/statements.ts";
import { drain } from "./scenarios/drain.ts";
import { enqueueBulk, enqueueSingle } from "./scenarios/enqueue.ts";
import { enqueuer, latencyCross, latencyLocal } from "./scenarios/latency.ts";
import { rawPostgres } from "./scenarios/raw-postgres.ts";
import { rawSqlite } from "./scenarios/raw-sqlite.ts";

const SCENARIOS: Record<ChildSpec["scenario"], (spec: ChildSpec) => Promise<RoundResult>> = {
  "enqueue-single": enqueueSingle,
  "enqueue-bulk": enqueueBulk,
  drain,
  "latency-local": latencyLocal,
  "latency-cross": latencyCross,
  "raw-sqlite": rawSqlite,
  "raw-postgres": rawPostgres,
  enqueuer,
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
  if (spec.statementsFile) countStatements();
  const result = await SCENARIOS[spec.scenario](spec);
  if (spec.statementsFile) writeStatements(spec.statementsFile, spec.scenario, spec.count);
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
