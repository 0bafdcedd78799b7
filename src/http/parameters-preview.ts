/**
 * Decoded task parameters as the task page shows them: JSON-safe, and shortened so that a task
 * whose parameters are a megabyte still renders a small page.
 */
const MAX_STRING = 300;
const MAX_ITEMS = 50;
const MAX_DEPTH = 8;

export type Preview = null | boolean | number | string | Preview[] | { [key: string]: Preview };

export function previewValue(value: unknown, depth = 0): Preview {
  if (value === null || value === undefined) return null;
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (typeof value === "bigint") return `${value.toString()}n`;
  if (typeof value === "string") {
    return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}… (${value.length - MAX_STRING} more characters)` : value;
  }
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  if (depth >= MAX_DEPTH) return "… (nested too deep to show)";
  if (Array.isArray(value)) {
    const shown = value.slice(0, MAX_ITEMS).map((v) => previewValue(v, depth + 1));
    if (value.length > MAX_ITEMS) shown.push(`… (${value.length - MAX_ITEMS} more items)`);
    return shown;
  }
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    const out: { [key: string]: Preview } = {};
    for (const [k, v] of entries.slice(0, MAX_ITEMS)) put(out, shortKey(k), previewValue(v, depth + 1));
    if (entries.length > MAX_ITEMS) put(out, "…", `${entries.length - MAX_ITEMS} more keys`);
    return out;
  }
  return String(value);
}

/** A key as long as a shown string at most. */
function shortKey(key: string): string {
  return key.length > MAX_STRING ? `${key.slice(0, MAX_STRING)}… (${key.length - MAX_STRING} more characters)` : key;
}

/**
 * Adds an own property, whatever its name (an assignment to `__proto__` would set the object's
 * prototype instead), under a name no other property of the preview has: a shortened key or the
 * "more keys" marker that meets a key of the value gets a number.
 */
function put(out: { [key: string]: Preview }, key: string, value: Preview): void {
  let name = key;
  for (let n = 2; Object.hasOwn(out, name); n++) name = `${key} (${n})`;
  Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
}
