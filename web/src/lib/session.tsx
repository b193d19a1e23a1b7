// Who is signed in: the API key token (sessionStorage) and its role.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { ApiError, api, call, onUnauthorized, tokenStore } from "../api/client";
import type { Session } from "../api/types";

interface SessionContext {
  session: Session | null;
  /** Developers and admins may create, edit, start, stop and delete. */
  canEdit: boolean;
  signIn(token: string): Promise<void>;
  signOut(reason?: string): void;
  /** Why the last session ended, shown on the sign-in page. */
  endedReason: string | null;
  restoring: boolean;
}

const Ctx = createContext<SessionContext | null>(null);

export async function fetchSession(token?: string): Promise<Session> {
  return call(
    api.GET("/v1/session", token ? { headers: { Authorization: `Bearer ${token}` } } : {}),
  );
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(() => tokenStore.get() !== null);
  const [endedReason, setEndedReason] = useState<string | null>(null);

  const signOut = useCallback((reason?: string) => {
    tokenStore.clear();
    setSession(null);
    setEndedReason(reason ?? null);
  }, []);

  useEffect(() => {
    if (!tokenStore.get()) return;
    fetchSession()
      .then(setSession)
      .catch((e) => {
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) signOut("Your key is no longer accepted; sign in again.");
        else setEndedReason(e instanceof Error ? e.message : String(e));
        if (!(e instanceof ApiError && e.status === 0)) tokenStore.clear();
      })
      .finally(() => setRestoring(false));
  }, [signOut]);

  useEffect(() => onUnauthorized(() => signOut("Your key is no longer accepted; sign in again.")), [signOut]);

  const signIn = useCallback(async (token: string) => {
    const s = await fetchSession(token);
    tokenStore.set(token);
    setEndedReason(null);
    setSession(s);
  }, []);

  const value = useMemo<SessionContext>(
    () => ({ session, canEdit: !!session && session.role !== "viewer", signIn, signOut, endedReason, restoring }),
    [session, signIn, signOut, endedReason, restoring],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useSession(): SessionContext {
  const ctx = useContext(Ctx);
  if (!ctx) throw new Error("useSession outside SessionProvider");
  return ctx;
}
