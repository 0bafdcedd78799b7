import Table from "cli-table3";
import type { TaskInfo } from "../tasks/types.ts";

const time = (d: Date | null): string => (d ? d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "");

export function tasksTable(tasks: readonly TaskInfo[]): string {
  const table = new Table({
    head: ["id", "name", "state", "attempt", "queue", "user", "created", "finished", "last error"],
    style: { head: [], border: [] },
  });
  for (const t of tasks) {
    table.push([
      t.id,
      t.name,
      t.state,
      `${t.attempt}/${t.maxAttempts}`,
      t.queue,
      t.initiator?.userId ?? "",
      time(t.createdAt),
      time(t.finishedAt),
      t.lastError ? truncate(`${t.lastError.name}: ${t.lastError.message}`, 60) : "",
    ]);
  }
  return table.toString();
}

export function taskDetails(t: TaskInfo): string {
  const lines = [
    `task ${t.id}: ${t.name}`,
    `  state      ${t.state} (attempt ${t.attempt} of ${t.maxAttempts})`,
    `  queue      ${t.queue}, priority ${t.priority}`,
    `  user       ${t.initiator ? t.initiator.userId : "(none)"}${t.withUserConnection ? " (with user connection)" : ""}`,
    `  created    ${time(t.createdAt)}`,
    `  run at     ${time(t.runAt)}`,
    `  started    ${time(t.startedAt)}`,
    `  finished   ${time(t.finishedAt)}`,
    `  worker     ${t.workerId ?? ""}`,
    `  timeout    ${t.timeoutMs ? `${t.timeoutMs} ms` : "none"}`,
  ];
  if (t.progress !== null) lines.push(`  progress   ${Math.round(t.progress * 100)}%${t.progressMessage ? ` ${t.progressMessage}` : ""}`);
  for (const e of t.errors) {
    lines.push(`  error (attempt ${e.attempt}, ${time(e.at)}): ${e.name}: ${e.message}`);
    if (e.stack) lines.push(...e.stack.split("\n").slice(1, 6).map((l) => `      ${l.trim()}`));
  }
  return lines.join("\n");
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
