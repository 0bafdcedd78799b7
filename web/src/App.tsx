import type { ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";
import { currentUser, sessionChecked, sessionEnded, signOut } from "./api.ts";
import { liveConnected, startLive, stopLive } from "./live.ts";
import { Activities } from "./pages/Activities.tsx";
import { Processes } from "./pages/Processes.tsx";
import { SignIn } from "./pages/SignIn.tsx";
import { TaskPage } from "./pages/TaskPage.tsx";
import { Tasks } from "./pages/Tasks.tsx";
import { href, leaveAllowed, route } from "./router.ts";

const SECTIONS = [
  { path: "activities", label: "Activities" },
  { path: "tasks", label: "Background tasks" },
  { path: "processes", label: "Processes" },
  { path: "configuration", label: "Configuration", adminOnly: true },
] as const;

/** The Configuration section (code editor and modeler) is loaded when first opened. */
function LazyConfiguration() {
  const [page, setPage] = useState<{ Page: ComponentType } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    import("./pages/Configuration.tsx").then(
      (m) => setPage({ Page: m.Configuration }),
      (err: Error) => setError(err.message),
    );
  }, []);
  if (error) return <p class="error">{error}</p>;
  return page ? <page.Page /> : <p class="muted">Loading the editors…</p>;
}

export function App() {
  const user = currentUser.value;
  const ended = sessionEnded.value;
  const [signOutError, setSignOutError] = useState<string | null>(null);
  useEffect(() => {
    if (user && !ended) startLive();
    else stopLive();
  }, [user?.id, ended]);
  if (!sessionChecked.value) return null;
  if (!user) return <SignIn />;
  const [section = "activities", id] = route.value;
  return (
    <div class="shell">
      {ended && (
        <div class="session-ended" role="dialog" aria-modal="true" aria-labelledby="session-ended-title">
          <SignIn ended />
        </div>
      )}
      <header class="topbar" inert={ended}>
        <span class="brand">underway</span>
        <nav>
          {SECTIONS.filter((s) => !("adminOnly" in s) || user.isAdmin).map((s) => (
            <a key={s.path} href={href(s.path)} class={section === s.path ? "active" : ""}>
              {s.label}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        <span class={`live ${liveConnected.value ? "on" : "off"}`} title={liveConnected.value ? "live updates on" : "live updates reconnecting"}>
          ● live
        </span>
        <span class="who" data-testid="current-user">
          {user.contactName} ({user.name}){user.isAdmin ? " · administrator" : ""}
        </span>
        <button
          class="link"
          onClick={() => {
            if (!leaveAllowed()) return;
            setSignOutError(null);
            signOut().catch((error: Error) => setSignOutError(error.message));
          }}
        >
          Sign out
        </button>
      </header>
      {signOutError && (
        <p class="error" role="alert" data-testid="sign-out-error">
          {signOutError}
        </p>
      )}
      {/* Keyed by the user: pages kept through a sign-in again go on only for the same user. */}
      <main key={user.id} inert={ended}>
        {section === "activities" && <Activities />}
        {/* Keyed by the id: another task's or instance's page starts empty, not with the previous one's data. */}
        {section === "tasks" && (id ? <TaskPage key={id} id={id} /> : <Tasks />)}
        {section === "processes" && <Processes key={id ?? ""} instanceId={id ?? null} />}
        {section === "configuration" && (user.isAdmin ? <LazyConfiguration /> : <p>Only administrators may open the configuration.</p>)}
      </main>
    </div>
  );
}
