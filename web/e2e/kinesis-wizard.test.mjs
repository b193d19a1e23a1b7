// (b) A Kinesis pipe through the wizard reaches Running; then deleted.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { RUN, adminApi, assertNoPageErrors, env, eventually, launch, next, pipeIdOf, removePipe, screenshot, signIn, waitForAttribute } from "./helpers.mjs";

let session;
let pipeId;

before(async () => {
  session = await launch();
});

after(async () => {
  await removePipe(pipeId).catch((e) => console.error(`clean-up: ${e.message}`));
  await session?.browser.close();
});

test("a Kinesis pipe created in the wizard reaches Running and is deleted", { timeout: 300_000 }, async () => {
  const e = env();
  const { page, problems } = session;
  const name = `e2e kinesis ${RUN}`;
  const table = `e2e_kinesis_${RUN}`;

  await signIn(page, e.adminToken);
  await page.goto(`${e.ui}/#/new`);

  // 1. Source
  await page.getByTestId("wizard-step-1").waitFor();
  await page.getByTestId("preset-kinesis").check();
  await screenshot(page, "kinesis-step-1-source");
  await next(page, 2);

  // 2. Connection (an emulator: endpoint override, any access key)
  await page.getByTestId("pipe-name").fill(name);
  await page.getByTestId("kinesis-region").fill(e.kinesisRegion);
  await page.getByTestId("kinesis-authentication").selectOption("IAM_USER");
  await page.getByTestId("kinesis-access-key-id").fill("AKIAIOSFODNN7EXAMPLE");
  await page.getByTestId("kinesis-secret-key").fill("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
  await page.getByText("Advanced: endpoint override").click();
  await page.getByTestId("kinesis-endpoint").fill(e.kinesisEndpoint);
  await page.getByTestId("test-connection").click();
  const ok = await waitForAttribute(page, '[data-testid="connection-result"]', "data-ok", (v) => v === "true" || v === "false", "the connection check", 30_000);
  assert.equal(ok, "true", await page.getByTestId("connection-result").textContent());
  await screenshot(page, "kinesis-step-2-connection");
  await next(page, 3);

  // 3. Stream, iterator, fan-out switch, sample
  await page.getByTestId("source-filter").fill(e.stream);
  await page.getByTestId(`source-option-${e.stream}`).check();
  await page.getByTestId("iterator-TRIM_HORIZON").check();
  assert.equal(await page.getByTestId("enhanced-fan-out").isChecked(), false);
  await page.getByTestId("sample-message").first().waitFor({ timeout: 30_000 });
  await screenshot(page, "kinesis-step-3-stream");
  await next(page, 4);

  // 4. Destination
  await page.getByTestId("destination-select").selectOption(e.destinationId);
  await page.getByTestId("column-row-0").waitFor({ timeout: 30_000 });
  await page.getByTestId("table-name").fill(table);
  await page.getByTestId("add-column-field").selectOption("_sequence_number");
  await page.getByTestId("add-column").click();
  await screenshot(page, "kinesis-step-4-destination", { fullPage: true });
  await next(page, 5);
  await screenshot(page, "kinesis-step-5-permissions");
  await next(page, 6);
  await screenshot(page, "kinesis-step-6-scaling");
  await next(page, 7);
  const spec = JSON.parse(await page.getByTestId("review-json").textContent());
  assert.equal(spec.source.kinesis.streamName, e.stream);
  assert.equal(spec.source.kinesis.endpoint, e.kinesisEndpoint);
  assert.equal(spec.source.kinesis.accessKey.secretKey, "••••••••", "secrets are masked in the review");
  await screenshot(page, "kinesis-step-7-review", { fullPage: true });
  await page.getByTestId("wizard-create").click();

  await page.getByTestId("pipe-detail").waitFor({ timeout: 30_000 });
  pipeId = pipeIdOf(page);
  await waitForAttribute(page, '[data-testid="state-badge"]', "data-state", (v) => v === "Running", "state Running", 150_000);
  await waitForAttribute(page, '[data-testid="total-sent-rows"]', "data-value", (v) => Number(v) > 0, "sent rows > 0", 120_000);
  await page.waitForTimeout(1500);
  await screenshot(page, "kinesis-detail", { fullPage: true });

  // Delete while running: it stops first, then disappears
  await page.getByTestId("pipe-delete").first().click();
  await page.getByTestId("confirm-ok").click();
  await page.waitForURL(/#\/pipes$/);
  await eventually("the pipe to be removed", async () => (await adminApi("GET", `/v1/pipes/${pipeId}`)).status === 404, 90_000, 2000);
  await eventually("the pipe to leave the list", async () => (await page.locator(`[data-pipe-id="${pipeId}"]`).count()) === 0, 20_000);
  pipeId = undefined;
  assertNoPageErrors(problems);
});
