import { ToastProvider } from "./components/Toasts";
import { Loading } from "./components/ui";
import { href, useRoute } from "./lib/router";
import { SessionProvider, useSession } from "./lib/session";
import { PipeDetail } from "./pages/PipeDetail";
import { PipesList } from "./pages/PipesList";
import { SignIn } from "./pages/SignIn";
import { Wizard } from "./pages/wizard/Wizard";

export function App() {
  return (
    <ToastProvider>
      <SessionProvider>
        <Shell />
      </SessionProvider>
    </ToastProvider>
  );
}

function Shell() {
  const { session, restoring, signOut, canEdit } = useSession();
  const route = useRoute();
  if (restoring) return <Loading label="Restoring your session…" />;
  if (!session) return <SignIn />;
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <a className="brand" href={href.pipes} aria-label="Sluice: pipes">
          <span className="brand-mark" aria-hidden="true" />
          <span className="brand-text">Sluice</span>
        </a>
        <nav aria-label="Main">
          <a href={href.pipes} aria-current={route.name === "pipes" || route.name === "pipe" ? "page" : undefined}>
            Pipes
          </a>
          {canEdit && (
            <a href={href.newPipe} aria-current={route.name === "new" ? "page" : undefined} data-testid="nav-new-pipe">
              New pipe
            </a>
          )}
        </nav>
        <div className="whoami">
          <span className="whoami-name" data-testid="session-name">
            {session.name}
          </span>
          <span className={`role role-${session.role}`} data-testid="session-role">
            {session.role}
          </span>
          <button type="button" className="btn btn-ghost btn-small" onClick={() => signOut()} data-testid="sign-out">
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {route.name === "pipes" && <PipesList />}
        {route.name === "pipe" && <PipeDetail id={route.id} />}
        {route.name === "new" &&
          (canEdit ? (
            <Wizard />
          ) : (
            <div className="page">
              <p>Viewers cannot create pipes. <a href={href.pipes}>Back to pipes</a></p>
            </div>
          ))}
        {route.name === "notFound" && (
          <div className="page">
            <h1>Page not found</h1>
            <p>
              Nothing lives at <code>{route.path}</code>. <a href={href.pipes}>Go to the pipes</a>.
            </p>
          </div>
        )}
      </main>
    </div>
  );
}
