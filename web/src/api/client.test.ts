import { describe, expect, it } from "vitest";
import { ApiError, call, normalizeFieldErrors } from "./client";

function result(status: number, body: unknown) {
  return Promise.resolve({ data: status < 300 ? body : undefined, error: status >= 300 ? body : undefined, response: new Response(null, { status: status === 204 ? 204 : status }) });
}

describe("call", () => {
  it("returns data", async () => {
    await expect(call(result(200, { ok: true }))).resolves.toEqual({ ok: true });
  });

  it("throws the problem's detail with its field errors", async () => {
    const problem = {
      type: "https://sluice.dev/problems/validation-failed",
      title: "Validation failed",
      status: 422,
      detail: "2 fields are invalid",
      errors: [
        { pointer: "/name", detail: "must not be empty" },
        { pointer: "/source/kafka/brokers", message: "must be host:port" },
      ],
    };
    const err = (await call(result(422, problem)).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toBe("2 fields are invalid");
    expect(err.kind).toBe("validation-failed");
    expect(err.fieldErrors).toEqual([
      { pointer: "/name", message: "must not be empty" },
      { pointer: "/source/kafka/brokers", message: "must be host:port" },
    ]);
  });

  it("reports an unreachable API as status 0", async () => {
    const err = (await call(Promise.reject(new TypeError("Failed to fetch"))).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(0);
    expect(err.message).toMatch(/Cannot reach the Sluice API/);
  });

  it("ignores malformed field errors", () => {
    expect(normalizeFieldErrors({ errors: "nope" })).toEqual([]);
    expect(normalizeFieldErrors(null)).toEqual([]);
  });
});
