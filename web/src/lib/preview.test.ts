import { describe, expect, it } from "vitest";
import type { SampleMessage } from "../api/types";
import { extractField, messageBody, previewRows, sampleFields } from "./preview";

const messages = [
  { value: '{"id":1,"user":{"name":"ann"},"a.b":"literal","tags":["x"]}', valueEncoding: "utf8", partition: 2, offset: 41, key: "k1", timestamp: "2024-05-01T12:00:00Z" },
  { value: "not json", valueEncoding: "utf8", partition: 0, offset: 7 },
  { value: "eyJpZCI6OX0=", valueEncoding: "base64", partition: 1, offset: 3 },
];

describe("preview", () => {
  it("extracts literal dotted keys before nested paths", () => {
    expect(extractField({ "a.b": 1, a: { b: 2 } }, "a.b")).toBe(1);
    expect(extractField({ a: { b: 2 } }, "a.b")).toBe(2);
    expect(extractField({ a: { "b.c": 3 } }, "a.b.c")).toBe(3);
    expect(extractField(5, "a")).toBeUndefined();
  });

  it("computes rows as they would land, virtual columns included", () => {
    const rows = previewRows(
      messages,
      [
        { name: "id", sourceField: "id" },
        { name: "user_name", sourceField: "user.name" },
        { name: "tags", sourceField: "" },
        { name: "offset", sourceField: "_offset" },
        { name: "partition", sourceField: "_partition" },
        { name: "topic", sourceField: "_topic" },
        { name: "raw", sourceField: "_raw_message" },
      ],
      "orders",
    );
    expect(rows[0]).toEqual({ id: "1", user_name: "ann", tags: '["x"]', offset: "41", partition: "2", topic: "orders", raw: messages[0].value });
    expect(rows[1]).toMatchObject({ id: null, offset: "7", raw: "not json" });
    // Binary messages are never parsed, even when the bytes decode to JSON.
    expect(rows[2]).toMatchObject({ id: null, offset: "3", raw: "(binary, base64) eyJpZCI6OX0=" });
  });

  it("lists the sample's fields", () => {
    expect(sampleFields(messages)).toEqual(["a.b", "id", "tags", "user.name"]);
  });

  // Avro and Protobuf: the API sends each message decoded, or why it cannot be.
  const avro: SampleMessage[] = [
    { value: "AAAAAAQCFmN1c3RvbWVyLTE=", valueEncoding: "base64", offset: 5, schemaId: 4, decoded: { id: 1, customer: { name: "customer-1", country: "DE" } } as never },
    { value: '{"id":2}', valueEncoding: "utf8", offset: 6, decodeError: "unknown magic byte 123" },
  ];

  it("fills columns from the decoded message, and never from one that cannot be decoded", () => {
    expect(messageBody(avro[0])).toEqual({ id: 1, customer: { name: "customer-1", country: "DE" } });
    // Valid JSON, but the format cannot read it: it would go to the error table.
    expect(messageBody(avro[1])).toBeUndefined();
    const rows = previewRows(avro, [
      { name: "id", sourceField: "" },
      { name: "customer_name", sourceField: "customer.name" },
      { name: "offset", sourceField: "_offset" },
    ], "orders");
    expect(rows).toEqual([
      { id: "1", customer_name: "customer-1", offset: "5" },
      { id: null, customer_name: null, offset: "6" },
    ]);
    expect(sampleFields(avro)).toEqual(["customer.country", "customer.name", "id"]);
  });
});
