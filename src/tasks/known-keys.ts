/**
 * Options objects are checked for keys they do not know: a misspelled option (`wroker`,
 * `maxAtempts`, `delayMS`) would otherwise be ignored without a word, and its default used where
 * the caller meant something else.
 */

/**
 * The keys of T, listed at run time: `keysOf<RuntimeConfig>()(["db", ...])` fails to compile while
 * a key of T is missing from the list (its error names the missing keys), so that the list cannot
 * fall behind the type.
 */
export function keysOf<T>() {
  return <const K extends readonly (keyof T & string)[]>(
    keys: K & ([Exclude<keyof T, K[number]>] extends [never] ? unknown : { readonly missing: Exclude<keyof T, K[number]> }),
  ): readonly string[] => keys;
}

/**
 * Throws `Failure` naming `where` and the nearest known key for the first key of `value` not in
 * `known`; `noun` is what the keys are called ("option", or "field" in a file).
 */
export function checkKnownKeys(
  value: object,
  known: readonly string[],
  where: string,
  Failure: new (message: string) => Error = TypeError,
  noun = "option",
): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const near = nearest(key, known);
    throw new Failure(
      `${where} has no ${noun} ${JSON.stringify(key)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ""}; its ${noun}s are ${known.join(", ")}`,
    );
  }
}

/** The known key a slip of the hand away: the same but for case, or at most two edits off. */
function nearest(key: string, known: readonly string[]): string | null {
  const lower = key.toLowerCase();
  let best: string | null = null;
  let bestDistance = 3;
  for (const candidate of known) {
    if (candidate.toLowerCase() === lower) return candidate;
    const distance = editDistance(lower, candidate.toLowerCase(), bestDistance);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, or `limit` once it reaches it (keys are short; this stays cheap). */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return Math.min(previous[b.length]!, limit);
}
