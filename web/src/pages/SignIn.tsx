import { useState, type FormEvent } from "react";
import { ApiError, errorMessage } from "../api/client";
import { Button, Field } from "../components/ui";
import { useSession } from "../lib/session";

export function SignIn() {
  const { signIn, endedReason } = useSession();
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const value = token.trim();
    if (!/^[^.\s]+\.[^\s]+$/.test(value)) {
      setError("Paste the whole token: the key id, a dot, then the secret (keyId.secret).");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await signIn(value);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        setError("This key was not accepted. Check that it is complete and not revoked.");
      } else {
        setError(errorMessage(err));
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="signin">
      <form className="signin-card" onSubmit={submit} noValidate>
        <div className="brand brand-large">
          <span className="brand-mark" aria-hidden="true" />
          Sluice
        </div>
        <h1>Sign in</h1>
        <p className="muted">
          Paste an API key token. It is kept in this browser tab only and forgotten when the tab closes.
        </p>
        {endedReason && !error && <p className="notice">{endedReason}</p>}
        <Field label="API key token" name="token" error={error ?? undefined} hint="Format: keyId.secret, as printed when the key was created.">
          {(p) => (
            <input
              {...p}
              type="password"
              autoComplete="off"
              spellCheck={false}
              autoFocus
              value={token}
              onChange={(e) => setToken(e.target.value)}
              placeholder="sk_…"
              data-testid="signin-token"
            />
          )}
        </Field>
        <Button type="submit" variant="primary" busy={busy} data-testid="signin-submit" className="btn-block">
          Sign in
        </Button>
      </form>
    </div>
  );
}
