import { describe, expect, it } from "vitest";
import { mapFieldErrors, parsePointer, pointerToField, stepOfField } from "./pointer";
import { buildPipeSpec, initialWizardState } from "./wizard";

describe("pointerToField", () => {
  it("parses RFC 6901 escapes", () => {
    expect(parsePointer("/a~1b/c~0d/0")).toEqual(["a/b", "c~d", "0"]);
    expect(parsePointer("")).toEqual([]);
  });

  it("maps name and connection fields to step 2", () => {
    expect(pointerToField("/name")).toEqual({ step: 2, field: "name" });
    expect(pointerToField("/source/kafka/brokers")).toEqual({ step: 2, field: "kafka.brokers" });
    expect(pointerToField("/source/kafka/credentials/password")).toEqual({ step: 2, field: "kafka.password" });
    expect(pointerToField("/source/kafka/credentials/username")).toEqual({ step: 2, field: "kafka.username" });
    expect(pointerToField("/source/kafka/credentials")).toEqual({ step: 2, field: "kafka.authentication" });
    expect(pointerToField("/source/kinesis/accessKey/secretKey")).toEqual({ step: 2, field: "kinesis.secretKey" });
    expect(pointerToField("/source/kinesis/accessKey/accessKeyId")).toEqual({ step: 2, field: "kinesis.accessKeyId" });
    expect(pointerToField("/source/kinesis/region")).toEqual({ step: 2, field: "kinesis.region" });
    expect(pointerToField("/source/kinesis/iamRole")).toEqual({ step: 2, field: "kinesis.iamRole" });
  });

  it("maps the format fields of either source to the connection step", () => {
    for (const kind of ["kafka", "kinesis"]) {
      const at = (rest: string) => pointerToField(`/source/${kind}/${rest}`);
      expect(at("format")).toEqual({ step: 2, field: "format.format" });
      expect(at("schemaRegistry")).toEqual({ step: 2, field: "format.registryUrl" });
      expect(at("schemaRegistry/url")).toEqual({ step: 2, field: "format.registryUrl" });
      expect(at("schemaRegistry/authentication")).toEqual({ step: 2, field: "format.registryAuthentication" });
      expect(at("schemaRegistry/credentials")).toEqual({ step: 2, field: "format.registryAuthentication" });
      expect(at("schemaRegistry/credentials/username")).toEqual({ step: 2, field: "format.registryUsername" });
      expect(at("schemaRegistry/credentials/password")).toEqual({ step: 2, field: "format.registryPassword" });
      expect(at("schemaRegistry/caCertificate")).toEqual({ step: 2, field: "format.registryCaCertificate" });
      expect(at("avroSchema")).toEqual({ step: 2, field: "format.avroSchema" });
      expect(at("protobufSchema")).toEqual({ step: 2, field: "format.protobufSchema" });
      expect(at("messageType")).toEqual({ step: 2, field: "format.messageType" });
    }
    // A file's own problem names it, with `/` escaped.
    expect(pointerToField("/source/kafka/protobufSchema/shop~1orders.proto")).toEqual({ step: 2, field: "format.protobufFile.shop/orders.proto" });
    // The Kafka credentials and CA are not the registry's.
    expect(pointerToField("/source/kafka/credentials/password")).toEqual({ step: 2, field: "kafka.password" });
    expect(pointerToField("/source/kafka/caCertificate")).toEqual({ step: 2, field: "kafka.caCertificate" });
    const mapped = mapFieldErrors([
      { pointer: "/destination/table", message: "must not be empty" },
      { pointer: "/source/kinesis/schemaRegistry/url", message: "must use http or https" },
    ]);
    expect(mapped.firstStep).toBe(2);
    expect(mapped.fields["format.registryUrl"]).toBe("must use http or https");
  });

  it("maps topic, stream and starting position to step 3", () => {
    expect(pointerToField("/source/kafka/topics")).toEqual({ step: 3, field: "kafka.topic" });
    expect(pointerToField("/source/kafka/topics/0")).toEqual({ step: 3, field: "kafka.topic" });
    expect(pointerToField("/source/kafka/offset/timestamp")).toEqual({ step: 3, field: "kafka.offsetTimestamp" });
    expect(pointerToField("/source/kinesis/streamName")).toEqual({ step: 3, field: "kinesis.streamName" });
    expect(pointerToField("/source/kinesis/timestamp")).toEqual({ step: 3, field: "kinesis.timestamp" });
  });

  it("maps destination fields to step 4, permissions to 5, scaling to 6", () => {
    expect(pointerToField("/destination/table")).toEqual({ step: 4, field: "destination.table" });
    expect(pointerToField("/destination/table", undefined, "existing")).toEqual({ step: 4, field: "destination.existingTable" });
    expect(pointerToField("/destination/destinationId")).toEqual({ step: 4, field: "destination.destinationId" });
    expect(pointerToField("/destination/tableDefinition/sortingKey/1")).toEqual({ step: 4, field: "destination.sortingKey" });
    expect(pointerToField("/destination/tableDefinition/partitionBy")).toEqual({ step: 4, field: "destination.partitionBy" });
    expect(pointerToField("/destination/permissions")).toEqual({ step: 5, field: "permissions" });
    expect(pointerToField("/schemaEvolution")).toEqual({ step: 4, field: "schemaEvolution" });
    expect(pointerToField("/scaling/replicas")).toEqual({ step: 6, field: "scaling.replicas" });
    expect(pointerToField("/scaling/autoscaling/maxReplicas")).toEqual({ step: 6, field: "scaling.maxReplicas" });
    expect(pointerToField("/scaling/autoscaling/minReplicas")).toEqual({ step: 6, field: "scaling.minReplicas" });
  });

  it("maps column and fieldMapping indexes back to the rows they came from", () => {
    const s = initialWizardState();
    s.destination.columns = [
      { id: "a", name: "id", type: "Int64", sourceField: "id" },
      { id: "b", name: "user_name", type: "String", sourceField: "user.name" },
      { id: "c", name: "offset", type: "Int64", sourceField: "_offset" },
    ];
    const { owners } = buildPipeSpec(s);
    expect(pointerToField("/destination/columns/1/type", owners)).toEqual({ step: 4, field: "column.b.type" });
    expect(pointerToField("/destination/columns/2/name", owners)).toEqual({ step: 4, field: "column.c.name" });
    // fieldMappings: [user.name → user_name, _offset → offset]
    expect(pointerToField("/fieldMappings/1/sourceField", owners)).toEqual({ step: 4, field: "column.c.sourceField" });
    expect(pointerToField("/fieldMappings/0/destinationField", owners)).toEqual({ step: 4, field: "column.b.name" });
    expect(pointerToField("/destination/columns/9/type", owners)).toEqual({ step: 4, field: "destination.columns" });
  });

  it("maps existing-table mappings to their table column", () => {
    const s = initialWizardState();
    s.destination.mode = "existing";
    s.destination.existingTable = "orders";
    s.destination.existingColumns = [
      { name: "id", type: "UInt64" },
      { name: "amount", type: "Float64" },
    ];
    s.destination.mappings = { id: "order_id", amount: "amount" };
    const { owners } = buildPipeSpec(s);
    expect(pointerToField("/destination/columns/1/type", owners, "existing")).toEqual({ step: 4, field: "mapping.amount" });
    expect(pointerToField("/fieldMappings/0/sourceField", owners, "existing")).toEqual({ step: 4, field: "mapping.id" });
  });

  it("sends anything else to the review step", () => {
    expect(pointerToField("/settings/max_insert_rows")).toEqual({ step: 7, field: "form" });
    expect(pointerToField("")).toEqual({ step: 7, field: "form" });
  });

  it("collects several errors and finds the first step", () => {
    const mapped = mapFieldErrors([
      { pointer: "/scaling/replicas", message: "must be between 1 and 10" },
      { pointer: "/destination/table", message: "must not be empty" },
      { pointer: "/destination/table", message: "too long" },
      { pointer: "/settings/x", message: "unknown" },
    ]);
    expect(mapped.firstStep).toBe(4);
    expect(mapped.fields["destination.table"]).toBe("must not be empty; too long");
    expect(mapped.fields["scaling.replicas"]).toBe("must be between 1 and 10");
    expect(mapped.fields.form).toBe("/settings/x: unknown");
  });

  it("shows a refused schemaEvolution on the destination step's option", () => {
    const mapped = mapFieldErrors([{ pointer: "/schemaEvolution", message: "add_columns needs a managed table" }]);
    expect(mapped.fields).toEqual({ schemaEvolution: "add_columns needs a managed table" });
    expect(mapped.firstStep).toBe(4);
  });

  it("stepOfField agrees with pointerToField", () => {
    for (const p of ["/name", "/source/kafka/brokers", "/source/kafka/format", "/source/kinesis/avroSchema", "/source/kafka/protobufSchema/a.proto", "/source/kafka/schemaRegistry/credentials/password", "/source/kafka/topics", "/source/kinesis/streamName", "/source/kinesis/secretKey", "/destination/table", "/destination/permissions", "/schemaEvolution", "/scaling/replicas", "/settings/a"]) {
      const t = pointerToField(p);
      if (t.field !== "form") expect(stepOfField(t.field), p).toBe(t.step);
    }
  });
});
