import { signal } from "@preact/signals";

/** The page, from the location hash: `#/tasks/42` is ["tasks", "42"]. */
export const route = signal<string[]>(parse());

function parse(): string[] {
  return location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decoded);
}

/** A segment as typed: an escape that is not one (`100%`) is kept as it is rather than blank the page. */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

window.addEventListener("hashchange", () => (route.value = parse()));

export function navigate(...parts: string[]): void {
  location.hash = `#/${parts.map(encodeURIComponent).join("/")}`;
}

export const href = (...parts: string[]): string => `#/${parts.map(encodeURIComponent).join("/")}`;
