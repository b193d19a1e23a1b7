import { describe, expect, it } from "vitest";
import { formatBytes, formatDuration, formatLag, formatNumber, parseTime, relativeTime } from "./format";

describe("format", () => {
  it("reads ClickHouse date-times as UTC, and RFC 3339 as given", () => {
    expect(parseTime("2026-11-21 09:00:55").toISOString()).toBe("2026-11-21T09:00:55.000Z");
    expect(parseTime("2026-11-21 09:00:55.123").toISOString()).toBe("2026-11-21T09:00:55.123Z");
    expect(parseTime("2026-11-21T10:00:00+01:00").toISOString()).toBe("2026-11-21T09:00:00.000Z");
  });
  it("says how long ago", () => {
    const now = Date.parse("2026-11-21T09:01:00Z");
    expect(relativeTime("2026-11-21 09:00:30", now)).toBe("30 s ago");
    expect(relativeTime("2026-11-21T08:01:00Z", now)).toBe("1 h ago");
    expect(relativeTime(null, now)).toBe("—");
  });
  it("formats numbers, bytes, durations and lag", () => {
    expect(formatNumber(1234)).toBe("1,234");
    expect(formatNumber(12345)).toBe("12.3k");
    expect(formatNumber(2.5)).toBe("2.50");
    expect(formatNumber(null)).toBe("—");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatDuration(1500)).toBe("1.5 s");
    expect(formatLag(null, 2500)).toBe("2.5 s behind");
    expect(formatLag(15, null)).toBe("15 msgs");
    expect(formatLag(null, null)).toBe("—");
  });
});
