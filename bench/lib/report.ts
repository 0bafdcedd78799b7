import type { Environment } from "./environment.ts";
import type { Measurement, RoundResult, Unit } from "./protocol.ts";
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
  readonly rounds: readonly RoundResult[];
  /** Wall time of each round's child process, ms (start-up included). */
  readonly childWallMs: readonly number[];
  readonly figures: readonly Figure[];
}

export interface Report {
  readonly mode: "full" | "quick";
  readonly rounds: number;
  readonly environment: Environment;
  readonly loadAtEnd: number;
  readonly wallMs: number;
  readonly scenarios: readonly ScenarioSummary[];
}

/** Groups the rounds' measurements by key, in the order the first round gave them. */
export function summarize(def: ScenarioDef, rounds: readonly RoundResult[], childWallMs: readonly number[]): ScenarioSummary {
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
  return { def, rounds, childWallMs, figures };
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

function figureOf(report: Report, id: string, key: string): Figure | undefined {
  return report.scenarios.find((s) => s.def.id === id)?.figures.find((f) => f.key === key);
}

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
    `- Node ${env.node}, better-sqlite3 ${env.betterSqlite3}, SQLite ${env.sqlite}`,
    `- Store: embedded SQLite, a fresh file per round in ${env.tmpdir}, WAL, durability "${env.durability}" (the default: synchronous=NORMAL)`,
    `- Each round runs in a fresh Node process; no-op tasks; logger off`,
    "",
  );
  const withRange = report.rounds > 1;
  lines.push(
    withRange ? "| # | Scenario | Size | Metric | Median | Min – max |" : "| # | Scenario | Size | Metric | Result |",
    withRange ? "|---|---|---|---|---:|---:|" : "|---|---|---|---|---:|",
  );
  for (const s of report.scenarios) {
    s.figures.forEach((f, i) => {
      const cells = [
        i === 0 ? s.def.number : "",
        i === 0 ? s.def.title : "",
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
  const single = figureOf(report, "enqueue-single", "rate");
  const vsSchema = ratio(single, figureOf(report, "raw-sqlite", "insert-schema"));
  const vsMinimal = ratio(single, figureOf(report, "raw-sqlite", "insert-minimal"));
  if (vsSchema && vsMinimal) {
    ratios.push(
      `- Enqueue one at a time reaches ${vsSchema} of raw single-row INSERTs on underway's schema (${vsMinimal} of the minimal table).`,
    );
  }
  const drains = report.scenarios.filter((s) => s.def.id.startsWith("drain-"));
  const best = drains
    .map((s) => ({ s, f: s.figures.find((f) => f.key === "rate") }))
    .filter((x): x is { s: ScenarioSummary; f: Figure } => x.f !== undefined)
    .sort((a, b) => b.f.spread.median - a.f.spread.median)[0];
  const drainVsSchema = ratio(best?.f, figureOf(report, "raw-sqlite", "claim-schema"));
  const drainVsMinimal = ratio(best?.f, figureOf(report, "raw-sqlite", "claim-minimal"));
  if (best && drainVsSchema && drainVsMinimal) {
    ratios.push(
      `- The fastest drain (${best.s.def.id}) reaches ${drainVsSchema} of the raw claim-and-complete loop on underway's schema (${drainVsMinimal} of the minimal table).`,
    );
  }
  if (ratios.length) lines.push("", "How close to the hardware (medians):", "", ...ratios);

  lines.push("", "Checks (every round):", "");
  for (const s of report.scenarios) {
    const checks = [...new Set(s.rounds.flatMap((r) => r.checks))];
    lines.push(`- ${s.def.number} ${s.def.id}: ${checks.join("; ") || "none"}`);
  }
  lines.push("", `Wall time of the whole run: ${formatDuration(report.wallMs)}.`);
  return lines.join("\n");
}
