import { signal } from "@preact/signals";
import { currentUser } from "./api.ts";

/** Now, moved every 10 s: pages that show "5 min ago" read it, and so render again as time goes. */
const clock = signal(Date.now());
setInterval(() => (clock.value = Date.now()), 10_000);

const formats = new Map<string, Intl.DateTimeFormat>();

/**
 * Dates and times as the signed-in user's profile says: in its time zone and culture, wherever
 * the browser is (before sign-in, the browser's own). A zone or culture this browser does not
 * know falls back to the browser's.
 */
function dateTime(): Intl.DateTimeFormat {
  const user = currentUser.value;
  const key = user ? `${user.culture}|${user.timeZone}` : "";
  let format = formats.get(key);
  if (!format) {
    const style = { dateStyle: "medium", timeStyle: "medium" } as const;
    try {
      format = user ? new Intl.DateTimeFormat(user.culture, { ...style, timeZone: user.timeZone }) : new Intl.DateTimeFormat(undefined, style);
    } catch {
      format = new Intl.DateTimeFormat(undefined, style);
    }
    formats.set(key, format);
  }
  return format;
}

export function when(value: string | null | undefined): string {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "—" : dateTime().format(d);
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
