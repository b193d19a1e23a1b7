// Number, size and time formatting for tables and charts.

export function formatNumber(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(digits)}B`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(digits)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toFixed(digits)}k`;
  if (Number.isInteger(n)) return n.toLocaleString("en-US");
  return n.toFixed(abs < 10 ? 2 : 1);
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i === 0 || v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = s / 60;
  if (m < 60) return `${m.toFixed(m < 10 ? 1 : 0)} min`;
  return `${(m / 60).toFixed(1)} h`;
}

export function formatLag(messages: number | null | undefined, millis: number | null | undefined): string {
  if (millis !== null && millis !== undefined) return `${formatDuration(millis)} behind`;
  if (messages !== null && messages !== undefined) return `${formatNumber(messages)} msgs`;
  return "—";
}

/**
 * Parses RFC 3339, and ClickHouse's `YYYY-MM-DD hh:mm:ss[.fff]` (no zone;
 * taken as UTC, the zone Sluice's tables are written in).
 */
export function parseTime(text: string): Date {
  const clickhouse = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/.exec(text.trim());
  return new Date(clickhouse ? `${clickhouse[1]}T${clickhouse[2]}Z` : text);
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = parseTime(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

export function relativeTime(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "—";
  const t = parseTime(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A short id for display: the first 8 characters of a UUID. */
export function shortId(id: string): string {
  return id.length > 12 ? id.slice(0, 8) : id;
}
