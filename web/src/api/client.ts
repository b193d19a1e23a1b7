// The typed API client: openapi-fetch over the paths generated from
// openapi/openapi.json (./schema.d.ts, `npm run generate`).
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type AllPaths = paths;

export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];

const TOKEN_KEY = "sluice.token";

/** The API key token lives in sessionStorage only: gone with the tab. */
export const tokenStore = {
  get(): string | null {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  set(token: string) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      /* storage unavailable */
    }
  },
};

type UnauthorizedListener = () => void;
const unauthorizedListeners = new Set<UnauthorizedListener>();
/** Called when the API refuses the stored token (401): the key was revoked. */
export function onUnauthorized(listener: UnauthorizedListener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

const auth: Middleware = {
  onRequest({ request }) {
    const token = tokenStore.get();
    if (token && !request.headers.has("Authorization")) {
      request.headers.set("Authorization", `Bearer ${token}`);
    }
    return request;
  },
  onResponse({ request, response }) {
    if (response.status === 401 && request.headers.get("Authorization") === `Bearer ${tokenStore.get()}`) {
      unauthorizedListeners.forEach((l) => l());
    }
    return response;
  },
};

function baseUrl(): string {
  // Same origin as the UI; relative URLs do not work in fetch's Request
  // outside a browser, so spell the origin out when there is one.
  return typeof location !== "undefined" ? location.origin : "http://localhost";
}

export const api = createClient<AllPaths>({ baseUrl: baseUrl() });
api.use(auth);

/** A failed API call: an HTTP problem, or no answer at all (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;
  constructor(status: number, message: string, problem: Problem | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }

  /** Field errors with JSON Pointers into the request body. */
  get fieldErrors(): { pointer: string; message: string }[] {
    return normalizeFieldErrors(this.problem);
  }

  /** The problem type's last path segment, e.g. `source-unreachable`. */
  get kind(): string {
    const type = this.problem?.type ?? "";
    return type.slice(type.lastIndexOf("/") + 1);
  }
}

/** Problems name each field error's text `detail` (the contract says `message`): take either. */
export function normalizeFieldErrors(problem: unknown): { pointer: string; message: string }[] {
  const errors = (problem as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors
    .filter((e): e is Record<string, unknown> => typeof e === "object" && e !== null)
    .map((e) => ({
      pointer: typeof e.pointer === "string" ? e.pointer : "",
      message: String(e.detail ?? e.message ?? "is invalid"),
    }));
}

function isProblem(body: unknown): body is Problem {
  return typeof body === "object" && body !== null && "status" in body && ("detail" in body || "title" in body);
}

export function problemMessage(status: number, body: unknown): string {
  if (isProblem(body)) return body.detail || body.title;
  if (typeof body === "string" && body.trim()) return body.trim().slice(0, 300);
  if (status === 404) return "Not found (is the API up to date?)";
  return `The API answered ${status}`;
}

type Result<T> = { data?: T; error?: unknown; response: Response };

/**
 * Awaits an openapi-fetch call and returns its data, or throws an
 * `ApiError` with the problem's `detail`.
 */
export async function call<T>(request: Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await request;
  } catch (e) {
    throw new ApiError(0, `Cannot reach the Sluice API (${e instanceof Error ? e.message : String(e)})`);
  }
  const { data, error, response } = result;
  if (!response.ok) {
    throw new ApiError(response.status, problemMessage(response.status, error), isProblem(error) ? error : null);
  }
  return data as T;
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
