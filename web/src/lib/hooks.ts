import { useCallback, useEffect, useRef, useState } from "react";

export interface Polled<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** When the data last arrived. */
  updatedAt: number | null;
  reload: () => Promise<void>;
}

/**
 * Loads with `fetcher` now and every `intervalMs` (0: once), keeping the
 * last good data when a refresh fails. `deps` restart it.
 */
export function usePoll<T>(fetcher: () => Promise<T>, intervalMs: number, deps: unknown[]): Polled<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [updatedAt, setUpdatedAt] = useState<number | null>(null);
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;
  const generation = useRef(0);
  const inFlight = useRef(false);

  const load = useCallback(async (gen: number) => {
    if (inFlight.current) return;
    inFlight.current = true;
    try {
      const value = await fetcherRef.current();
      if (gen !== generation.current) return;
      setData(value);
      setError(null);
      setUpdatedAt(Date.now());
    } catch (e) {
      if (gen !== generation.current) return;
      setError(e);
    } finally {
      inFlight.current = false;
      if (gen === generation.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    generation.current += 1;
    const gen = generation.current;
    inFlight.current = false;
    setLoading(true);
    setData(undefined);
    setError(null);
    void load(gen);
    if (!intervalMs) return;
    const timer = window.setInterval(() => void load(gen), intervalMs);
    return () => window.clearInterval(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);

  const reload = useCallback(async () => {
    inFlight.current = false;
    await load(generation.current);
  }, [load]);

  return { data, error, loading, updatedAt, reload };
}

/** Runs async actions one at a time, exposing whether one is running. */
export function useBusy(): [boolean, <T>(action: () => Promise<T>) => Promise<T | undefined>] {
  const [busy, setBusy] = useState(false);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  const run = useCallback(async <T,>(action: () => Promise<T>) => {
    setBusy(true);
    try {
      return await action();
    } finally {
      if (mounted.current) setBusy(false);
    }
  }, []);
  return [busy, run];
}
