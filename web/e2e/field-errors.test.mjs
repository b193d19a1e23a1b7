// The API's 422 field errors at Create land under the field they concern,
// on that field's step.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { RUN, adminApi, assertNoPageErrors, env, launch, next, screenshot, signIn } from "./helpers.mjs";

let session;

before(async () => {
  session = await launch();
});

after(async () => {
  await session?.browser.close();
});

test("a field error from Create takes the wizard back to the field", { timeout: 180_000 }, async () => {
  const e = env();
  const { page, problems } = session;
  const name = `e2e field errors ${RUN}`;
  await signIn(page, e.adminToken);
  await page.goto(`${e.ui}/#/new`);
  await page.getByTestId("preset-kafka").check();
  await next(page, 2);
  await page.getByTestId("pipe-name").fill(name);
  await page.getByTestId("kafka-brokers").fill(e.kafkaBrokers);
  await next(page, 3);
  await page.getByTestId("source-filter").fill(e.topic);
  await page.getByTestId(`source-option-${e.topic}`).check();
  await page.getByTestId("sample-message").first().waitFor({ timeout: 30_000 });
  await next(page, 4);
  await page.getByTestId("destination-select").selectOption(e.destinationId);
  await page.getByTestId("column-row-0").waitFor({ timeout: 30_000 });
  await page.getByTestId("table-name").fill(`e2e_errors_${RUN}`);
  // Unbalanced: only the API knows the rule.
  await page.getByTestId("partition-by").fill("toYYYYMM(created_at");
  await next(page, 5);
  await next(page, 6);
  await next(page, 7);
  await page.getByTestId("start-now").uncheck();
  await page.getByTestId("wizard-create").click();

  await page.getByTestId("wizard-step-4").waitFor();
  const error = page.getByTestId("error-destination.partitionBy");
  await error.waitFor();
  assert.match(await error.textContent(), /parenthes/);
  assert.equal(await page.getByTestId("partition-by").getAttribute("aria-invalid"), "true");
  await page.getByTestId("toast-error").first().waitFor();
  await screenshot(page, "wizard-field-error");

  // Nothing was created.
  const pipes = await adminApi("GET", "/v1/pipes?limit=200");
  assert.ok(!pipes.body.data.some((p) => p.name === name), "no pipe was created");

  // Fixing the field clears its error.
  await page.getByTestId("partition-by").fill("toYYYYMM(created_at)");
  assert.equal(await error.count(), 0);

  // Types: the list offers only what this server (18.16) has, a misspelled
  // type is refused by the parser, and a type the server lacks by the
  // server's own list, each under its field.
  const offered = await page.locator('[data-testid="offered-types"] option').evaluateAll((options) => options.map((o) => o.value));
  assert.ok(offered.includes("DateTime") && !offered.includes("DateTime64(3)") && !offered.includes("Bool"), `offered: ${offered}`);
  await page.getByTestId("partition-by").fill("");
  const typeError = async (text, pattern) => {
    await page.getByTestId("column-type-0").fill(text);
    await next(page, 5);
    await next(page, 6);
    await next(page, 7);
    await page.getByTestId("wizard-create").click();
    await page.getByTestId("wizard-step-4").waitFor();
    const shown = page.getByTestId("error-column-0-type");
    await shown.waitFor();
    assert.match(await shown.textContent(), pattern);
    assert.equal(await page.getByTestId("column-type-0").getAttribute("aria-invalid"), "true");
  };
  await typeError("Strng", /`Strng` is not a ClickHouse type/);
  await typeError("DateTime64(3)", /needs DateTime64, which the destination's ClickHouse 18\.16/);
  await screenshot(page, "wizard-type-error");
  const after = await adminApi("GET", "/v1/pipes?limit=200");
  assert.ok(!after.body.data.some((p) => p.name === name), "still no pipe");
  assertNoPageErrors(problems);
});
