import { describe, expect, it } from "vitest";
import { fillHistory, ratePerSecond, seriesSummary } from "./metrics";

const NOW = Date.parse("2024-05-01T12:00:05Z");

describe("fillHistory", () => {
  it("covers the window in even buckets and fills gaps with zero", () => {
    const s = fillHistory(
      {
        bucketSeconds: 10,
        points: [
          { at: "2024-05-01T11:59:40Z", fetchedEvents: 120, fetchedBytes: 9000, sentRows: 100, sentBytes: 8000, errors: 2, lagMessages: 30 },
          { at: "2024-05-01T12:00:00Z", fetchedEvents: 50, fetchedBytes: 4000, sentRows: 50, sentBytes: 4000, errors: 0, lagMessages: 5 },
        ],
      },
      { minutes: 1, now: NOW, source: "kafka" },
    );
    expect(s.x).toHaveLength(6);
    expect(s.x[s.x.length - 1]).toBe(Date.parse("2024-05-01T12:00:00Z") / 1000);
    expect(s.x[1] - s.x[0]).toBe(10);
    // 11:59:10, :20, :30, :40, :50, 12:00:00
    expect(s.rowsPerSecond).toEqual([0, 0, 0, 10, 0, 5]);
    expect(s.bytesPerSecond).toEqual([0, 0, 0, 800, 0, 400]);
    expect(s.errors).toEqual([0, 0, 0, 2, 0, 0]);
    expect(s.lag).toEqual([null, null, null, 30, null, 5]);
    expect(s.lagUnit).toBe("messages");
  });

  it("uses MillisBehindLatest for Kinesis", () => {
    const s = fillHistory(
      { bucketSeconds: 10, points: [{ at: "2024-05-01T12:00:00Z", fetchedEvents: 1, fetchedBytes: 1, sentRows: 1, sentBytes: 1, errors: 0, lagMillis: 1500, lagMessages: null }] },
      { minutes: 1, now: NOW, source: "kinesis" },
    );
    expect(s.lagUnit).toBe("ms");
    expect(s.lag[s.lag.length - 1]).toBe(1500);
  });

  it("aligns points that are not on bucket boundaries, and ignores bad timestamps", () => {
    const s = fillHistory(
      {
        bucketSeconds: 10,
        points: [
          { at: "2024-05-01T11:59:53.500Z", fetchedEvents: 0, fetchedBytes: 0, sentRows: 30, sentBytes: 0, errors: 0 },
          { at: "not a time", fetchedEvents: 0, fetchedBytes: 0, sentRows: 999, sentBytes: 0, errors: 0 },
        ],
      },
      { minutes: 1, now: NOW, source: "kafka" },
    );
    expect(s.rowsPerSecond).toEqual([0, 0, 0, 0, 3]);
  });

  it("keeps points newer than the browser's clock", () => {
    const s = fillHistory(
      { bucketSeconds: 10, points: [{ at: "2024-05-01T12:00:20Z", fetchedEvents: 0, fetchedBytes: 0, sentRows: 10, sentBytes: 0, errors: 0 }] },
      { minutes: 1, now: NOW, source: "kafka" },
    );
    expect(s.rowsPerSecond[s.rowsPerSecond.length - 1]).toBe(1);
    expect(s.x).toHaveLength(8);
  });

  it("leaves out the bucket in progress until it has data", () => {
    const s = fillHistory(
      { bucketSeconds: 10, points: [{ at: "2024-05-01T11:59:50Z", fetchedEvents: 0, fetchedBytes: 0, sentRows: 20, sentBytes: 0, errors: 0 }] },
      { minutes: 1, now: NOW, source: "kafka" },
    );
    expect(s.x[s.x.length - 1]).toBe(Date.parse("2024-05-01T11:59:50Z") / 1000);
    expect(s.rowsPerSecond).toEqual([0, 0, 0, 0, 2]);
  });

  it("an hour of 10 s buckets; empty history is all zero", () => {
    const s = fillHistory({ bucketSeconds: 10, points: [] }, { minutes: 60, now: NOW, source: "kafka" });
    expect(s.x).toHaveLength(359);
    expect(s.rowsPerSecond.every((v) => v === 0)).toBe(true);
    expect(seriesSummary(s)).toMatchObject({ rows: 0, errors: 0, lastLag: null });
  });

  it("summarises totals back from rates", () => {
    const s = fillHistory(
      {
        bucketSeconds: 30,
        points: [
          { at: "2024-05-01T11:59:30Z", fetchedEvents: 0, fetchedBytes: 0, sentRows: 300, sentBytes: 3000, errors: 1, lagMessages: 7 },
          { at: "2024-05-01T12:00:00Z", fetchedEvents: 0, fetchedBytes: 0, sentRows: 60, sentBytes: 600, errors: 3 },
        ],
      },
      { minutes: 5, now: NOW, source: "kafka" },
    );
    expect(s.rowsPerSecond.slice(-2)).toEqual([10, 2]);
    expect(seriesSummary(s)).toEqual({ rows: 360, bytes: 3600, errors: 4, peakRowsPerSecond: 10, lastLag: 7 });
  });
});

describe("ratePerSecond", () => {
  it("divides by the bucket and refuses nonsense", () => {
    expect(ratePerSecond(50, 10)).toBe(5);
    expect(ratePerSecond(50, 0)).toBe(0);
    expect(ratePerSecond(Number.NaN, 10)).toBe(0);
  });
});
