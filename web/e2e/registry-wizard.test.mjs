// An AvroConfluent Kafka pipe through the whole wizard: the format and the
// schema registry chosen on the connection step, the sample decoded with
// its schema id, the new table's columns read from the registered schema
// (nested records flattened), and rows landing in ClickHouse.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { RUN, adminApi, assertNoPageErrors, clickhouse, env, launch, next, pipeIdOf, removePipe, screenshot, signIn, waitForAttribute } from "./helpers.mjs";

let session;
let pipeId;

/** This test's own variables: a failure, not a skip, when they are missing. */
function registryEnv() {
  const missing = ["SLUICE_E2E_REGISTRY_URL", "SLUICE_E2E_AVRO_TOPIC"].filter((k) => !process.env[k]);
  if (missing.length) {
    throw new Error(
      `the registry wizard test needs ${missing.join(" and ")}: a schema registry's root URL and a topic of AvroConfluent orders registered there (scripts/web.sh e2e sets them from the seed producer)`,
    );
  }
  return { registryUrl: process.env.SLUICE_E2E_REGISTRY_URL.trim(), avroTopic: process.env.SLUICE_E2E_AVRO_TOPIC };
}

before(async () => {
  session = await launch();
});

after(async () => {
  await removePipe(pipeId).catch((e) => console.error(`clean-up: ${e.message}`));
  await session?.browser.close();
});

test("an AvroConfluent pipe created in the wizard reads its schema from the registry and delivers rows", { timeout: 300_000 }, async () => {
  const { registryUrl, avroTopic } = registryEnv();
  const e = env();
  const { page, problems } = session;
  const name = `e2e avro ${RUN}`;
  const table = `e2e_avro_${RUN}`;
  const destination = await adminApi("GET", `/v1/destinations/${e.destinationId}`);
  assert.equal(destination.status, 200, JSON.stringify(destination.body));
  const database = destination.body.database;

  await signIn(page, e.adminToken);
  await page.getByTestId("new-pipe").click();

  // 1. Source
  await page.getByTestId("wizard-step-1").waitFor();
  await page.getByTestId("preset-kafka").check();
  await next(page, 2);

  // 2. Connection, with the message format and its registry
  await page.getByTestId("pipe-name").fill(name);
  await page.getByTestId("pipe-description").fill("created by the browser tests");
  await page.getByTestId("kafka-brokers").fill(e.kafkaBrokers);
  assert.ok(await page.getByTestId("format-JSONEachRow").isChecked(), "JSONEachRow is the default format");
  await page.getByTestId("format-AvroConfluent").check();
  // Checked before the API sees it: the error shows under the field.
  await page.getByTestId("registry-url").fill("registry:8081");
  await page.getByTestId("wizard-next").click();
  const urlError = page.getByTestId("error-format.registryUrl");
  await urlError.waitFor();
  assert.match(await urlError.textContent(), /http/);
  assert.equal(await page.getByTestId("registry-url").getAttribute("aria-invalid"), "true");
  await page.getByTestId("registry-url").fill(registryUrl);
  assert.equal(await urlError.count(), 0, "fixing the URL clears its error");
  assert.match(await page.getByTestId("registry-url-meaning").textContent(), /each message's schema is looked up by the id it carries/);
  assert.equal(await page.getByTestId("registry-authentication").inputValue(), "NONE");
  assert.equal(await page.getByTestId("registry-username").count(), 0, "no credentials without PLAIN");
  await page.getByTestId("test-connection").click();
  const ok = await waitForAttribute(page, '[data-testid="connection-result"]', "data-ok", (v) => v === "true" || v === "false", "the connection check", 30_000);
  assert.equal(ok, "true", await page.getByTestId("connection-result").textContent());
  await screenshot(page, "registry-step-2-format", { fullPage: true });
  await next(page, 3);

  // 3. Topic, and a sample decoded with the registered schema
  await page.getByTestId("source-filter").fill(avroTopic);
  await page.getByTestId(`source-option-${avroTopic}`).check();
  await page.getByTestId("offset-from_beginning").check();
  const decoded = page.locator('[data-testid="sample-message"][data-decoded="true"]');
  await decoded.first().waitFor({ timeout: 30_000 });
  assert.equal(await page.getByTestId("sample-decode-error").count(), 0, "every sampled message decodes");
  assert.match(await page.getByTestId("sample-summary").textContent(), /All \d+ read as AvroConfluent \(schema id \d+\)/);
  const schemaId = Number(await decoded.first().getByTestId("sample-schema-id").getAttribute("data-schema-id"));
  assert.ok(schemaId > 0, "the message names its schema id");
  assert.match(await decoded.first().getByTestId("sample-schema-id").textContent(), new RegExp(`schema id ${schemaId}`));
  const order = JSON.parse(await decoded.first().getByTestId("sample-decoded").textContent());
  assert.equal(typeof order.id, "number", JSON.stringify(order));
  assert.match(order.customer.name, /^customer-\d+$/, "the nested record is decoded");
  assert.equal(typeof order.paid, "boolean", JSON.stringify(order));
  assert.equal(await page.getByTestId("sample-format-hint").count(), 0);
  // The raw bytes stay reachable.
  await page.getByTestId("sample-view-raw").click();
  await page.getByTestId("sample-raw").first().waitFor();
  assert.equal(await page.getByTestId("sample-decoded").count(), 0);
  await page.getByTestId("sample-view-decoded").click();
  await page.getByTestId("sample-decoded").first().waitFor();
  await screenshot(page, "registry-step-3-sample");
  await next(page, 4);

  // 4. Destination: a new table whose columns come from the schema
  await page.getByTestId("destination-select").selectOption(e.destinationId);
  await page.getByTestId("table-mode-new").check();
  await page.getByTestId("column-row-0").waitFor({ timeout: 30_000 });
  const origin = page.getByTestId("schema-origin");
  await origin.waitFor({ timeout: 30_000 });
  assert.match(await origin.textContent(), new RegExp(`Columns from .*subject ${avroTopic}-value.*schema id ${schemaId}`));
  assert.equal(await origin.getAttribute("data-schema-id"), String(schemaId));
  const names = await page.locator('[data-testid^="column-name-"]').evaluateAll((inputs) => inputs.map((i) => i.value));
  assert.deepEqual(names, ["id", "customer_name", "customer_country", "amount", "paid", "created_at"], `columns from the schema: ${names}`);
  assert.equal(await page.getByTestId("column-source-1").inputValue(), "customer.name", "a flattened column is filled from its nested field");
  await page.getByTestId("table-name").fill(table);
  await page.getByTestId("table-engine").selectOption("MergeTree");
  await page.getByTestId("add-column-field").selectOption("_offset");
  await page.getByTestId("add-column").click();
  await page.getByTestId("preview-table").waitFor();
  assert.match(await page.getByTestId("preview-table").textContent(), /customer-\d+/, "the decoded sample fills the preview");
  assert.match(await page.getByTestId("sorting-key").textContent(), /ORDER BY\s*\(id\)/);
  await screenshot(page, "registry-step-4-destination", { fullPage: true });
  await next(page, 5);

  // 5. Permissions, 6. Scaling
  await page.getByTestId("permissions-full").check();
  await next(page, 6);
  await page.getByTestId("scaling-size-S").check();
  await next(page, 7);

  // 7. Review: only the fields AvroConfluent takes
  const json = await page.getByTestId("review-json").textContent();
  const spec = JSON.parse(json);
  const kafka = spec.source.kafka;
  assert.equal(kafka.format, "AvroConfluent");
  assert.deepEqual(kafka.schemaRegistry, { url: registryUrl, authentication: "NONE" });
  for (const field of ["avroSchema", "protobufSchema", "messageType"]) assert.equal(kafka[field], undefined, `${field} is not sent: ${json}`);
  assert.deepEqual(kafka.topics, [avroTopic]);
  assert.ok(spec.fieldMappings.some((m) => m.sourceField === "customer.name" && m.destinationField === "customer_name"), json);
  assert.ok(spec.fieldMappings.some((m) => m.sourceField === "customer.country" && m.destinationField === "customer_country"), json);
  assert.match(await page.getByTestId("review-summary").textContent(), /AvroConfluent, schemas from/);
  assert.ok(await page.getByTestId("start-now").isChecked());
  await screenshot(page, "registry-step-7-review", { fullPage: true });
  await page.getByTestId("wizard-create").click();

  // The pipe page: rows arrive, and are in ClickHouse with the nested fields
  await page.getByTestId("pipe-detail").waitFor({ timeout: 30_000 });
  pipeId = pipeIdOf(page);
  await waitForAttribute(page, '[data-testid="total-sent-rows"]', "data-value", (v) => Number(v) > 0, "sent rows > 0", 150_000);
  await page.getByTestId("newest-row").first().waitFor({ timeout: 60_000 });
  await waitForAttribute(page, '[data-testid="state-badge"]', "data-state", (v) => v === "Running", "state Running", 60_000);
  assert.match(await page.getByTestId("newest-rows-table").textContent(), /customer-\d+/, "the newest rows hold the decoded fields");
  const count = Number(await clickhouse(`SELECT count() FROM \`${database}\`.\`${table}\``));
  assert.ok(count > 0, "rows landed in the table");
  const row = JSON.parse((await clickhouse(`SELECT id, customer_name, customer_country, amount FROM \`${database}\`.\`${table}\` ORDER BY id LIMIT 1 FORMAT JSONEachRow`)).trim());
  assert.match(row.customer_name, /^customer-\d+$/, JSON.stringify(row));
  assert.ok(row.customer_country, JSON.stringify(row));
  // Every message decodes and converts: nothing in the error table.
  const errors = await adminApi("GET", `/v1/pipes/${pipeId}/errors`);
  assert.equal(errors.status, 200, JSON.stringify(errors.body));
  assert.deepEqual(errors.body.errors, [], "no error rows");
  await screenshot(page, "registry-detail", { fullPage: true });
  assertNoPageErrors(problems);
});
