import { describe, expect, it } from "vitest";
import type { SampleMessage } from "../api/types";
import {
  confluentSchemaId,
  decodeSummary,
  describeFormat,
  formatFields,
  initialFormatState,
  mergeProtoFiles,
  parseRegistryUrl,
  protoFileNameError,
  protoMessageTypes,
  readProtoFiles,
  registryUrlMeaning,
  sampleFormatHint,
  validateFormat,
  type FormatState,
} from "./messageFormat";
import { applyPreset } from "./presets";
import { buildPipeSpec, buildSource, connectionSource, initialWizardState, validateStep } from "./wizard";

const PROTO = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Order { int64 id = 1; Customer customer = 2; }
message Customer { string name = 1; }
`;

/** Every field typed in, so each case shows what is left out. */
function everything(patch: Partial<FormatState>): FormatState {
  return {
    ...initialFormatState(),
    registryUrl: " https://registry.example.com:8081 ",
    registryUsername: " key ",
    registryPassword: "secret",
    registryCaCertificate: " -----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE----- ",
    avroSchema: ' {"type": "string"} ',
    readerSchema: ' {"type": "record", "name": "R", "fields": []} ',
    protobufFiles: [{ name: "shop/orders.proto", text: PROTO }],
    messageType: " shop.Order ",
    ...patch,
  };
}

describe("formatFields", () => {
  it("sends nothing for JSONEachRow, whatever else was typed", () => {
    expect(formatFields(everything({ format: "JSONEachRow" }))).toEqual({});
  });

  it("AvroConfluent: the registry, and a reader schema when given", () => {
    expect(formatFields(everything({ format: "AvroConfluent", readerSchema: "" }))).toEqual({
      format: "AvroConfluent",
      schemaRegistry: { url: "https://registry.example.com:8081", authentication: "NONE", caCertificate: "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----" },
    });
    const withReader = formatFields(everything({ format: "AvroConfluent", registryAuthentication: "PLAIN", registryCaCertificate: "" }));
    expect(withReader).toEqual({
      format: "AvroConfluent",
      schemaRegistry: { url: "https://registry.example.com:8081", authentication: "PLAIN", credentials: { username: "key", password: "secret" } },
      avroSchema: '{"type": "record", "name": "R", "fields": []}',
    });
  });

  it("never sends Avro's writer schema as AvroConfluent's reader schema", () => {
    expect(formatFields(everything({ format: "AvroConfluent", readerSchema: " " }))).not.toHaveProperty("avroSchema");
    expect(validateFormat(everything({ format: "AvroConfluent", readerSchema: "", avroSchema: "{not json", registryUrl: "https://r/subjects/o" }))).toEqual({});
  });

  it("Avro: the pinned registry URL or the pasted schema, never both", () => {
    const registry = formatFields(everything({ format: "Avro", avroSource: "registry" }));
    expect(registry.schemaRegistry?.url).toBe("https://registry.example.com:8081");
    expect(registry).not.toHaveProperty("avroSchema");
    const inline = formatFields(everything({ format: "Avro", avroSource: "inline" }));
    expect(inline).toEqual({ format: "Avro", avroSchema: '{"type": "string"}' });
  });

  it("Protobuf: the registry without a message type, or the files with one", () => {
    expect(formatFields(everything({ format: "Protobuf", protobufSource: "registry", registryCaCertificate: "" }))).toEqual({
      format: "Protobuf",
      schemaRegistry: { url: "https://registry.example.com:8081", authentication: "NONE" },
    });
    expect(formatFields(everything({ format: "Protobuf", protobufSource: "files" }))).toEqual({
      format: "Protobuf",
      protobufSchema: { "shop/orders.proto": PROTO },
      messageType: "shop.Order",
    });
  });

  it("is part of the Kafka and Kinesis sources, but not of the connection used for listing", () => {
    const s = initialWizardState();
    s.kafka.brokers = "k:9092";
    s.kafka.topic = "orders";
    s.format = everything({ format: "AvroConfluent", readerSchema: "", registryCaCertificate: "" });
    expect(buildSource(s)).toMatchObject({ kafka: { topics: ["orders"], format: "AvroConfluent", schemaRegistry: { url: "https://registry.example.com:8081" } } });
    expect(buildPipeSpec(s).spec.source).toEqual(buildSource(s));
    const listing = connectionSource(s) as { kafka: Record<string, unknown> };
    expect(listing.kafka.brokers).toBe("k:9092");
    expect(listing.kafka).not.toHaveProperty("format");
    expect(listing.kafka).not.toHaveProperty("schemaRegistry");

    const k = applyPreset(s, "kinesis");
    k.kinesis.streamName = "clicks";
    expect(buildSource(k)).toMatchObject({ kinesis: { streamName: "clicks", format: "AvroConfluent", schemaRegistry: { authentication: "NONE" } } });
  });
});

describe("parseRegistryUrl", () => {
  const pin = (url: string) => {
    const parsed = parseRegistryUrl(url);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed;
  };

  it("reads the root and what the URL pins", () => {
    expect(pin("https://r.example:8081/")).toEqual({ ok: true, root: "https://r.example:8081", pin: { kind: "root" } });
    expect(pin("https://r.example/prefix/")).toMatchObject({ root: "https://r.example/prefix", pin: { kind: "root" } });
    expect(pin("https://r.example/prefix/subjects/orders-value/versions/3")).toEqual({
      ok: true,
      root: "https://r.example/prefix",
      pin: { kind: "subject", subject: "orders-value", version: 3 },
    });
    expect(pin("http://r/subjects/a%2Fb/versions/latest").pin).toEqual({ kind: "subject", subject: "a/b", version: "latest" });
    expect(pin("http://r/subjects/orders-value").pin).toEqual({ kind: "subject", subject: "orders-value", version: "latest" });
    expect(pin("http://r:8081/schemas/ids/42")).toEqual({ ok: true, root: "http://r:8081", pin: { kind: "id", id: 42 } });
  });

  it("refuses what the API refuses", () => {
    const error = (url: string) => {
      const parsed = parseRegistryUrl(url);
      return parsed.ok ? null : parsed.error;
    };
    expect(error("")).toMatch(/Enter/);
    expect(error("registry:8081")).toMatch(/http/);
    expect(error("ftp://r/")).toMatch(/http/);
    expect(error("https://u:p@r/")).toMatch(/credentials/);
    expect(error("https://r/?x=1")).toMatch(/query/);
    expect(error("https://r/subjects/o/versions/three")).toMatch(/version number/);
    expect(error("https://r/subjects/o/extra")).toMatch(/subject URL/);
    expect(error("https://r/schemas/ids/x")).toMatch(/schema id/);
    expect(error("https://r/schemas/ids/1/2")).toMatch(/schema URL/);
  });

  it("says what a URL means for the format", () => {
    expect(registryUrlMeaning("AvroConfluent", "https://r/subjects/o-value/versions/2")).toMatch(/version 2 of subject o-value as the reader schema/);
    expect(registryUrlMeaning("Avro", "https://r/schemas/ids/7")).toMatch(/written with schema id 7/);
    expect(registryUrlMeaning("Avro", "https://r")).toBeNull();
    expect(registryUrlMeaning("Protobuf", "https://r:8081")).toMatch(/registry at https:\/\/r:8081/);
    expect(registryUrlMeaning("AvroConfluent", "nope")).toBeNull();
  });
});

describe("validateFormat", () => {
  it("accepts complete settings for every format", () => {
    expect(validateFormat(everything({ format: "JSONEachRow", registryUrl: "" }))).toEqual({});
    expect(validateFormat(everything({ format: "AvroConfluent", readerSchema: "" }))).toEqual({});
    expect(validateFormat(everything({ format: "AvroConfluent" }))).toEqual({});
    expect(validateFormat(everything({ format: "Avro", registryUrl: "https://r/subjects/o-value/versions/1" }))).toEqual({});
    expect(validateFormat(everything({ format: "Avro", avroSource: "inline", registryUrl: "" }))).toEqual({});
    expect(validateFormat(everything({ format: "Protobuf" }))).toEqual({});
    expect(validateFormat(everything({ format: "Protobuf", protobufSource: "files", registryUrl: "" }))).toEqual({});
  });

  it("checks the registry URL against the format", () => {
    expect(validateFormat(everything({ format: "AvroConfluent", registryUrl: "" }))).toHaveProperty("format.registryUrl");
    expect(validateFormat(everything({ format: "Avro" }))["format.registryUrl"]).toMatch(/no schema id/);
    expect(validateFormat(everything({ format: "Protobuf", registryUrl: "https://r/schemas/ids/4" }))["format.registryUrl"]).toMatch(/root \(https:\/\/r\)/);
  });

  it("needs credentials for PLAIN", () => {
    const errors = validateFormat(everything({ format: "AvroConfluent", registryAuthentication: "PLAIN", registryUsername: "", registryPassword: "" }));
    expect(Object.keys(errors).sort()).toEqual(["format.registryPassword", "format.registryUsername"]);
    expect(validateFormat(everything({ format: "AvroConfluent", registryAuthentication: "PLAIN", registryUsername: "a:b" }))["format.registryUsername"]).toMatch(/:/);
  });

  it("checks Avro schemas", () => {
    expect(validateFormat(everything({ format: "Avro", avroSource: "inline", avroSchema: " " }))).toHaveProperty("format.avroSchema");
    expect(validateFormat(everything({ format: "Avro", avroSource: "inline", avroSchema: "{type: record" }))["format.avroSchema"]).toMatch(/JSON/);
    // A reader schema and a pinned URL both name the reader schema.
    expect(validateFormat(everything({ format: "AvroConfluent", registryUrl: "https://r/subjects/o-value" }))["format.avroSchema"]).toMatch(/keep one/);
    expect(validateFormat(everything({ format: "AvroConfluent", readerSchema: "[1,", registryUrl: "https://r" }))["format.avroSchema"]).toMatch(/JSON/);
  });

  it("checks .proto files and the message type", () => {
    const f = (patch: Partial<FormatState>) => validateFormat(everything({ format: "Protobuf", protobufSource: "files", ...patch }));
    expect(f({ protobufFiles: [] })).toHaveProperty("format.protobufSchema");
    expect(f({ protobufFiles: [{ name: "orders.txt", text: PROTO }] })["format.protobufFile.orders.txt"]).toMatch(/\.proto/);
    expect(f({ protobufFiles: [{ name: "../x.proto", text: PROTO }] })).toHaveProperty(["format.protobufFile.../x.proto"]);
    expect(
      f({
        protobufFiles: [
          { name: "a.proto", text: PROTO },
          { name: "a.proto", text: PROTO },
        ],
      })["format.protobufFile.a.proto"],
    ).toMatch(/twice/);
    expect(f({ protobufFiles: [{ name: "a.proto", text: "  " }] })["format.protobufFile.a.proto"]).toMatch(/empty/);
    expect(f({ messageType: "" })).toHaveProperty("format.messageType");
    expect(f({ messageType: "shop.1Order" })["format.messageType"]).toMatch(/fully qualified/);
    expect(f({ messageType: ".shop.Order" })).toEqual({});
  });

  it("is part of step 2's checks", () => {
    const s = initialWizardState();
    s.name = "p";
    s.kafka.brokers = "k:9092";
    expect(validateStep(2, s)).toEqual({});
    s.format = everything({ format: "AvroConfluent", registryUrl: "" });
    expect(validateStep(2, s)).toHaveProperty("format.registryUrl");
  });

  it("names file-name problems as the API does", () => {
    expect(protoFileNameError("shop/orders.proto")).toBeNull();
    expect(protoFileNameError("/abs.proto")).toMatch(/relative/);
    expect(protoFileNameError("a b.proto")).toMatch(/ASCII/);
  });
});

describe(".proto files", () => {
  it("reads uploaded files by name", async () => {
    const files = [new File([PROTO], "orders.proto"), new File(["syntax = \"proto3\";"], "empty.proto")];
    expect(await readProtoFiles(files)).toEqual([
      { name: "orders.proto", text: PROTO },
      { name: "empty.proto", text: 'syntax = "proto3";' },
    ]);
  });

  it("merges an upload: same name replaced in place, new ones appended, blank placeholders dropped", () => {
    const merged = mergeProtoFiles(
      [
        { name: "a.proto", text: "old a" },
        { name: "", text: "" },
        { name: "b.proto", text: "b" },
      ],
      [
        { name: "c.proto", text: "c" },
        { name: "a.proto", text: "new a" },
      ],
    );
    expect(merged).toEqual([
      { name: "a.proto", text: "new a" },
      { name: "b.proto", text: "b" },
      { name: "c.proto", text: "c" },
    ]);
  });

  it("finds the message types, nested ones qualified, ignoring comments and strings", () => {
    const text = `// message Commented { }
syntax = "proto3";
package shop.v1;
option go_package = "example.com/shop{v1}";
/* message AlsoCommented { } */
message Order {
  message Line { string sku = 1; }
  enum Status { NEW = 0; }
  oneof payment { string card = 2; }
  repeated Line lines = 3;
  map<string, string> labels = 4 [json_name = "labels"];
}
service Orders { rpc Get (Order) returns (Order); }
message Refund { int64 order_id = 1; }`;
    expect(protoMessageTypes([{ name: "a.proto", text }, { name: "b.proto", text: "message Bare {}" }])).toEqual([
      { name: "shop.v1.Order", topLevel: true },
      { name: "shop.v1.Order.Line", topLevel: false },
      { name: "shop.v1.Refund", topLevel: true },
      { name: "Bare", topLevel: true },
    ]);
  });
});

const frame = (bytes: number[]) => ({ value: btoa(String.fromCharCode(...bytes)), valueEncoding: "base64" });

describe("samples", () => {
  it("reads Confluent's framing: a zero byte and a big-endian schema id", () => {
    expect(confluentSchemaId(frame([0, 0, 0, 0, 4, 2, 200, 1]))).toBe(4);
    expect(confluentSchemaId(frame([0, 0, 1, 0, 1, 9]))).toBe(65537);
    expect(confluentSchemaId(frame([1, 0, 0, 0, 4, 2]))).toBeNull();
    expect(confluentSchemaId({ value: "\u0000\u0000\u0000\u0000\u0007abc", valueEncoding: "utf8" })).toBe(7);
    expect(confluentSchemaId({ value: '{"id":1}', valueEncoding: "utf8" })).toBeNull();
    expect(confluentSchemaId(frame([0, 0]))).toBeNull();
  });

  it("hints at the format the sample looks like", () => {
    const json: SampleMessage[] = [{ value: '{"id":1}', valueEncoding: "utf8" }];
    expect(sampleFormatHint(json, "JSONEachRow")).toBeNull();
    expect(sampleFormatHint([frame([0, 0, 0, 0, 3, 2])], "JSONEachRow")).toMatch(/schema id 3.*AvroConfluent/);
    expect(sampleFormatHint([frame([8, 1, 2, 3, 4, 5]), ...json], "JSONEachRow")).toMatch(/1 of 2 messages are binary/);
    expect(sampleFormatHint([{ ...frame([1]), decodeError: "bad magic byte" }], "AvroConfluent")).toMatch(/None of these messages can be read as AvroConfluent/);
    expect(sampleFormatHint([{ ...frame([1]), decoded: {} as never }, { ...frame([1]), decodeError: "x" }], "AvroConfluent")).toBeNull();
  });

  it("summarizes what decoded", () => {
    const messages: SampleMessage[] = [
      { ...frame([0, 0, 0, 0, 4]), decoded: { id: 1 } as never, schemaId: 4 },
      { ...frame([0, 0, 0, 0, 5]), decoded: { id: 2 } as never, schemaId: 5 },
      { ...frame([0, 0, 0, 0, 4]), decoded: { id: 3 } as never, schemaId: 4 },
      { ...frame([0, 0, 0, 0, 9]), decodeError: "schema id 9 not found", schemaId: 9 },
    ];
    expect(decodeSummary(messages)).toEqual({ decoded: 3, failed: 1, schemaIds: [4, 5, 9] });
  });

  it("describes the format for the review", () => {
    expect(describeFormat(everything({ format: "AvroConfluent", readerSchema: "" }))).toBe("AvroConfluent, schemas from https://registry.example.com:8081");
    expect(describeFormat(everything({ format: "AvroConfluent" }))).toMatch(/with a reader schema/);
    expect(describeFormat(everything({ format: "Protobuf", protobufSource: "files" }))).toBe("Protobuf, shop.Order from 1 .proto file");
    expect(describeFormat(initialFormatState())).toBe("JSONEachRow");
  });
});
