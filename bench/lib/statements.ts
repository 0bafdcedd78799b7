/**
 * For profiled PostgreSQL rounds: counts the statements the process sends through node-postgres
 * (every pg.Client's query, pooled ones included) and how long each took to answer, so the round
 * trips per task show. A CPU profile cannot show them: waiting for the server is idle time.
 */
import { writeFileSync } from "node:fs";
import pg from "pg";

interface Tally {
  calls: number;
  totalMs: number;
  failed: number;
}

const tallies = new Map<string, Tally>();
let installed = false;

/** The statement's text on one line, schema names and surplus spaces removed, cut to 100 characters. */
function keyOf(text: string): string {
  return text
    .replace(/--[^\n]*/g, " ")
    .replace(/"?bench_\d+_\d+"?\./g, "")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, 100);
}

/** Starts counting: wraps pg.Client.prototype.query (promise form, the one the driver uses). */
export function countStatements(): void {
  if (installed) return;
  installed = true;
  const original = pg.Client.prototype.query as (this: pg.Client, ...args: unknown[]) => unknown;
  (pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: pg.Client, ...args: unknown[]) {
    const config = args[0] as string | { text?: string } | undefined;
    const text = typeof config === "string" ? config : (config?.text ?? "(no text)");
    const started = performance.now();
    const result = original.apply(this, args);
    if (result instanceof Promise) {
      const tally = (ok: boolean): void => {
        const key = keyOf(text);
        const t = tallies.get(key) ?? { calls: 0, totalMs: 0, failed: 0 };
        t.calls++;
        t.totalMs += performance.now() - started;
        if (!ok) t.failed++;
        tallies.set(key, t);
      };
      result.then(
        () => tally(true),
        () => tally(false),
      );
    }
    return result;
  };
}

/** Writes the tallies, most frequent first, with calls per task for a round of `tasks` tasks. */
export function writeStatements(file: string, what: string, tasks: number): void {
  const statements = [...tallies.entries()]
    .sort((a, b) => b[1].calls - a[1].calls)
    .map(([sql, t]) => ({
      calls: t.calls,
      perTask: Number((t.calls / tasks).toFixed(3)),
      avgMs: Number((t.totalMs / t.calls).toFixed(3)),
      totalMs: Math.round(t.totalMs),
      ...(t.failed ? { failed: t.failed } : {}),
      sql,
    }));
  writeFileSync(file, `${JSON.stringify({ process: what, tasks, statements }, null, 2)}\n`);
}
