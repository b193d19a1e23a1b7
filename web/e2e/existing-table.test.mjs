// A Kafka pipe into an existing table: fields mapped onto its columns with
// type hints; rows that do not convert go to the error records, shown with
// their raw messages on the pipe page.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { RUN, adminApi, assertNoPageErrors, env, launch, next, pipeIdOf, removePipe, screenshot, signIn, waitForAttribute } from "./helpers.mjs";

let session;
let pipeId;
let database;
const table = `e2e_existing_${RUN}`;

async function clickhouse(sql) {
  const response = await fetch(env().clickhouse, { method: "POST", body: sql });
  const text = await response.text();
  assert.ok(response.ok, `ClickHouse: ${text}`);
  return text;
}

before(async () => {
  const e = env();
  const destination = await adminApi("GET", `/v1/destinations/${e.destinationId}`);
  assert.equal(destination.status, 200, JSON.stringify(destination.body));
  database = destination.body.database;
  await clickhouse(
    `CREATE TABLE \`${database}\`.\`${table}\` (order_id UInt64, customer String, amount Int64, created_at DateTime, day Date MATERIALIZED toDate(created_at)) ENGINE = MergeTree ORDER BY order_id`,
  );
  session = await launch();
});

after(async () => {
  await removePipe(pipeId).catch((e) => console.error(`clean-up: ${e.message}`));
  await session?.browser.close();
});

test("a pipe into an existing table maps fields onto its columns", { timeout: 300_000 }, async () => {
  const e = env();
  const { page, problems } = session;
  await signIn(page, e.adminToken);
  await page.goto(`${e.ui}/#/new`);
  await page.getByTestId("preset-kafka").check();
  await next(page, 2);
  await page.getByTestId("pipe-name").fill(`e2e existing ${RUN}`);
  await page.getByTestId("kafka-brokers").fill(e.kafkaBrokers);
  await next(page, 3);
  await page.getByTestId("source-filter").fill(e.topic);
  await page.getByTestId(`source-option-${e.topic}`).check();
  await page.getByTestId("sample-message").first().waitFor({ timeout: 30_000 });
  await next(page, 4);

  await page.getByTestId("destination-select").selectOption(e.destinationId);
  await page.getByTestId("table-mode-existing").check();
  await page.getByTestId("existing-table-select").selectOption(table);
  await page.getByTestId("mapping-table").waitFor();
  const rows = page.locator('[data-testid^="mapping-row-"]');
  assert.equal(await rows.count(), 5);
  // Same-named fields are mapped already; the others by hand.
  assert.equal(await page.getByTestId("mapping-source-2").inputValue(), "amount");
  assert.equal(await page.getByTestId("mapping-source-3").inputValue(), "created_at");
  await page.getByTestId("mapping-source-0").selectOption("id");
  await page.getByTestId("mapping-source-1").selectOption("customer.name");
  // The MATERIALIZED column cannot be written.
  assert.equal(await page.getByTestId("mapping-source-4").count(), 0);
  // Float64 into Int64: a warning.
  assert.match(await page.getByTestId("compat-2").textContent(), /Float64 → Int64/);
  assert.match(await page.getByTestId("compat-2").getAttribute("class"), /compat-warn/);
  await screenshot(page, "existing-step-4-mapping", { fullPage: true });
  await next(page, 5);
  await next(page, 6);
  await next(page, 7);
  const spec = JSON.parse(await page.getByTestId("review-json").textContent());
  assert.equal(spec.destination.managedTable, false);
  assert.equal(spec.destination.tableDefinition, undefined);
  assert.deepEqual(
    spec.destination.columns.map((c) => c.name),
    ["order_id", "customer", "amount", "created_at"],
  );
  assert.deepEqual(spec.fieldMappings, [
    { sourceField: "id", destinationField: "order_id" },
    { sourceField: "customer.name", destinationField: "customer" },
  ]);
  await page.getByTestId("wizard-create").click();

  await page.getByTestId("pipe-detail").waitFor({ timeout: 30_000 });
  pipeId = pipeIdOf(page);
  await waitForAttribute(page, '[data-testid="total-sent-rows"]', "data-value", (v) => Number(v) > 0, "sent rows > 0", 150_000);
  // Amounts with a fraction cannot become Int64: error records with the raw message.
  await page.getByTestId("error-row").first().waitFor({ timeout: 90_000 });
  assert.match(await page.getByTestId("recent-errors").textContent(), /"amount"/);
  await page.getByTestId("newest-row").first().waitFor({ timeout: 30_000 });
  const count = Number(await clickhouse(`SELECT count() FROM \`${database}\`.\`${table}\``));
  assert.ok(count > 0, "rows landed in the existing table");
  await screenshot(page, "existing-detail", { fullPage: true });
  assertNoPageErrors(problems);
});
