import { useState } from "preact/hooks";
import { signIn } from "../api.ts";

/** The sign-in form; `ended`: shown over a page whose session ended, which goes on after it. */
export function SignIn({ ended = false }: { ended?: boolean }) {
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(login, password);
      setPassword("");
      if (!location.hash) location.hash = "#/activities";
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class={ended ? "signin over-page" : "signin"}>
      <form onSubmit={(e) => void submit(e)} class="card">
        <h1 id={ended ? "session-ended-title" : undefined}>{ended ? "Your session has ended" : "underway"}</h1>
        <p class="muted" data-testid={ended ? "session-ended" : undefined}>
          {ended ? "Sign in again to go on: your unsaved changes are kept on this page." : "Sign in to see your records and your background work."}
        </p>
        <label>
          Login
          <input name="login" autocomplete="username" value={login} onInput={(e) => setLogin(e.currentTarget.value)} required autofocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </div>
  );
}
