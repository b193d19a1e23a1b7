// The UI at a narrow (400 px) window: no sideways scrolling of the page on
// the list, the wizard and the pipe page.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { RUN, adminApi, assertNoPageErrors, env, launch, next, removePipe, screenshot, signIn } from "./helpers.mjs";

let session;
let pipeId;

before(async () => {
  const e = env();
  const created = await adminApi("POST", "/v1/pipes", {
    name: `e2e narrow ${RUN}`,
    source: { kafka: { brokers: e.kafkaBrokers, topics: [e.topic] } },
    destination: {
      destinationId: e.destinationId,
      table: `e2e_narrow_${RUN}`,
      managedTable: true,
      tableDefinition: { engine: "MergeTree", sortingKey: ["id"] },
      columns: [{ name: "id", type: "Int64" }],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  pipeId = created.body.id;
  session = await launch();
  await session.page.setViewportSize({ width: 400, height: 800 });
});

after(async () => {
  await removePipe(pipeId).catch((e) => console.error(`clean-up: ${e.message}`));
  await session?.browser.close();
});

async function assertFits(page, where) {
  const { scrollWidth, clientWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
  }));
  assert.ok(scrollWidth <= clientWidth + 1, `${where}: the page scrolls sideways (${scrollWidth} > ${clientWidth})`);
}

test("the list, the wizard and the pipe page fit a 400 px window", { timeout: 120_000 }, async () => {
  const e = env();
  const { page, problems } = session;
  await signIn(page, e.adminToken);
  await page.locator(`[data-pipe-id="${pipeId}"]`).waitFor();
  await assertFits(page, "pipes list");
  await screenshot(page, "narrow-list", { fullPage: true });

  await page.goto(`${e.ui}/#/new`);
  await page.getByTestId("wizard-step-1").waitFor();
  await assertFits(page, "wizard step 1");
  await screenshot(page, "narrow-wizard-1", { fullPage: true });
  await next(page, 2);
  await assertFits(page, "wizard step 2");
  await screenshot(page, "narrow-wizard-2", { fullPage: true });

  await page.goto(`${e.ui}/#/pipes/${pipeId}`);
  await page.getByTestId("pipe-detail").waitFor();
  await page.getByTestId("chart-rows").waitFor();
  await page.getByTestId("settings-save").waitFor();
  await assertFits(page, "pipe page");
  await screenshot(page, "narrow-detail", { fullPage: true });
  assertNoPageErrors(problems);
});
