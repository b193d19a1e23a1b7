// (d) A viewer sees pipes but no control that changes anything; sign-out.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { RUN, adminApi, assertNoPageErrors, env, launch, removePipe, screenshot, signIn } from "./helpers.mjs";

let session;
let pipeId;

before(async () => {
  const e = env();
  // A (stopped) pipe for the viewer to look at, made through the API.
  const created = await adminApi("POST", "/v1/pipes", {
    name: `e2e viewer ${RUN}`,
    source: { kafka: { brokers: e.kafkaBrokers, topics: [e.topic] } },
    destination: {
      destinationId: e.destinationId,
      table: `e2e_viewer_${RUN}`,
      managedTable: true,
      tableDefinition: { engine: "MergeTree", sortingKey: ["id"] },
      columns: [{ name: "id", type: "Int64" }],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  pipeId = created.body.id;
  session = await launch();
});

after(async () => {
  await removePipe(pipeId).catch((e) => console.error(`clean-up: ${e.message}`));
  await session?.browser.close();
});

const EDIT_CONTROLS = ["nav-new-pipe", "new-pipe", "empty-new-pipe", "pipe-start", "pipe-stop", "pipe-delete", "settings-save", "scaling-save", "edit-scaling-replicas"];

async function assertNoEditControls(page, where) {
  for (const id of EDIT_CONTROLS) {
    assert.equal(await page.getByTestId(id).count(), 0, `${where}: a viewer must not see ${id}`);
  }
}

test("a viewer has no edit controls, and can sign out", { timeout: 120_000 }, async () => {
  const e = env();
  const { page, problems } = session;
  await signIn(page, e.viewerToken);
  assert.equal(await page.getByTestId("session-role").textContent(), "viewer");

  await page.locator(`[data-pipe-id="${pipeId}"]`).waitFor();
  await assertNoEditControls(page, "pipes list");
  await screenshot(page, "viewer-list");

  await page.locator(`[data-pipe-id="${pipeId}"] a`).click();
  await page.getByTestId("pipe-detail").waitFor();
  await page.getByTestId("settings-editor").locator("dl").waitFor();
  await page.getByTestId("scaling-editor").locator("dl").waitFor();
  await assertNoEditControls(page, "pipe page");
  for (const card of ["settings-editor", "scaling-editor"]) {
    assert.equal(await page.getByTestId(card).locator("input, select, button").count(), 0, `${card} is read-only`);
  }
  await screenshot(page, "viewer-detail", { fullPage: true });

  // The wizard is not reachable either.
  await page.goto(`${e.ui}/#/new`);
  await page.getByText("Viewers cannot create pipes").waitFor();
  assert.equal(await page.getByTestId("wizard-step-1").count(), 0);

  // Sign out: the token is gone from the tab.
  await page.getByTestId("sign-out").click();
  await page.getByTestId("signin-token").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("sluice.token")), null);
  await page.reload();
  await page.getByTestId("signin-token").waitFor();
  assertNoPageErrors(problems);
});
