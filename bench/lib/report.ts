import type { Environment } from "./environment.ts";
import type { PostgresInfo } from "./postgres.ts";
import type { Measurement, RoundResult, Store, Unit } from "./protocol.ts";
import { spread, type Spread } from "./stats.ts";

/** One scenario as the table shows it. */
export interface ScenarioDef {
  /** Stable id, used by --only and --profile and in the JSON. */
  readonly id: string;
  /** The scenario's number in bench/README.md. */
  readonly number: string;
  readonly title: string;
  /** What one round handles, in words ("20,000 tasks"). */
  readonly size: string;
}

export interface Figure {
  readonly key: string;
  readonly label: string;
  readonly unit: Unit;
  readonly values: readonly number[];
  readonly spread: Spread;
}

export interface ScenarioSummary {
  readonly def: ScenarioDef;
  readonly store: Store;
  readonly rounds: readonly RoundResult[];
  /** Wall time of each round's child process, ms (start-up included). */
  readonly childWallMs: readonly number[];
  readonly figures: readonly Figure[];
}

export interface Report {
  readonly mode: "full" | "quick";
  readonly rounds: number;
  readonly environment: Environment;
  /** The stores run, in table order. */
  readonly stores: readonly Store[];
  /** The PostgreSQL server, when it was one of the stores. */
  readonly postgres: PostgresInfo | null;
  readonly loadAtEnd: number;
  readonly wallMs: number;
  readonly scenarios: readonly ScenarioSummary[];
}

/** Groups the rounds' measurements by key, in the order the first round gave them. */
export function summarize(
  def: ScenarioDef,
  store: Store,
  rounds: readonly RoundResult[],
  childWallMs: readonly number[],
): ScenarioSummary {
  const byKey = new Map<string, { first: Measurement; values: number[] }>();
  for (const round of rounds) {
    for (const m of round.measurements) {
      const entry = byKey.get(m.key);
      if (entry) entry.values.push(m.value);
      else byKey.set(m.key, { first: m, values: [m.value] });
    }
  }
  const figures = [...byKey.values()].map(({ first, values }) => ({
    key: first.key,
    label: first.label,
    unit: first.unit,
    values,
    spread: spread(values),
  }));
  return { def, store, rounds, childWallMs, figures };
}

function formatValue(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return String(value);
  if (unit === "ms") return value < 10 ? value.toFixed(2) : value.toFixed(1);
  return Math.round(value).toLocaleString("en-US");
}

function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

function figureOf(report: Report, store: Store, id: string, key: string): Figure | undefined {
  return report.scenarios.find((s) => s.store === store && s.def.id === id)?.figures.find((f) => f.key === key);
}

const STORE_NAMES: Record<Store, string> = { sqlite: "SQLite", postgres: "PostgreSQL" };

/** The markdown the benchmark prints. */
export function renderMarkdown(report: Report): string {
  const env = report.environment;
  const lines: string[] = [];
  const roundsText =
    report.rounds === 1 ? "1 round per scenario" : `${report.rounds} rounds per scenario, median and min – max`;
  lines.push(`## underway benchmark, ${report.mode} mode (${roundsText})`, "");
  lines.push(
    `- Date: ${env.date}; commit ${env.commit}${env.srcModified ? " with uncommitted changes in src/" : ""}`,
    `- Machine: ${env.cpu}, ${env.cores} cores, ${env.memoryGiB} GiB, ${env.os}; load average ${env.loadAtStart.toFixed(2)} at start, ${report.loadAtEnd.toFixed(2)} at end`,
    `- Node ${env.node}; each round runs in a fresh Node process; no-op tasks; logger off`,
  );
  if (report.stores.includes("sqlite")) {
    lines.push(
      `- SQLite ${env.sqlite} (better-sqlite3 ${env.betterSqlite3}): embedded, a fresh file per round in ${env.tmpdir}, WAL, durability "${env.durability}" (the default: synchronous=NORMAL, commits are not fsynced one by one)`,
    );
  }
  const pgInfo = report.postgres;
  if (report.stores.includes("postgres") && pgInfo) {
    lines.push(
      `- PostgreSQL ${pgInfo.server} (node-postgres ${pgInfo.nodePg}) at ${pgInfo.url}${pgInfo.startedByBenchmark ? ", started by the benchmark" : ""}: a fresh schema per round, dropped afterwards; synchronous_commit=${pgInfo.synchronousCommit}, fsync=${pgInfo.fsync} (wal_sync_method ${pgInfo.walSyncMethod}), shared_buffers=${pgInfo.sharedBuffers}, max_connections=${pgInfo.maxConnections}; the driver's default pool of 10 connections per runtime`,
    );
  }
  lines.push("");
  const withRange = report.rounds > 1;
  lines.push(
    withRange ? "| # | Scenario | Store | Size | Metric | Median | Min – max |" : "| # | Scenario | Store | Size | Metric | Result |",
    withRange ? "|---|---|---|---|---|---:|---:|" : "|---|---|---|---|---|---:|",
  );
  let previous = "";
  for (const s of report.scenarios) {
    // The scenario's number and title once for its rows on all stores.
    const first = s.def.id !== previous;
    previous = s.def.id;
    s.figures.forEach((f, i) => {
      const cells = [
        i === 0 && first ? s.def.number : "",
        i === 0 && first ? s.def.title : "",
        i === 0 ? STORE_NAMES[s.store] : "",
        i === 0 ? s.def.size : "",
        `${f.label}, ${f.unit}`,
        formatValue(f.spread.median, f.unit),
      ];
      if (withRange) cells.push(`${formatValue(f.spread.min, f.unit)} – ${formatValue(f.spread.max, f.unit)}`);
      lines.push(`| ${cells.join(" | ")} |`);
    });
  }

  const ratios: string[] = [];
  const ratio = (a: Figure | undefined, b: Figure | undefined): string | null =>
    a && b ? `${((100 * a.spread.median) / b.spread.median).toFixed(0)}%` : null;
  for (const store of report.stores) {
    const raw = `raw-${store}`;
    const name = STORE_NAMES[store];
    const single = figureOf(report, store, "enqueue-single", "rate");
    const vsSchema = ratio(single, figureOf(report, store, raw, "insert-schema"));
    const vsMinimal = ratio(single, figureOf(report, store, raw, "insert-minimal"));
    if (vsSchema && vsMinimal) {
      ratios.push(
        `- ${name}: enqueue one at a time reaches ${vsSchema} of raw single-row INSERTs on underway's schema (${vsMinimal} of the minimal table).`,
      );
    }
    const best = report.scenarios
      .filter((s) => s.store === store && s.def.id.startsWith("drain-"))
      .map((s) => ({ s, f: s.figures.find((f) => f.key === "rate") }))
      .filter((x): x is { s: ScenarioSummary; f: Figure } => x.f !== undefined)
      .sort((a, b) => b.f.spread.median - a.f.spread.median)[0];
    const drainVsSchema = ratio(best?.f, figureOf(report, store, raw, "claim-schema"));
    const drainVsMinimal = ratio(best?.f, figureOf(report, store, raw, "claim-minimal"));
    if (best && drainVsSchema && drainVsMinimal) {
      ratios.push(
        `- ${name}: the fastest drain (${best.s.def.id}) reaches ${drainVsSchema} of the raw claim-and-complete loop on underway's schema (${drainVsMinimal} of the minimal table).`,
      );
    }
  }
  if (ratios.length) lines.push("", "How close to the hardware (medians):", "", ...ratios);

  lines.push("", "Checks (every round):", "");
  for (const s of report.scenarios) {
    // Clause by clause, so that a warning of one round does not repeat what every round checked.
    const checks = [...new Set(s.rounds.flatMap((r) => r.checks.flatMap((c) => c.split("; "))))];
    lines.push(`- ${s.def.number} ${s.def.id}, ${STORE_NAMES[s.store]}: ${checks.join("; ") || "none"}`);
  }
  lines.push("", `Wall time of the whole run: ${formatDuration(report.wallMs)}.`);
  return lines.join("\n");
}
