import { signal } from "@preact/signals";
import { unsavedWork } from "./router.ts";

/** The signed-in user as /api/auth/me tells it; null before sign-in. */
export interface User {
  id: string;
  name: string;
  contactId: string;
  contactName: string;
  culture: string;
  timeZone: string;
  isAdmin: boolean;
}

export const currentUser = signal<User | null>(null);
/**
 * The session ended under a page that holds unsaved work (it expired, or was signed out in
 * another tab): the page stays, with its work, under the sign-in form, and goes on when the same
 * user signs in again. Without unsaved work the page goes back to the plain sign-in form.
 */
export const sessionEnded = signal(false);
/** Known once /api/auth/me answered: until then the page shows nothing rather than the sign-in form. */
export const sessionChecked = signal(false);
// The CSRF token lives in memory only; the session itself is the HttpOnly cookie.
let csrfToken: string | null = null;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** Calls the JSON API with the session cookie; writes carry the CSRF token. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["x-csrf-token"] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? null : JSON.stringify(body), credentials: "same-origin" });
  } catch {
    // The browser's own words ("Failed to fetch") say nothing to a user.
    throw new ApiError(0, "The server cannot be reached. Check the connection and try again.", {});
  }
  const text = await response.text();
  const parsed = parseBody(text);
  // Not the server's JSON: a proxy's error page while the server restarts, say.
  if (parsed === null) {
    throw new ApiError(response.status, `The server answered ${response.status} ${response.statusText}`.trim() + " without data; it may be restarting. Try again.", {});
  }
  if (response.status === 401 && path !== "/api/auth/login") sessionLost();
  if (!response.ok) throw new ApiError(response.status, typeof parsed.error === "string" ? parsed.error : `${response.status} ${response.statusText}`, parsed);
  return parsed as T;
}

function parseBody(text: string): Record<string, unknown> | null {
  if (!text) return {};
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The session is gone: keep the page under the sign-in form if it holds unsaved work. */
function sessionLost(): void {
  csrfToken = null;
  if (!currentUser.value) return;
  if (unsavedWork()) sessionEnded.value = true;
  else currentUser.value = null;
}

/**
 * A session begins: the same user as the page kept goes on with it; another user gets fresh pages
 * (the app keys them by the user's id), since the kept work was not theirs.
 */
function sessionBegins(user: User | null, token: string | null): void {
  csrfToken = token;
  if (!user) {
    sessionLost();
    return;
  }
  sessionEnded.value = false;
  currentUser.value = user;
}

export async function loadSession(): Promise<void> {
  try {
    const me = await api<{ user: User | null; csrfToken: string | null }>("GET", "/api/auth/me");
    sessionBegins(me.user, me.csrfToken);
  } catch {
    if (!sessionEnded.value) currentUser.value = null;
  } finally {
    sessionChecked.value = true;
  }
}

/**
 * Asks the server whether the session still holds, when the page has a reason to doubt it (the
 * live stream broke). Signed out there: the page goes back to the sign-in form. No answer (the
 * server restarting): nothing changes, the stream reconnects by itself.
 */
export async function recheckSession(): Promise<void> {
  let me: { user: User | null; csrfToken: string | null };
  try {
    me = await api<{ user: User | null; csrfToken: string | null }>("GET", "/api/auth/me");
  } catch {
    return;
  }
  if (me.user?.id !== currentUser.value?.id || (me.user && sessionEnded.value)) sessionBegins(me.user, me.csrfToken);
}

/**
 * The other tabs of this browser share the session cookie: signing out in one signs them all out,
 * and signing in makes them load the new session.
 */
const tabs = typeof BroadcastChannel === "function" ? new BroadcastChannel("underway-session") : null;
tabs?.addEventListener("message", (event: MessageEvent) => {
  if (event.data === "signed-out") {
    sessionLost();
  } else if (event.data === "signed-in") {
    void loadSession();
  }
});

export async function signIn(login: string, password: string): Promise<void> {
  const answer = await api<{ user: User; csrfToken: string }>("POST", "/api/auth/login", { login, password });
  // The bearer token in the answer is not kept: the browser uses the HttpOnly cookie.
  sessionBegins(answer.user, answer.csrfToken);
  tabs?.postMessage("signed-in");
}

/**
 * Signs out on the server first: should it not answer, the session cookie would still hold and a
 * reload would sign the user in again, so the page stays signed in and the error is thrown. A
 * session the server no longer knows (401) is signed out already.
 */
export async function signOut(): Promise<void> {
  try {
    await api("POST", "/api/auth/logout");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      throw new ApiError(error instanceof ApiError ? error.status : 0, `You are still signed in: ${(error as Error).message}`, {});
    }
  }
  csrfToken = null;
  sessionEnded.value = false;
  currentUser.value = null;
  tabs?.postMessage("signed-out");
}

export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") search.set(k, String(v));
  const text = search.toString();
  return text ? `?${text}` : "";
}
