import { describe, expect, it } from "vitest";
import { baseType, compatibility, fitType, serverHas, typeFamilies } from "./typeCompat";

describe("compatibility", () => {
  it("warns String → Int64", () => {
    const c = compatibility("String", "Int64");
    expect(c.level).toBe("warn");
    expect(c.message).toMatch(/String → Int64/);
  });
  it("accepts same and widening types", () => {
    expect(compatibility("Int64", "Int64").level).toBe("ok");
    expect(compatibility("Int64", "Float64").level).toBe("ok");
    expect(compatibility("Int32", "Int64").level).toBe("ok");
    expect(compatibility("Float64", "String").level).toBe("ok");
    expect(compatibility("DateTime64(3)", "DateTime").level).toBe("ok");
  });
  it("warns about narrowing, signs, fractions and dates", () => {
    expect(compatibility("Int64", "UInt64").level).toBe("warn");
    expect(compatibility("Int64", "Int8").level).toBe("warn");
    expect(compatibility("Float64", "Int64").level).toBe("warn");
    expect(compatibility("String", "DateTime").level).toBe("warn");
  });
  it("flags arrays against scalars", () => {
    expect(compatibility("Array(String)", "String").level).toBe("ok");
    expect(compatibility("Array(Int64)", "Int64").level).toBe("error");
    expect(compatibility("Int64", "Array(Int64)").level).toBe("error");
    expect(compatibility("Array(String)", "Array(Int64)").level).toBe("warn");
  });
  it("notes nulls going into non-Nullable columns", () => {
    const c = compatibility("Nullable(Int64)", "Int64");
    expect(c.level).toBe("info");
    expect(c.message).toMatch(/zero value/);
    expect(compatibility("Nullable(Int64)", "Nullable(Int64)").level).toBe("ok");
  });
  it("strips wrappers", () => {
    expect(baseType("LowCardinality(Nullable(String))")).toBe("String");
  });
});

describe("server types", () => {
  it("names every family of a type, not its literals", () => {
    expect(typeFamilies("Nullable(DateTime64(3, 'Europe/Berlin'))")).toEqual(["Nullable", "DateTime64"]);
    expect(typeFamilies("Enum8('a' = 1, 'Nullable' = 2)")).toEqual(["Enum8"]);
    expect(typeFamilies("Decimal(18, 4)")).toEqual(["Decimal"]);
  });
  it("offers only what the server has, and fits defaults to it", () => {
    const old = new Set(["String", "DateTime", "Nullable", "UInt8", "Decimal"]);
    expect(serverHas("Nullable(String)", old)).toBe(true);
    expect(serverHas("DateTime64(3)", old)).toBe(false);
    expect(serverHas("DateTime64(3)", null)).toBe(true);
    expect(fitType("DateTime64(3)", old)).toBe("DateTime");
    expect(fitType("Nullable(Bool)", old)).toBe("Nullable(UInt8)");
    expect(fitType("String", old)).toBe("String");
  });
});
