// The wizard's other message formats, each end to end like the registry
// wizard test: Protobuf through the schema registry (with schema
// evolution ticked), plain Protobuf from an uploaded .proto file, plain
// Avro with a pasted writer schema, AvroConfluent on Kinesis, and an
// AvroConfluent topic of records holding every Avro type. One wizard path
// (createThroughWizard) does what they share: the format is chosen on the
// connection step, the sample is decoded, the new table's columns come from
// the schema, rows land in ClickHouse with the seed's values and none in
// the error table; then the pipe is deleted. What differs with the record
// type (the seed's Order or Reading) is its `shape`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { after, before, test } from "node:test";
import { RUN, adminApi, assertNoPageErrors, clickhouse, env, eventually, launch, next, pipeIdOf, removePipe, screenshot, signIn, waitForAttribute } from "./helpers.mjs";

let session;
/** Pipes a test created and has not deleted yet (a failed one): removed at the end. */
const leftover = new Set();

/** A test's own variables: a failure naming them, not a skip, when any is missing. */
function need(what, names) {
  const missing = names.filter((k) => !process.env[k]?.trim());
  if (missing.length) {
    throw new Error(`the ${what} test needs ${missing.join(", ")} (scripts/web.sh e2e sets them from the seed producer)`);
  }
  return Object.fromEntries(names.map((k) => [k, process.env[k].trim()]));
}

before(async () => {
  session = await launch();
  await signIn(session.page, env().adminToken);
});

after(async () => {
  for (const id of leftover) await removePipe(id).catch((e) => console.error(`clean-up: ${e.message}`));
  await session?.browser.close();
});

const COUNTRIES = ["DE", "FR", "JP", "KR"];
/** The seed's first order's created_at (2026-11-18T11:06:40Z); order i is i ms later. */
const CREATED_AT_MS = 1_795_000_000_000;

/**
 * A record type the seed writes, as the wizard and ClickHouse should see it:
 *
 * - `columns`: the new table's columns from the schema (nested fields
 *   flattened); `exact`: whether they are all of them, in this order (else
 *   they are among them); `notColumns`: names that must not be there;
 * - `decoded(message)`: checks one decoded sample message;
 * - `text`: what the preview and the newest rows show of decoded values;
 * - `delivered(at, pipeId)`: checks the rows in ClickHouse (`at` is the
 *   quoted database.table), before the error table is checked.
 */
const ORDER = {
  /** The columns every format's Order maps to: nested customer fields flattened. */
  columns: ["id", "customer_name", "customer_country", "amount", "paid", "created_at"],
  exact: false,
  // The Order type's fields, not those of the Customer it holds.
  notColumns: ["name", "country"],
  decoded(order) {
    assert.match(order.customer?.name ?? "", /^customer-\d+$/, `the nested message is decoded: ${JSON.stringify(order)}`);
  },
  text: /customer-\d+/,
  async delivered(at) {
    // The oldest order is the first one. (created_at in whole seconds: an
    // older server has DateTime, not DateTime64.)
    assert.ok(Number(await clickhouse(`SELECT count() FROM ${at}`)) > 0, "rows landed in the table");
    const row = JSON.parse(
      (await clickhouse(`SELECT toInt64(id) AS id, customer_name, customer_country, amount, paid, toUnixTimestamp(created_at) AS created_s FROM ${at} ORDER BY id LIMIT 1 FORMAT JSONEachRow`)).trim(),
    );
    const id = Number(row.id);
    assert.equal(id, 0, `the first order is there: ${JSON.stringify(row)}`);
    assert.deepEqual(
      { customer_name: row.customer_name, customer_country: row.customer_country, amount: row.amount, paid: Boolean(row.paid), created_s: Number(row.created_s) },
      { customer_name: `customer-${id % 13}`, customer_country: COUNTRIES[id % 4], amount: (id % 500) / 4 + 0.5, paid: id % 3 !== 0, created_s: Math.floor((CREATED_AT_MS + id) / 1000) },
      `the row holds the order's values: ${JSON.stringify(row)}`,
    );
  },
};

async function fillKafka(page, e) {
  await page.getByTestId("kafka-brokers").fill(e.kafkaBrokers);
}

async function fillKinesis(page, e) {
  await page.getByTestId("kinesis-region").fill(e.kinesisRegion);
  await page.getByTestId("kinesis-authentication").selectOption("IAM_USER");
  await page.getByTestId("kinesis-access-key-id").fill("AKIAIOSFODNN7EXAMPLE");
  await page.getByTestId("kinesis-secret-key").fill("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
  await page.getByText("Advanced: endpoint override").click();
  await page.getByTestId("kinesis-endpoint").fill(e.kinesisEndpoint);
}

const STATUSES = ["NEW", "PAID", "SHIPPED"];

/**
 * `1_700_000_000 s + i × 10^-digits s` (2023-11-14 22:13:20 UTC and i
 * milli-, micro- or nanoseconds) as the decoder writes a timestamp:
 * ISO-8601 with the schema's digits.
 */
function isoAt(i, digits) {
  const unit = 10 ** digits;
  const whole = new Date((1_700_000_000 + Math.floor(i / unit)) * 1000).toISOString();
  return whole.replace(/\.000Z$/, `.${String(i % unit).padStart(digits, "0")}Z`);
}

/** Day 19000 + i since 1970-01-01, `YYYY-MM-DD` (i = 7: 2022-01-15). */
const dayOf = (i) => new Date((19_000 + i) * 86_400_000).toISOString().slice(0, 10);

/**
 * The seed's Reading (`SLUICE_E2E_TYPES_TOPIC`, AvroConfluent): a field of
 * every Avro type, record i's values derived from i.
 */
const READING = {
  columns: ["id", "small", "ok", "ratio", "score", "label", "note", "status", "tags", "attrs", "customer_name", "customer_tier", "code", "blob", "price", "uid", "day", "clock", "at_ms", "at_us", "at_ns", "local_ms", "either", "span"],
  exact: true,
  notColumns: ["customer", "name", "tier"],
  /** Record i decoded (the sample): every value as `crate::avro` reads it. */
  decoded(reading) {
    const i = reading.id;
    assert.ok(Number.isInteger(i) && i >= 0, `a Reading: ${JSON.stringify(reading)}`);
    assert.deepEqual(
      reading,
      {
        id: i,
        small: -i,
        ok: i % 2 === 0,
        ratio: 0.5,
        score: i * 1.25,
        label: `r${i}`,
        note: i % 3 === 0 ? null : `n${i}`,
        status: STATUSES[i % 3],
        tags: ["a", `b${i}`],
        attrs: { x: i },
        customer: { name: `c${i}`, tier: i % 5 },
        code: "AB12",
        blob: `blob-${i}`,
        price: `${i}.1234`,
        uid: `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`,
        day: dayOf(i),
        clock: 3_600_000 + i,
        at_ms: isoAt(i, 3),
        at_us: isoAt(i, 6),
        at_ns: isoAt(i, 9),
        local_ms: isoAt(i, 3),
        either: i % 2 === 0 ? `s${i}` : i,
        span: { months: 1, days: 2, millis: 3 },
      },
      `record ${i} decoded with every value: ${JSON.stringify(reading)}`,
    );
  },
  text: /blob-\d+/,
  /**
   * Record i's row as ClickHouse 18.16 prints it (TSV), in `columns`' order,
   * in the types schema discovery gives that server: Bool → UInt8 (0/1);
   * DateTime64(3/6/9, 'UTC') → DateTime('UTC'), cut to the second (the
   * fraction is i ms/µs/ns, under a second); Date32 → String holding the
   * decoder's `YYYY-MM-DD`; Map and Variant → String, the value's JSON text
   * (a string branch as itself, a long as its digits); `duration` is a
   * String of its JSON object (keys sorted). NULL prints as \N, arrays as
   * ['a','b'], Decimal(18, 4) with its 4 digits, fixed(4) as its text.
   */
  row(i) {
    const at = "2023-11-14 22:13:20";
    return [
      i, -i, i % 2 === 0 ? 1 : 0, 0.5, i * 1.25, `r${i}`, i % 3 === 0 ? "\\N" : `n${i}`, STATUSES[i % 3],
      `['a','b${i}']`, `{"x":${i}}`, `c${i}`, i % 5, "AB12", `blob-${i}`, `${i}.1234`,
      `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`, dayOf(i), 3_600_000 + i,
      at, at, at, at, i % 2 === 0 ? `s${i}` : `${i}`, '{"days":2,"millis":3,"months":1}',
    ].join("\t");
  },
  async delivered(at) {
    // 50 records at the start: all of them, and more, land.
    await eventually("at least 50 rows in the table", async () => Number(await clickhouse(`SELECT count() FROM ${at}`)) >= 50, 120_000, 2000);
    // Records 6 and 7: a null and a string note, both branches of `either`,
    // both booleans, statuses NEW and PAID. Each once.
    const columns = READING.columns.map((c) => `\`${c}\``).join(", ");
    const tsv = await clickhouse(`SELECT ${columns} FROM ${at} WHERE id IN (6, 7) ORDER BY id FORMAT TSV`);
    const expected = `${READING.row(6)}\n${READING.row(7)}\n`;
    if (tsv !== expected) {
      const got = tsv.split("\n").map((line) => line.split("\t"));
      const want = expected.split("\n").map((line) => line.split("\t"));
      const diffs = want.flatMap((cells, r) => cells.map((w, c) => (got[r]?.[c] === w ? null : `row ${r} ${READING.columns[c] ?? c}: got ${JSON.stringify(got[r]?.[c])}, want ${JSON.stringify(w)}`)).filter(Boolean));
      assert.fail(`records 6 and 7 in ClickHouse differ from the seed's values:\n${diffs.join("\n")}\ngot:\n${tsv}want:\n${expected}`);
    }
  },
};

/**
 * One pipe through the whole wizard and its rows in ClickHouse.
 *
 * - `slug`: names the pipe, the table and the screenshots;
 * - `kind`: "kafka" or "kinesis"; `source`: the topic or stream;
 * - `format`: the format's name as the sample summary says it;
 *   `registry`: whether messages name a registry schema id;
 * - `shape`: the record type's columns and values (ORDER, the default, or READING);
 * - `chooseFormat(page)`: sets the format on the connection step;
 * - `onDestination(page)`: optional, on the destination step once the columns are there;
 * - `onReview(kafkaOrKinesis, spec, json)`: checks the review's pipe definition;
 * - `onDelivered(pipeId)`: optional, once rows are in ClickHouse, before the pipe is deleted.
 *
 * Returns the created pipe's id, already deleted when the function returns.
 */
async function createThroughWizard({ slug, kind, source, format, registry, shape = ORDER, chooseFormat, onDestination, onReview, onDelivered }) {
  const e = env();
  const { page, problems } = session;
  const name = `e2e ${slug.replace(/-/g, " ")} ${RUN}`;
  const table = `e2e_${slug.replace(/-/g, "_")}_${RUN}`;
  const destination = await adminApi("GET", `/v1/destinations/${e.destinationId}`);
  assert.equal(destination.status, 200, JSON.stringify(destination.body));
  const database = destination.body.database;

  // From the list, so that a wizard an earlier test left half-way is not reused.
  await page.goto(`${e.ui}/#/pipes`);
  await page.getByTestId("new-pipe").click();

  // 1. Source
  await page.getByTestId("wizard-step-1").waitFor();
  await page.getByTestId(`preset-${kind}`).check();
  await next(page, 2);

  // 2. Connection and message format, checked
  await page.getByTestId("pipe-name").fill(name);
  await page.getByTestId("pipe-description").fill(`created by the browser tests (${format})`);
  await (kind === "kafka" ? fillKafka : fillKinesis)(page, e);
  assert.ok(await page.getByTestId("format-JSONEachRow").isChecked(), "JSONEachRow is the default format");
  await chooseFormat(page);
  await page.getByTestId("test-connection").click();
  const ok = await waitForAttribute(page, '[data-testid="connection-result"]', "data-ok", (v) => v === "true" || v === "false", "the connection check", 30_000);
  assert.equal(ok, "true", await page.getByTestId("connection-result").textContent());
  await screenshot(page, `${slug}-step-2-format`, { fullPage: true });
  await next(page, 3);

  // 3. Topic or stream, from the oldest, and the sample decoded
  await page.getByTestId("source-filter").fill(source);
  await page.getByTestId(`source-option-${source}`).check();
  await page.getByTestId(kind === "kafka" ? "offset-from_beginning" : "iterator-TRIM_HORIZON").check();
  const decoded = page.locator('[data-testid="sample-message"][data-decoded="true"]');
  await decoded.first().waitFor({ timeout: 30_000 });
  assert.equal(await page.getByTestId("sample-decode-error").count(), 0, "every sampled message decodes");
  const summary = await page.getByTestId("sample-summary").textContent();
  assert.match(summary, new RegExp(`^All \\d+ read as ${format}${registry ? " \\(schema id \\d+\\)" : ""}\\.$`), summary);
  assert.equal(await page.getByTestId("sample-schema-id").count() > 0, registry, registry ? "messages name their schema id" : "plain messages name no schema id");
  shape.decoded(JSON.parse(await decoded.first().getByTestId("sample-decoded").textContent()));
  assert.equal(await page.getByTestId("sample-format-hint").count(), 0);
  await screenshot(page, `${slug}-step-3-sample`);
  await next(page, 4);

  // 4. Destination: a new table whose columns come from the schema
  await page.getByTestId("destination-select").selectOption(e.destinationId);
  await page.getByTestId("table-mode-new").check();
  await page.getByTestId("column-row-0").waitFor({ timeout: 30_000 });
  const columnNames = () => page.locator('[data-testid^="column-name-"]').evaluateAll((inputs) => inputs.map((i) => i.value));
  let names = [];
  await eventually(`the columns from the schema to include ${shape.columns.join(", ")}`, async () => {
    names = await columnNames();
    return shape.columns.every((c) => names.includes(c));
  }, 30_000).catch(async (err) => {
    await screenshot(page, `${slug}-step-4-failed`, { fullPage: true });
    throw new Error(`${err.message}; the columns are ${JSON.stringify(names)}`);
  });
  if (shape.exact) assert.deepEqual(names, shape.columns, `the schema's columns, all and in order: ${JSON.stringify(names)}`);
  for (const other of shape.notColumns ?? []) assert.ok(!names.includes(other), `columns of the record, not of a record it holds: ${names}`);
  assert.equal(await page.getByTestId("discovery-error").count(), 0);
  if (registry) assert.match(await page.getByTestId("schema-origin").textContent(), /schema id \d+/);
  await page.getByTestId("table-name").fill(table);
  await page.getByTestId("table-engine").selectOption("MergeTree");
  await page.getByTestId("preview-table").waitFor();
  assert.match(await page.getByTestId("preview-table").textContent(), shape.text, "the decoded sample fills the preview");
  assert.match(await page.getByTestId("sorting-key").textContent(), /ORDER BY\s*\(id\)/);
  await onDestination?.(page);
  await screenshot(page, `${slug}-step-4-destination`, { fullPage: true });
  await next(page, 5);

  // 5. Permissions, 6. Scaling (the defaults)
  await page.getByTestId("permissions-full").check();
  await next(page, 6);
  await next(page, 7);

  // 7. Review
  const json = await page.getByTestId("review-json").textContent();
  const spec = JSON.parse(json);
  assert.equal(spec.destination.table, table);
  assert.equal(spec.destination.managedTable, true);
  const src = spec.source[kind];
  assert.equal(src.format, format, json);
  assert.deepEqual(kind === "kafka" ? src.topics : [src.streamName], [source]);
  assert.ok(spec.fieldMappings.some((m) => m.sourceField === "customer.name" && m.destinationField === "customer_name"), json);
  await onReview(src, spec, json);
  await screenshot(page, `${slug}-step-7-review`, { fullPage: true });
  await page.getByTestId("wizard-create").click();

  // The pipe page: rows arrive
  await page.getByTestId("pipe-detail").waitFor({ timeout: 30_000 });
  const pipeId = pipeIdOf(page);
  leftover.add(pipeId);
  await waitForAttribute(page, '[data-testid="total-sent-rows"]', "data-value", (v) => Number(v) > 0, "sent rows > 0", 150_000);
  await waitForAttribute(page, '[data-testid="state-badge"]', "data-state", (v) => v === "Running", "state Running", 60_000);
  await page.getByTestId("newest-row").first().waitFor({ timeout: 60_000 });
  assert.match(await page.getByTestId("newest-rows-table").textContent(), shape.text, "the newest rows hold the decoded fields");

  // In ClickHouse, with the seed's values.
  await shape.delivered(`\`${database}\`.\`${table}\``, pipeId);
  // Every message decodes and converts: nothing in the error table.
  const errors = await adminApi("GET", `/v1/pipes/${pipeId}/errors`);
  assert.equal(errors.status, 200, JSON.stringify(errors.body));
  assert.deepEqual(errors.body.errors, [], "no error rows");
  await onDelivered?.(pipeId);
  await screenshot(page, `${slug}-detail`, { fullPage: true });

  await removePipe(pipeId);
  leftover.delete(pipeId);
  assertNoPageErrors(problems);
  return pipeId;
}

test("a Kafka Protobuf pipe through the registry, with schema evolution, delivers rows", { timeout: 300_000 }, async () => {
  const v = need("Kafka Protobuf registry", ["SLUICE_E2E_REGISTRY_URL", "SLUICE_E2E_PROTO_TOPIC"]);
  const registryUrl = v.SLUICE_E2E_REGISTRY_URL;
  await createThroughWizard({
    slug: "proto-registry",
    kind: "kafka",
    source: v.SLUICE_E2E_PROTO_TOPIC,
    format: "Protobuf",
    registry: true,
    async chooseFormat(page) {
      await page.getByTestId("format-Protobuf").check();
      assert.ok(await page.getByTestId("protobuf-source-registry").isChecked(), "the registry is the default schema source");
      await page.getByTestId("registry-url").fill(registryUrl);
      assert.equal(await page.getByTestId("message-type").count(), 0, "no message type with a registry");
    },
    async onDestination(page) {
      const option = page.getByTestId("schema-evolution");
      assert.equal(await option.isChecked(), false, "schema evolution is off by default");
      assert.match(await page.getByTestId("schema-evolution-section").textContent(), /become Nullable columns; without it they are not loaded and an event says so/);
      await page.getByLabel("Add columns when the schema gains fields").check();
      assert.ok(await option.isChecked());
    },
    async onReview(kafka, spec, json) {
      assert.deepEqual(kafka.schemaRegistry, { url: registryUrl, authentication: "NONE" });
      for (const field of ["avroSchema", "protobufSchema", "messageType"]) assert.equal(kafka[field], undefined, `${field} is not sent: ${json}`);
      assert.match(json, /"schemaEvolution": "add_columns"/);
      assert.equal(spec.schemaEvolution, "add_columns");
      const summary = await session.page.getByTestId("review-summary").textContent();
      assert.match(summary, /Protobuf, schemas from/);
      assert.match(summary, /Schema evolutionAdd columns for new fields/);
    },
    async onDelivered(pipeId) {
      // The server took the option, and the schema it saw is Order's.
      const schema = await eventually("the pipe to record the writer schema", async () => {
        const r = await adminApi("GET", `/v1/pipes/${pipeId}/schema`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        return r.body.schemas.length > 0 ? r.body : false;
      }, 30_000);
      assert.equal(schema.schemaEvolution, "add_columns");
      assert.equal(schema.schemas[0].kind, "PROTOBUF", JSON.stringify(schema));
      assert.equal(schema.schemas[0].messageType, "web.Order", JSON.stringify(schema));
    },
  });
});

test("a Kafka plain Protobuf pipe from an uploaded .proto file delivers rows", { timeout: 300_000 }, async () => {
  const v = need("Kafka plain Protobuf", ["SLUICE_E2E_PLAIN_PROTO_TOPIC", "SLUICE_E2E_PROTO_FILE"]);
  const file = v.SLUICE_E2E_PROTO_FILE;
  const fileName = basename(file);
  await createThroughWizard({
    slug: "proto-plain",
    kind: "kafka",
    source: v.SLUICE_E2E_PLAIN_PROTO_TOPIC,
    format: "Protobuf",
    registry: false,
    async chooseFormat(page) {
      await page.getByTestId("format-Protobuf").check();
      await page.getByTestId("protobuf-source-files").check();
      await page.getByTestId("proto-files").setInputFiles(file);
      await page.getByTestId("proto-file-0").waitFor();
      assert.equal(await page.getByTestId("proto-file-name-0").inputValue(), fileName, "an upload takes the file's own name");
      assert.equal(await page.getByTestId("proto-file-text-0").inputValue(), readFileSync(file, "utf8"));
      // Two top-level messages (Customer, Order): the type is not guessed.
      assert.equal(await page.getByTestId("message-type").inputValue(), "");
      await page.getByTestId("message-type").fill("web.Order");
      assert.equal(await page.getByTestId("registry-url").count(), 0, "no registry for plain messages");
    },
    async onDestination(page) {
      assert.equal(await page.getByTestId("schema-evolution").count(), 0, "no schema evolution without a registry");
    },
    async onReview(kafka, spec, json) {
      assert.deepEqual(Object.keys(kafka.protobufSchema), [fileName]);
      assert.equal(kafka.messageType, "web.Order");
      assert.equal(kafka.schemaRegistry, undefined, json);
      assert.equal(spec.schemaEvolution, undefined, json);
    },
  });
});

test("a Kafka plain Avro pipe with a pasted writer schema delivers rows", { timeout: 300_000 }, async () => {
  const v = need("Kafka plain Avro", ["SLUICE_E2E_PLAIN_AVRO_TOPIC", "SLUICE_E2E_AVRO_SCHEMA_FILE"]);
  const schema = readFileSync(v.SLUICE_E2E_AVRO_SCHEMA_FILE, "utf8");
  await createThroughWizard({
    slug: "avro-plain",
    kind: "kafka",
    source: v.SLUICE_E2E_PLAIN_AVRO_TOPIC,
    format: "Avro",
    registry: false,
    async chooseFormat(page) {
      await page.getByTestId("format-Avro").check();
      await page.getByTestId("avro-source-inline").check();
      await page.getByTestId("avro-schema").fill(schema);
      assert.equal(await page.getByTestId("registry-url").count(), 0, "no registry with a pasted schema");
    },
    async onDestination(page) {
      assert.equal(await page.getByTestId("schema-evolution").count(), 0, "no schema evolution for plain Avro");
    },
    async onReview(kafka, spec, json) {
      assert.equal(kafka.avroSchema, schema.trim());
      assert.equal(kafka.schemaRegistry, undefined, json);
      assert.equal(spec.schemaEvolution, undefined, json);
      assert.match(await session.page.getByTestId("review-summary").textContent(), /Avro, with the pasted writer schema/);
    },
  });
});

test("a Kinesis AvroConfluent pipe delivers rows", { timeout: 300_000 }, async () => {
  const v = need("Kinesis AvroConfluent", ["SLUICE_E2E_REGISTRY_URL", "SLUICE_E2E_AVRO_STREAM"]);
  const registryUrl = v.SLUICE_E2E_REGISTRY_URL;
  await createThroughWizard({
    slug: "kinesis-avro",
    kind: "kinesis",
    source: v.SLUICE_E2E_AVRO_STREAM,
    format: "AvroConfluent",
    registry: true,
    async chooseFormat(page) {
      await page.getByTestId("format-AvroConfluent").check();
      await page.getByTestId("registry-url").fill(registryUrl);
    },
    async onDestination(page) {
      // Offered, left off: the spec then does not carry it.
      assert.equal(await page.getByTestId("schema-evolution").isChecked(), false);
    },
    async onReview(kinesis, spec, json) {
      assert.deepEqual(kinesis.schemaRegistry, { url: registryUrl, authentication: "NONE" });
      assert.equal(kinesis.avroSchema, undefined, json);
      assert.equal(spec.schemaEvolution, undefined, json);
      assert.match(await session.page.getByTestId("review-summary").textContent(), /Schema evolutionNone: new fields are not loaded/);
    },
  });
});


test("a table from the registered schema takes every Avro type", { timeout: 300_000 }, async () => {
  const v = need("Avro types", ["SLUICE_E2E_REGISTRY_URL", "SLUICE_E2E_TYPES_TOPIC"]);
  const registryUrl = v.SLUICE_E2E_REGISTRY_URL;
  const topic = v.SLUICE_E2E_TYPES_TOPIC;
  const { destinationId } = env();
  await createThroughWizard({
    slug: "avro-types",
    kind: "kafka",
    source: topic,
    format: "AvroConfluent",
    registry: true,
    shape: READING,
    async chooseFormat(page) {
      await page.getByTestId("format-AvroConfluent").check();
      await page.getByTestId("registry-url").fill(registryUrl);
    },
    async onDestination(page) {
      assert.match(await page.getByTestId("schema-origin").textContent(), new RegExp(`subject ${topic}-value`));
      assert.equal(await page.getByTestId("column-source-10").inputValue(), "customer.name");
      assert.equal(await page.getByTestId("column-source-11").inputValue(), "customer.tier");
      // The types are the destination server's (discovery is asked with
      // it; an answer without it may come first, and is replaced).
      const server = await adminApi("GET", `/v1/destinations/${destinationId}/types`);
      assert.equal(server.status, 200, JSON.stringify(server.body));
      const families = new Set(server.body.families);
      const lacking = (t) => (t.replace(/'[^']*'/g, "").match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []).filter((f) => !families.has(f));
      let type = {};
      await eventually(`every column type to be one ClickHouse ${server.body.version} has`, async () => {
        const types = await page.locator('[data-testid^="column-type-"]').evaluateAll((inputs) => inputs.map((i) => i.value));
        type = Object.fromEntries(READING.columns.map((c, i) => [c, types[i]]));
        return types.length === READING.columns.length && types.every((t) => lacking(t).length === 0);
      }, 30_000).catch((err) => {
        const missing = Object.entries(type).filter(([, t]) => t === undefined || lacking(t).length > 0).map(([c, t]) => `${c} ${t}`);
        throw new Error(`${err.message}; not fitted: ${missing.join("; ")}`);
      });
      assert.equal(await page.getByTestId("discovery-error").count(), 0);
      const shown = JSON.stringify(type);
      assert.equal(type.ok, families.has("Bool") ? "Bool" : "UInt8", shown);
      for (const c of ["at_ms", "at_us", "at_ns", "local_ms"]) {
        assert.match(type[c], families.has("DateTime64") ? /^DateTime64\(\d, 'UTC'\)$/ : /^DateTime(\('UTC'\))?$/, `${c}: ${shown}`);
      }
      if (!families.has("Date32")) assert.equal(type.day, "String", shown);
      if (!families.has("Variant")) assert.equal(type.either, "String", shown);
      if (!families.has("Map")) assert.equal(type.attrs, "String", shown);
      assert.equal(type.status, "Enum8('NEW' = 0, 'PAID' = 1, 'SHIPPED' = 2)", shown);
      assert.equal(type.price, "Decimal(18, 4)", shown);
      assert.equal(await page.getByTestId("schema-evolution").isChecked(), false);
    },
    async onReview(kafka, spec, json) {
      assert.deepEqual(kafka.schemaRegistry, { url: registryUrl, authentication: "NONE" });
      for (const field of ["avroSchema", "protobufSchema", "messageType"]) assert.equal(kafka[field], undefined, `${field} is not sent: ${json}`);
      assert.ok(spec.fieldMappings.some((m) => m.sourceField === "customer.tier" && m.destinationField === "customer_tier"), json);
      assert.deepEqual(spec.destination.columns.map((c) => c.name), READING.columns, json);
    },
  });
});
