// Shared set-up for the browser tests: the stack's addresses from the
// environment, Debian's Chromium through playwright-core, sign-in, waiting,
// screenshots, and an API client for set-up and clean-up.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = join(here, "screenshots");
mkdirSync(SCREENSHOTS, { recursive: true });

const REQUIRED = [
  "SLUICE_UI_URL",
  "SLUICE_ADMIN_TOKEN",
  "SLUICE_VIEWER_TOKEN",
  "SLUICE_E2E_KAFKA_BROKERS",
  "SLUICE_E2E_KINESIS_ENDPOINT",
  "SLUICE_E2E_CLICKHOUSE_URL",
  "SLUICE_E2E_KAFKA_TOPIC",
  "SLUICE_E2E_KINESIS_STREAM",
  "SLUICE_E2E_DESTINATION_ID",
];

export function env() {
  const missing = REQUIRED.filter((k) => !process.env[k]);
  if (missing.length) {
    throw new Error(`the browser tests need a running stack; set ${missing.join(", ")} (scripts/web.sh e2e does)`);
  }
  return {
    ui: process.env.SLUICE_UI_URL.replace(/\/+$/, ""),
    adminToken: process.env.SLUICE_ADMIN_TOKEN,
    viewerToken: process.env.SLUICE_VIEWER_TOKEN,
    kafkaBrokers: process.env.SLUICE_E2E_KAFKA_BROKERS,
    kinesisEndpoint: process.env.SLUICE_E2E_KINESIS_ENDPOINT,
    kinesisRegion: process.env.SLUICE_E2E_KINESIS_REGION ?? "us-east-1",
    clickhouse: process.env.SLUICE_E2E_CLICKHOUSE_URL,
    topic: process.env.SLUICE_E2E_KAFKA_TOPIC,
    stream: process.env.SLUICE_E2E_KINESIS_STREAM,
    destinationId: process.env.SLUICE_E2E_DESTINATION_ID,
  };
}

/** A suffix unique to this run, for pipe and table names. */
export const RUN = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;

const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Debian's Chromium (never a downloaded browser), headless, with a fresh profile per launch. */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  return { browser, context, page, problems };
}

export async function signIn(page, token) {
  const { ui } = env();
  await page.goto(`${ui}/#/pipes`);
  await page.getByTestId("signin-token").fill(token);
  await page.getByTestId("signin-submit").click();
  await page.getByTestId("session-role").waitFor();
}

export async function screenshot(page, name, options = {}) {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), ...options });
}

/** Polls `check` (returning a truthy value when done) until `timeoutMs`. */
export async function eventually(what, check, timeoutMs = 60_000, intervalMs = 1000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Waits for an attribute of the first element matching `selector` to satisfy `test`. */
export async function waitForAttribute(page, selector, attribute, test, what, timeoutMs = 60_000) {
  return eventually(
    what,
    async () => {
      const value = await page.locator(selector).first().getAttribute(attribute, { timeout: 2000 });
      return value !== null && test(value) ? value : false;
    },
    timeoutMs,
  );
}

/** The API, as the admin, for set-up and clean-up. */
export async function adminApi(method, path, body) {
  const { ui, adminToken } = env();
  const response = await fetch(`${ui}${path}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** A query against the stack's ClickHouse (HTTP interface); its text answer. */
export async function clickhouse(sql) {
  const response = await fetch(env().clickhouse, { method: "POST", body: sql });
  const text = await response.text();
  assert.ok(response.ok, `ClickHouse: ${text}`);
  return text;
}

/** Deletes a pipe and waits until it is gone (a running pipe stops first). */
export async function removePipe(id) {
  if (!id) return;
  const first = await adminApi("DELETE", `/v1/pipes/${id}`);
  if (first.status === 404) return;
  await eventually(`pipe ${id} to be removed`, async () => (await adminApi("GET", `/v1/pipes/${id}`)).status === 404, 90_000, 2000);
}

/** The pipe id in the page's URL (#/pipes/<id>). */
export function pipeIdOf(page) {
  const m = /#\/pipes\/([0-9a-f-]{36})/.exec(page.url());
  assert.ok(m, `expected a pipe page, at ${page.url()}`);
  return m[1];
}

/** Clicks Next and waits for step `n`. */
export async function next(page, n) {
  await page.getByTestId("wizard-next").click();
  await page.getByTestId(`wizard-step-${n}`).waitFor();
}

export function assertNoPageErrors(problems) {
  // 4xx/5xx answers the tests provoke on purpose show as console errors of
  // the failed fetch; only uncaught exceptions count.
  const errors = problems.filter((p) => p.startsWith("page error"));
  assert.deepEqual(errors, [], errors.join("\n"));
}
