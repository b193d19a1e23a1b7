// Virtual columns: fields every record has besides its JSON body, usable as
// source fields (names as in crates/formats/src/row.rs, `VirtualColumn`).

export interface VirtualColumn {
  name: string;
  type: string;
  description: string;
}

export const KAFKA_VIRTUAL_COLUMNS: VirtualColumn[] = [
  { name: "_topic", type: "String", description: "Topic" },
  { name: "_partition", type: "Int64", description: "Partition" },
  { name: "_offset", type: "Int64", description: "Offset in the partition" },
  { name: "_key", type: "String", description: "Message key" },
  { name: "_timestamp", type: "DateTime64(3)", description: "Message timestamp" },
  { name: "_header_keys", type: "Array(String)", description: "Header names" },
  { name: "_header_values", type: "Array(String)", description: "Header values" },
  { name: "_raw_message", type: "String", description: "The whole message text" },
];

export const KINESIS_VIRTUAL_COLUMNS: VirtualColumn[] = [
  { name: "_stream", type: "String", description: "Stream name" },
  { name: "_sequence_number", type: "String", description: "Sequence number" },
  { name: "_key", type: "String", description: "Partition key" },
  { name: "_timestamp", type: "DateTime64(3)", description: "Approximate arrival time" },
  { name: "_raw_message", type: "String", description: "The whole record text" },
];

export function virtualColumns(kind: "kafka" | "kinesis"): VirtualColumn[] {
  return kind === "kafka" ? KAFKA_VIRTUAL_COLUMNS : KINESIS_VIRTUAL_COLUMNS;
}

export function isVirtualField(name: string): boolean {
  return [...KAFKA_VIRTUAL_COLUMNS, ...KINESIS_VIRTUAL_COLUMNS].some((v) => v.name === name);
}

/** A column name for a virtual field: `_offset` → `offset`, `_raw_message` → `raw_message`. */
export function defaultColumnName(field: string): string {
  return field.replace(/^_+/, "") || field;
}
