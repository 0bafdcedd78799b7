import { signal } from "@preact/signals";

/** Now, moved every 10 s: pages that show "5 min ago" read it, and so render again as time goes. */
const clock = signal(Date.now());
setInterval(() => (clock.value = Date.now()), 10_000);

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function when(value: string | null | undefined): string {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "—" : dateTime.format(d);
}

export function ago(value: string | null | undefined): string {
  if (!value) return "—";
  const s = Math.round((Math.max(clock.value, Date.now()) - new Date(value).getTime()) / 1000);
  if (s < 60) return `${Math.max(0, s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return when(value);
}

export function count(n: number, cap: number): string {
  return n >= cap ? `${cap.toLocaleString()}+` : n.toLocaleString();
}
