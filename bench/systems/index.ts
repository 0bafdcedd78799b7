/** Opens the system a child process measures; each library is loaded only by the children that use it. */
import type { ChildSpec } from "../lib/protocol.ts";
import type { QueueSystem } from "./types.ts";

export async function openSystem(spec: ChildSpec): Promise<QueueSystem> {
  switch (spec.system) {
    case "underway-sqlite":
    case "underway-postgres":
      return (await import("./underway.ts")).underwaySystem(spec);
    case "graphile-worker":
      return (await import("./graphile.ts")).graphileSystem(spec, false);
    case "graphile-worker-batched":
      return (await import("./graphile.ts")).graphileSystem(spec, true);
    case "pg-boss":
      return (await import("./pgboss.ts")).pgBossSystem(spec);
    case "bullmq":
      return (await import("./bullmq.ts")).bullmqSystem(spec);
    case "machine":
      throw new Error(`${spec.scenario}: the machine's limits have no queue system`);
  }
}
