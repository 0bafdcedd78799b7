import { signal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { recheckSession } from "./api.ts";

export type Topic = "tasks" | "activities";

/** Bumped when the server says that data of a topic changed. */
export const changes = { tasks: signal(0), activities: signal(0) };
/** Whether the live connection is open, for the status dot in the header. */
export const liveConnected = signal(false);

let source: EventSource | null = null;

/** Opens the server-sent event stream after sign-in; the browser reconnects by itself. */
export function startLive(): void {
  if (source) return;
  source = new EventSource("/api/events");
  source.onopen = () => (liveConnected.value = true);
  source.onerror = () => {
    liveConnected.value = false;
    // The stream breaks when the session ends (signed out elsewhere, expired) as when the server
    // restarts: if the session ended, the page goes back to the sign-in form.
    void recheckSession();
  };
  for (const topic of ["tasks", "activities"] as const) source.addEventListener(topic, () => changes[topic].value++);
}

export function stopLive(): void {
  source?.close();
  source = null;
  liveConnected.value = false;
}

/**
 * Runs `load` now, when `deps` change, and when the topic changes on the server, at most once
 * per `minGapMs`: a busy queue does not make every page reload many times a second. `load` gets
 * `isCurrent`, false once a later load started or the page went away: an answer that arrives
 * after a newer one (an older filter's, a previous task's) must not be shown.
 */
export function useLive(
  topic: Topic | readonly Topic[],
  load: (isCurrent: () => boolean) => Promise<void> | void,
  deps: readonly unknown[],
  minGapMs = 700,
): void {
  const topics = typeof topic === "string" ? [topic] : topic;
  const stamps = topics.map((t) => changes[t].value);
  const key = stamps.join(",");
  const seen = useRef(key);
  const last = useRef(0);
  const pending = useRef<number | null>(null);
  const loadRef = useRef(load);
  loadRef.current = load;
  const generation = useRef(0);
  const start = (): void => {
    const mine = ++generation.current;
    last.current = Date.now();
    void loadRef.current(() => mine === generation.current);
  };
  useEffect(() => {
    start();
  }, deps);
  useEffect(() => {
    if (seen.current === key) return;
    seen.current = key;
    const wait = last.current + minGapMs - Date.now();
    if (pending.current !== null) return;
    pending.current = window.setTimeout(
      () => {
        pending.current = null;
        start();
      },
      Math.max(0, wait),
    );
  }, [key]);
  useEffect(() => () => {
    generation.current++;
    if (pending.current !== null) window.clearTimeout(pending.current);
  }, []);
}
