import { describe, expect, it } from "vitest";
import { applyPreset } from "./presets";
import {
  buildPipeSpec,
  buildSource,
  defaultSortingKey,
  describeSchemaEvolution,
  initialWizardState,
  schemaEvolutionOffered,
  schemaEvolutionSent,
  tableNameFor,
  validateStep,
  type WizardState,
} from "./wizard";

const DEST = "0190a6f2-8d3b-7c55-9a1e-2f4b5c6d7e8f";

function kafkaState(): WizardState {
  const s = initialWizardState();
  s.name = "orders to ClickHouse";
  s.description = "demo";
  s.kafka.brokers = " 127.0.0.1:19092 , 127.0.0.2:19092 ";
  s.kafka.topic = "orders";
  s.destination.destinationId = DEST;
  s.destination.table = "orders";
  s.destination.columns = [
    { id: "a", name: "id", type: "Int64", sourceField: "id" },
    { id: "b", name: "user_name", type: "Nullable(String)", sourceField: "user.name" },
    { id: "c", name: "created_at", type: "DateTime64(3)", sourceField: "created_at" },
    { id: "d", name: "offset", type: "Int64", sourceField: "_offset" },
    { id: "e", name: "note", type: "String", sourceField: "" },
  ];
  s.destination.sortingKey = ["c", "a"];
  s.destination.partitionBy = "toYYYYMM(created_at)";
  return s;
}

describe("buildPipeSpec: new (managed) table", () => {
  it("builds the spec with columns, table definition and fieldMappings", () => {
    const { spec } = buildPipeSpec(kafkaState());
    expect(spec).toEqual({
      name: "orders to ClickHouse",
      description: "demo",
      source: {
        kafka: {
          brokers: "127.0.0.1:19092,127.0.0.2:19092",
          topics: ["orders"],
          authentication: "NONE",
          offset: { strategy: "from_beginning" },
          readCommitted: false,
        },
      },
      destination: {
        destinationId: DEST,
        table: "orders",
        managedTable: true,
        tableDefinition: { engine: "MergeTree", sortingKey: ["created_at", "id"], partitionBy: "toYYYYMM(created_at)" },
        columns: [
          { name: "id", type: "Int64" },
          { name: "user_name", type: "Nullable(String)" },
          { name: "created_at", type: "DateTime64(3)" },
          { name: "offset", type: "Int64" },
          { name: "note", type: "String" },
        ],
        permissions: "full",
      },
      fieldMappings: [
        { sourceField: "user.name", destinationField: "user_name" },
        { sourceField: "_offset", destinationField: "offset" },
      ],
      scaling: { replicas: 1, replicaSize: "XS" },
    });
  });

  it("follows renames in the sorting key and mappings", () => {
    const s = kafkaState();
    s.destination.columns[0].name = "order_id";
    const { spec } = buildPipeSpec(s);
    expect(spec.destination.tableDefinition?.sortingKey).toEqual(["created_at", "order_id"]);
    expect(spec.fieldMappings).toContainEqual({ sourceField: "id", destinationField: "order_id" });
  });

  it("sets the database only when chosen, and the engine", () => {
    const s = kafkaState();
    s.destination.database = "shop";
    s.destination.engine = "ReplacingMergeTree";
    s.destination.partitionBy = " ";
    const { spec } = buildPipeSpec(s);
    expect(spec.destination.database).toBe("shop");
    expect(spec.destination.tableDefinition).toEqual({ engine: "ReplacingMergeTree", sortingKey: ["created_at", "id"] });
  });

  it("sends autoscaling bounds and keeps replicas inside them", () => {
    const s = kafkaState();
    s.scaling = { replicaSize: "M", replicas: 1, autoscaling: true, minReplicas: 2, maxReplicas: 5 };
    expect(buildPipeSpec(s).spec.scaling).toEqual({ replicas: 2, replicaSize: "M", autoscaling: { minReplicas: 2, maxReplicas: 5 } });
    s.scaling.autoscaling = false;
    s.scaling.replicas = 4;
    expect(buildPipeSpec(s).spec.scaling).toEqual({ replicas: 4, replicaSize: "M" });
  });

  it("sends permissions", () => {
    const s = kafkaState();
    s.permissions = "table_only";
    expect(buildPipeSpec(s).spec.destination.permissions).toBe("table_only");
  });
});

describe("schema evolution", () => {
  function registryState(): WizardState {
    const s = kafkaState();
    s.format.format = "AvroConfluent";
    s.format.registryUrl = "http://registry:8081";
    s.addColumns = true;
    return s;
  }

  it("is offered for a registry format into a new table", () => {
    expect(schemaEvolutionOffered(registryState())).toBe(true);
    const proto = registryState();
    proto.format.format = "Protobuf";
    expect(schemaEvolutionOffered(proto)).toBe(true);
    proto.format.protobufSource = "files";
    expect(schemaEvolutionOffered(proto), "plain Protobuf names no writer schema").toBe(false);
    for (const format of ["JSONEachRow", "Avro"] as const) {
      const s = registryState();
      s.format.format = format;
      expect(schemaEvolutionOffered(s), format).toBe(false);
    }
    const existing = registryState();
    existing.destination.mode = "existing";
    expect(schemaEvolutionOffered(existing), "an existing table").toBe(false);
  });

  it("sends add_columns only when ticked, offered and with full permissions", () => {
    expect(buildPipeSpec(registryState()).spec.schemaEvolution).toBe("add_columns");
    const unticked = registryState();
    unticked.addColumns = false;
    expect(buildPipeSpec(unticked).spec).not.toHaveProperty("schemaEvolution");
    const tableOnly = registryState();
    tableOnly.permissions = "table_only";
    expect(schemaEvolutionSent(tableOnly)).toBeUndefined();
    expect(buildPipeSpec(tableOnly).spec).not.toHaveProperty("schemaEvolution");
    // Ticked, then the format changed: what the user ticked stays, but is not sent.
    const json = registryState();
    json.format.format = "JSONEachRow";
    expect(json.addColumns).toBe(true);
    expect(buildPipeSpec(json).spec).not.toHaveProperty("schemaEvolution");
    const existing = registryState();
    existing.destination.mode = "existing";
    expect(buildPipeSpec(existing).spec).not.toHaveProperty("schemaEvolution");
  });

  it("is not sent by default", () => {
    expect(initialWizardState().addColumns).toBe(false);
    expect(buildPipeSpec(kafkaState()).spec).not.toHaveProperty("schemaEvolution");
  });

  it("describes itself for the review", () => {
    expect(describeSchemaEvolution(registryState())).toMatch(/^Add columns/);
    const unticked = registryState();
    unticked.addColumns = false;
    expect(describeSchemaEvolution(unticked)).toMatch(/not loaded/);
    const tableOnly = registryState();
    tableOnly.permissions = "table_only";
    expect(describeSchemaEvolution(tableOnly)).toMatch(/needs full access/);
    expect(describeSchemaEvolution(kafkaState()), "not offered for JSONEachRow").toBeNull();
  });
});

describe("buildPipeSpec: existing table", () => {
  it("sends the mapped table columns and fieldMappings, not a table definition", () => {
    const s = kafkaState();
    s.destination.mode = "existing";
    s.destination.existingTable = "orders_v2";
    s.destination.existingColumns = [
      { name: "order_id", type: "UInt64" },
      { name: "amount", type: "Float64" },
      { name: "customer", type: "String" },
      { name: "ingested", type: "DateTime", defaultKind: "DEFAULT" },
      { name: "day", type: "Date", defaultKind: "MATERIALIZED" },
    ];
    s.destination.mappings = { order_id: "id", amount: "amount", customer: "user.name", ingested: "" };
    const { spec, owners } = buildPipeSpec(s);
    expect(spec.destination).toEqual({
      destinationId: DEST,
      table: "orders_v2",
      managedTable: false,
      columns: [
        { name: "order_id", type: "UInt64" },
        { name: "amount", type: "Float64" },
        { name: "customer", type: "String" },
      ],
      permissions: "full",
    });
    expect(spec.fieldMappings).toEqual([
      { sourceField: "id", destinationField: "order_id" },
      { sourceField: "user.name", destinationField: "customer" },
    ]);
    expect(owners).toEqual({
      columns: ["mapping.order_id", "mapping.amount", "mapping.customer"],
      fieldMappings: ["mapping.order_id", "mapping.customer"],
    });
  });
});

describe("buildSource", () => {
  it("sends SASL credentials only with SASL", () => {
    const s = applyPreset(kafkaState(), "msk");
    s.kafka.username = "u";
    s.kafka.password = "p";
    expect(buildSource(s)).toMatchObject({ kafka: { authentication: "SCRAM-SHA-512", credentials: { username: "u", password: "p" } } });
    const none = applyPreset(s, "kafka");
    expect("credentials" in (buildSource(none) as { kafka: object }).kafka).toBe(false);
  });

  it("sends mutual TLS material and a CA", () => {
    const s = kafkaState();
    s.kafka.authentication = "MUTUAL_TLS";
    s.kafka.certificate = "CERT";
    s.kafka.privateKey = "KEY";
    s.kafka.caCertificate = " CA ";
    expect(buildSource(s)).toMatchObject({ kafka: { credentials: { certificate: "CERT", privateKey: "KEY" }, caCertificate: "CA" } });
  });

  it("sends an offset timestamp only for from_timestamp", () => {
    const s = kafkaState();
    s.kafka.offsetStrategy = "from_timestamp";
    s.kafka.offsetTimestamp = "2024-05-01T12:00";
    const kafka = (buildSource(s) as { kafka: { offset: { strategy: string; timestamp: string } } }).kafka;
    expect(kafka.offset.strategy).toBe("from_timestamp");
    expect(kafka.offset.timestamp).toBe(new Date("2024-05-01T12:00").toISOString());
  });

  it("builds a Kinesis source", () => {
    const s = applyPreset(initialWizardState(), "kinesis");
    s.kinesis.streamName = "clicks";
    s.kinesis.endpoint = "http://127.0.0.1:14568";
    s.kinesis.accessKeyId = "AKIAIOSFODNN7EXAMPLE";
    s.kinesis.secretKey = "secret";
    s.kinesis.useEnhancedFanOut = true;
    expect(buildSource(s)).toEqual({
      kinesis: {
        streamName: "clicks",
        region: "us-east-1",
        endpoint: "http://127.0.0.1:14568",
        authentication: "IAM_USER",
        iteratorType: "TRIM_HORIZON",
        useEnhancedFanOut: true,
        accessKey: { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretKey: "secret" },
      },
    });
    s.kinesis.authentication = "IAM_ROLE";
    s.kinesis.accessKeyId = "";
    s.kinesis.iamRole = "arn:aws:iam::123456789012:role/r";
    s.kinesis.iteratorType = "AT_TIMESTAMP";
    s.kinesis.timestamp = "2024-05-01T00:00";
    const k = (buildSource(s) as { kinesis: Record<string, unknown> }).kinesis;
    expect(k.accessKey).toBeUndefined();
    expect(k.iamRole).toBe("arn:aws:iam::123456789012:role/r");
    expect(k.timestamp).toBe(new Date("2024-05-01T00:00").toISOString());
  });
});

describe("helpers", () => {
  it("derives table names from topics", () => {
    expect(tableNameFor("web-clicks.v2")).toBe("web_clicks_v2");
    expect(tableNameFor("2024-events")).toBe("t_2024_events");
    expect(tableNameFor("---")).toBe("events");
  });

  it("picks a sorting key that ClickHouse accepts", () => {
    expect(
      defaultSortingKey([
        { id: "1", name: "note", type: "Nullable(String)", sourceField: "note" },
        { id: "2", name: "tags", type: "Array(String)", sourceField: "tags" },
        { id: "3", name: "ts", type: "DateTime64(3)", sourceField: "ts" },
        { id: "4", name: "order_id", type: "Int64", sourceField: "order_id" },
      ]),
    ).toEqual(["4"]);
    expect(defaultSortingKey([{ id: "1", name: "x", type: "Nullable(Int64)", sourceField: "x" }])).toEqual([]);
  });
});

describe("validateStep", () => {
  it("requires a name and brokers on step 2", () => {
    const s = initialWizardState();
    expect(validateStep(2, s)).toMatchObject({ name: expect.any(String), "kafka.brokers": expect.any(String) });
    s.name = "ok";
    s.kafka.brokers = "localhost";
    expect(validateStep(2, s)["kafka.brokers"]).toMatch(/host:port/);
    s.kafka.brokers = "localhost:9092";
    expect(validateStep(2, s)).toEqual({});
    const sasl = applyPreset(s, "confluent");
    expect(Object.keys(validateStep(2, sasl)).sort()).toEqual(["kafka.password", "kafka.username"]);
  });

  it("requires a topic, and a time for from_timestamp", () => {
    const s = initialWizardState();
    expect(validateStep(3, s)).toHaveProperty("kafka.topic");
    s.kafka.topic = "t";
    s.kafka.offsetStrategy = "from_timestamp";
    expect(validateStep(3, s)).toHaveProperty("kafka.offsetTimestamp");
  });

  it("checks columns on step 4", () => {
    const s = kafkaState();
    expect(validateStep(4, s)).toEqual({});
    s.destination.columns[1].name = "id";
    s.destination.columns[2].type = "";
    const errors = validateStep(4, s);
    expect(errors["column.b.name"]).toMatch(/twice/);
    expect(errors["column.c.type"]).toBeTruthy();
    s.destination.columns = [];
    expect(validateStep(4, s)["destination.columns"]).toBeTruthy();
  });

  it("checks autoscaling bounds on step 6", () => {
    const s = initialWizardState();
    s.scaling = { replicaSize: "XS", replicas: 1, autoscaling: true, minReplicas: 4, maxReplicas: 2 };
    expect(validateStep(6, s)).toHaveProperty("scaling.maxReplicas");
  });
});
