// (c) A wrong broker address gives a clear error at Test connection; an
// empty one is a field error on the field.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { RUN, assertNoPageErrors, env, launch, next, screenshot, signIn, waitForAttribute } from "./helpers.mjs";

let session;

before(async () => {
  session = await launch();
});

after(async () => {
  await session?.browser.close();
});

test("Test connection explains a broker that cannot be reached", { timeout: 120_000 }, async () => {
  const e = env();
  const { page, problems } = session;
  await signIn(page, e.adminToken);
  await page.goto(`${e.ui}/#/new`);
  await page.getByTestId("preset-kafka").check();
  await next(page, 2);
  await page.getByTestId("pipe-name").fill(`e2e wrong broker ${RUN}`);

  // Nothing typed: the API's field error lands under the field.
  await page.getByTestId("test-connection").click();
  await page.getByTestId("error-kafka.brokers").waitFor({ timeout: 20_000 });

  await page.getByTestId("kafka-brokers").fill("127.0.0.1:1");
  assert.equal(await page.getByTestId("error-kafka.brokers").count(), 0, "typing clears the field error");
  await page.getByTestId("test-connection").click();
  const ok = await waitForAttribute(page, '[data-testid="connection-result"]', "data-ok", (v) => v === "true" || v === "false", "the connection check", 60_000);
  assert.equal(ok, "false");
  const text = await page.getByTestId("connection-result").textContent();
  assert.match(text, /127\.0\.0\.1:1/, `the error names the address: ${text}`);
  assert.equal(await page.getByTestId("connection-result").getAttribute("role"), "alert");
  // Beside the button, visible without scrolling.
  const button = await page.getByTestId("test-connection").boundingBox();
  const result = await page.getByTestId("connection-result").boundingBox();
  assert.ok(button && result && Math.abs(result.y - button.y) < 80, "the result is next to the button");
  await screenshot(page, "connection-error");

  // The wizard also refuses to go on with a broker list that is not host:port.
  await page.getByTestId("kafka-brokers").fill("not-a-broker");
  await page.getByTestId("wizard-next").click();
  await page.getByTestId("error-kafka.brokers").waitFor();
  await page.getByTestId("wizard-step-2").waitFor();
  assertNoPageErrors(problems);
});
