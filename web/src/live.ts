import { signal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { currentUser, recheckSession, sessionEnded } from "./api.ts";

export type Topic = "tasks" | "activities";

const TOPICS = ["tasks", "activities"] as const;

/** Bumped when the server says that data of a topic changed. */
export const changes = { tasks: signal(0), activities: signal(0) };
/** Whether the live connection is open, for the status dot in the header. */
export const liveConnected = signal(false);

let source: EventSource | null = null;
/** The stream is wanted (signed in); it is closed while the tab is hidden. */
let wanted = false;
/** A stream was open before: the next one to open may have missed changes. */
let openedBefore = false;
let retryTimer: number | null = null;
let retryMs = 1_000;
const MAX_RETRY_MS = 30_000;

/** Every open page loads its data again once: what changed while no stream was open sent no event. */
function bumpAll(): void {
  for (const topic of TOPICS) changes[topic].value++;
}

function open(): void {
  if (source || !wanted || document.visibilityState === "hidden") return;
  const stream = new EventSource("/api/events");
  source = stream;
  stream.onopen = () => {
    liveConnected.value = true;
    retryMs = 1_000;
    if (openedBefore) bumpAll();
    openedBefore = true;
  };
  stream.onerror = () => {
    liveConnected.value = false;
    // The stream breaks when the session ends (signed out elsewhere, expired) as when the server
    // restarts: if the session ended, the page goes back to the sign-in form. A browser retries
    // by itself after a network error only: an answer that is not a stream (a proxy's 502 while
    // the server restarts) closes it for good, so it is opened again here, later and later.
    void recheckSession().then(() => {
      if (stream.readyState !== EventSource.CLOSED || source !== stream) return;
      source = null;
      if (!currentUser.value || sessionEnded.value) return;
      retryTimer = window.setTimeout(() => {
        retryTimer = null;
        open();
      }, retryMs);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    });
  };
  for (const topic of TOPICS) stream.addEventListener(topic, () => changes[topic].value++);
}

function close(): void {
  source?.close();
  source = null;
  liveConnected.value = false;
  if (retryTimer !== null) window.clearTimeout(retryTimer);
  retryTimer = null;
}

/**
 * A hidden tab gives its stream up: a browser opens at most six connections to a server over
 * HTTP/1.1, and each tab's stream holds one for good, so six tabs would leave none for any
 * request. Shown again, it opens one and its page loads what changed meanwhile.
 */
document.addEventListener("visibilitychange", () => {
  if (!wanted) return;
  if (document.visibilityState === "hidden") close();
  else open();
});

/** Opens the server-sent event stream after sign-in. */
export function startLive(): void {
  wanted = true;
  open();
}

export function stopLive(): void {
  wanted = false;
  openedBefore = false;
  retryMs = 1_000;
  close();
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
