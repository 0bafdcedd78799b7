/**
 * How long a health check or a scrape waits for the store, ms: a store that does not answer (a
 * network that drops packets, a server that hangs) would otherwise hold the answer until the
 * driver's own timeouts, past a scraper's (Prometheus gives up after 10 s by default), and the
 * process's own counts would go unseen exactly when they matter.
 */
export const STORE_CHECK_LIMIT_MS = 2_000;

/** `work`'s outcome, or a rejection naming `what` once `ms` have passed without one. */
export function withinMs<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
