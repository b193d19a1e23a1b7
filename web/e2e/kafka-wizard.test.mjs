// (a) A Kafka pipe through the whole wizard, into a new table whose columns
// are inferred from the sample; rows arrive on the pipe page; then it is
// stopped and deleted in the browser.
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

test("a Kafka pipe created in the wizard delivers rows, then is stopped and deleted", { timeout: 300_000 }, async () => {
  const e = env();
  const { page, problems } = session;
  const name = `e2e kafka ${RUN}`;
  const table = `e2e_kafka_${RUN}`;

  await signIn(page, e.adminToken);
  assert.equal(await page.getByTestId("session-role").textContent(), "admin");
  await page.getByTestId("new-pipe").click();

  // 1. Source
  await page.getByTestId("wizard-step-1").waitFor();
  await page.getByTestId("preset-kafka").check();
  await screenshot(page, "kafka-step-1-source");
  await next(page, 2);

  // 2. Connection, tested
  await page.getByTestId("pipe-name").fill(name);
  await page.getByTestId("pipe-description").fill("created by the browser tests");
  await page.getByTestId("kafka-brokers").fill(e.kafkaBrokers);
  assert.equal(await page.getByTestId("kafka-authentication").inputValue(), "NONE");
  await page.getByTestId("test-connection").click();
  const ok = await waitForAttribute(page, '[data-testid="connection-result"]', "data-ok", (v) => v === "true" || v === "false", "the connection check", 30_000);
  assert.equal(ok, "true", await page.getByTestId("connection-result").textContent());
  assert.match(await page.getByTestId("connection-result").textContent(), /Connected in \d+ ms/);
  await screenshot(page, "kafka-step-2-connection");
  await next(page, 3);

  // 3. Topic, starting offset and a live sample
  await page.getByTestId("source-filter").fill(e.topic);
  await page.getByTestId(`source-option-${e.topic}`).check();
  await page.getByTestId("offset-from_beginning").check();
  await page.getByTestId("sample-message").first().waitFor({ timeout: 30_000 });
  const sampled = await page.getByTestId("sample-message").count();
  assert.ok(sampled > 0, "the sample shows messages");
  await page.getByTestId("sample-refresh").click();
  await page.getByTestId("sample-message").first().waitFor({ timeout: 30_000 });
  await screenshot(page, "kafka-step-3-topic");
  await next(page, 4);

  // 4. Destination: a new table from the inferred columns, plus a virtual column
  await page.getByTestId("destination-select").selectOption(e.destinationId);
  await page.getByTestId("table-mode-new").check();
  await page.getByTestId("column-row-0").waitFor({ timeout: 30_000 });
  const names = await page.locator('[data-testid^="column-name-"]').evaluateAll((inputs) => inputs.map((i) => i.value));
  assert.ok(names.includes("id"), `inferred columns: ${names}`);
  assert.ok(names.includes("customer_name"), `nested fields are flattened: ${names}`);
  await page.getByTestId("table-name").fill(table);
  await page.getByTestId("table-engine").selectOption("MergeTree");
  await page.getByTestId("add-column-field").selectOption("_offset");
  await page.getByTestId("add-column").click();
  await page.getByTestId("add-column-field").selectOption("_partition");
  await page.getByTestId("add-column").click();
  await page.getByTestId("preview-table").waitFor();
  assert.match(await page.getByTestId("sorting-key").textContent(), /ORDER BY\s*\(id\)/);
  await screenshot(page, "kafka-step-4-destination", { fullPage: true });
  await next(page, 5);

  // 5. Permissions
  await page.getByTestId("permissions-full").check();
  await screenshot(page, "kafka-step-5-permissions");
  await next(page, 6);

  // 6. Scaling
  await page.getByTestId("scaling-size-S").check();
  await page.getByTestId("scaling-replicas").selectOption("1");
  await screenshot(page, "kafka-step-6-scaling");
  await next(page, 7);

  // 7. Review and create
  const json = await page.getByTestId("review-json").textContent();
  const spec = JSON.parse(json);
  assert.equal(spec.name, name);
  assert.equal(spec.destination.managedTable, true);
  assert.equal(spec.destination.table, table);
  assert.deepEqual(spec.destination.tableDefinition.sortingKey, ["id"]);
  assert.ok(spec.fieldMappings.some((m) => m.sourceField === "customer.name" && m.destinationField === "customer_name"), json);
  assert.ok(spec.fieldMappings.some((m) => m.sourceField === "_offset" && m.destinationField === "offset"), json);
  assert.equal(spec.scaling.replicaSize, "S");
  assert.ok(await page.getByTestId("start-now").isChecked());
  await screenshot(page, "kafka-step-7-review", { fullPage: true });
  await page.getByTestId("wizard-create").click();

  // The pipe page: rows arrive
  await page.getByTestId("pipe-detail").waitFor({ timeout: 30_000 });
  pipeId = pipeIdOf(page);
  await waitForAttribute(page, '[data-testid="total-sent-rows"]', "data-value", (v) => Number(v) > 0, "sent rows > 0", 150_000);
  await page.getByTestId("newest-row").first().waitFor({ timeout: 60_000 });
  await waitForAttribute(page, '[data-testid="state-badge"]', "data-state", (v) => v === "Running", "state Running", 60_000);
  // A few ten-second buckets of traffic, so the charts show a shape.
  await waitForAttribute(page, '[data-testid="chart-rows"]', "data-nonzero-points", (v) => Number(v) >= 3, "the rows chart to show data", 90_000);
  assert.ok((await page.getByTestId("placement-row").count()) >= 1, "a replica placement is shown");
  assert.match(await page.getByTestId("replicas").textContent(), /1 \/ 1/);
  const rowsText = await page.getByTestId("newest-rows-table").textContent();
  assert.match(rowsText, /customer-\d+/, "the newest rows hold the messages' fields");
  await page.waitForTimeout(1500); // let the charts draw
  await screenshot(page, "kafka-detail", { fullPage: true });
  await page.getByTestId("window-15").click();
  await waitForAttribute(page, '[data-testid="chart-rows"]', "data-nonzero-points", (v) => Number(v) >= 3, "the 15-minute chart", 20_000);
  await page.waitForTimeout(1000);
  await screenshot(page, "kafka-detail-charts-15min");

  // Also on the list, with activity
  const list = await adminApi("GET", "/v1/pipes/activity");
  assert.equal(list.status, 200);

  // Stop, in the browser
  await page.getByTestId("pipe-stop").first().click();
  await page.getByTestId("confirm-ok").click();
  await waitForAttribute(page, '[data-testid="state-badge"]', "data-state", (v) => v === "Stopped", "state Stopped", 90_000);
  assert.equal(await page.getByTestId("desired-state").textContent(), "stopped");

  // Delete, in the browser: back to the list, without the pipe
  await page.getByTestId("pipe-delete").first().click();
  await page.getByTestId("confirm-ok").click();
  await page.waitForURL(/#\/pipes$/);
  await eventually("the pipe to leave the list", async () => (await page.locator(`[data-pipe-id="${pipeId}"]`).count()) === 0, 30_000);
  assert.equal((await adminApi("GET", `/v1/pipes/${pipeId}`)).status, 404);
  pipeId = undefined;
  assertNoPageErrors(problems);
});
