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

/** What leaving the page would lose, as a question for the user; null when nothing. */
let leaveQuestion: (() => string | null) | null = null;
/** The hash of the page shown, to go back to when the user stays. */
let shownHash = location.hash;

/**
 * While set, leaving the page (another address, sign-out, closing or reloading the tab) asks the
 * user first whenever `question` returns one. Returns the function that removes it.
 */
export function guardLeaving(question: () => string | null): () => void {
  leaveQuestion = question;
  return () => {
    if (leaveQuestion === question) leaveQuestion = null;
  };
}

/** Whether the page holds work that leaving would lose (asks nothing). */
export function unsavedWork(): boolean {
  return Boolean(leaveQuestion?.());
}

/** Whether to go on leaving: true when nothing would be lost or the user says so. */
export function leaveAllowed(): boolean {
  const question = leaveQuestion?.();
  return !question || window.confirm(question);
}

window.addEventListener("hashchange", () => {
  if (location.hash === shownHash) return;
  if (!leaveAllowed()) {
    // Back to the page the user stays on; replaceState fires no hashchange.
    history.replaceState(null, "", shownHash || location.pathname + location.search);
    return;
  }
  shownHash = location.hash;
  route.value = parse();
});

window.addEventListener("beforeunload", (event) => {
  if (leaveQuestion?.()) event.preventDefault();
});

export function navigate(...parts: string[]): void {
  location.hash = `#/${parts.map(encodeURIComponent).join("/")}`;
}

export const href = (...parts: string[]): string => `#/${parts.map(encodeURIComponent).join("/")}`;
