// Metrics history → evenly spaced chart series over a window, with the
// buckets the API leaves out (no traffic) filled with zero.
import type { HistoryPoint, MetricsHistory } from "../api/types";

export interface ChartSeries {
  /** Bucket starts, Unix seconds, ascending, evenly spaced. */
  x: number[];
  rowsPerSecond: number[];
  bytesPerSecond: number[];
  /** Records that went to the error table, per bucket. */
  errors: number[];
  /** Lag at the bucket; null where unknown (no report in the bucket). */
  lag: (number | null)[];
  lagUnit: "messages" | "ms";
  bucketSeconds: number;
}

/** Per-second rate of a counter delta over a bucket. */
export function ratePerSecond(value: number, bucketSeconds: number): number {
  if (!Number.isFinite(value) || bucketSeconds <= 0) return 0;
  return value / bucketSeconds;
}

export function fillHistory(
  history: MetricsHistory,
  options: { minutes: number; now: number; source: "kafka" | "kinesis" },
): ChartSeries {
  const bucket = history.bucketSeconds > 0 ? history.bucketSeconds : 10;
  const nowSec = Math.floor(options.now / 1000);
  const last = Math.floor(nowSec / bucket) * bucket;
  const first = last - Math.ceil((options.minutes * 60) / bucket) * bucket + bucket;

  const byBucket = new Map<number, HistoryPoint>();
  for (const p of history.points) {
    const at = Math.floor(Date.parse(p.at) / 1000);
    if (!Number.isFinite(at)) continue;
    byBucket.set(Math.floor(at / bucket) * bucket, p);
  }
  // The bucket now in progress has no report yet more often than not: end
  // before it then, rather than draw a dip to zero that is not real.
  // Data newer than our clock (clock skew) is kept rather than dropped.
  let end = byBucket.has(last) ? last : last - bucket;
  for (const at of byBucket.keys()) end = Math.max(end, at);

  const lagUnit = options.source === "kinesis" ? "ms" : "messages";
  const series: ChartSeries = {
    x: [],
    rowsPerSecond: [],
    bytesPerSecond: [],
    errors: [],
    lag: [],
    lagUnit,
    bucketSeconds: bucket,
  };
  for (let at = first; at <= end; at += bucket) {
    const p = byBucket.get(at);
    series.x.push(at);
    series.rowsPerSecond.push(p ? ratePerSecond(p.sentRows, bucket) : 0);
    series.bytesPerSecond.push(p ? ratePerSecond(p.sentBytes, bucket) : 0);
    series.errors.push(p ? p.errors : 0);
    const lag = p ? (lagUnit === "ms" ? p.lagMillis : p.lagMessages) : null;
    series.lag.push(lag ?? null);
  }
  return series;
}

/** Totals over the window, for the chart headers. */
export function seriesSummary(s: ChartSeries) {
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  const lastLag = [...s.lag].reverse().find((v) => v !== null) ?? null;
  return {
    rows: sum(s.rowsPerSecond) * s.bucketSeconds,
    bytes: sum(s.bytesPerSecond) * s.bucketSeconds,
    errors: sum(s.errors),
    peakRowsPerSecond: Math.max(0, ...s.rowsPerSecond),
    lastLag,
  };
}
