import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { OPENAPI_PATH, SCHEMA_TYPES_PATH, generateSchemaTypes } from "../../scripts/generate-api.mjs";

describe("schema.d.ts", () => {
  it("matches openapi/openapi.json (run `npm run generate` if this fails)", async () => {
    const expected = await generateSchemaTypes(OPENAPI_PATH);
    const actual = readFileSync(SCHEMA_TYPES_PATH, "utf8");
    // Compare sizes first for a short message, then the text itself.
    expect(actual.length, "schema.d.ts is stale: run `npm run generate`").toBe(expected.length);
    expect(actual === expected, "schema.d.ts is stale: run `npm run generate`").toBe(true);
  }, 30_000);

  it("detects a stale file", async () => {
    const expected = await generateSchemaTypes(OPENAPI_PATH);
    const doc = JSON.parse(readFileSync(OPENAPI_PATH, "utf8"));
    doc.components.schemas.Problem.properties.extraField = { type: "string" };
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const changedPath = join(mkdtempSync(join(tmpdir(), "sluice-openapi-")), "openapi.json");
    writeFileSync(changedPath, JSON.stringify(doc));
    const changed = await generateSchemaTypes(changedPath);
    expect(changed).not.toBe(expected);
    expect(changed).toContain("extraField");
  }, 30_000);
});
