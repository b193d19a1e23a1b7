// What sample messages look like once mapped to columns: the rows as they
// would land, computed in the browser from the sample.
import type { SampleMessage } from "../api/types";

/** A dotted source field: first as one literal key, then as a nested path (as the worker does). */
export function extractField(value: unknown, path: string): unknown {
  if (value === null || typeof value !== "object") return undefined;
  const obj = value as Record<string, unknown>;
  if (path in obj) return obj[path];
  const dot = path.indexOf(".");
  if (dot < 0) return undefined;
  // Try every split so keys containing dots still resolve.
  for (let i = dot; i >= 0; i = path.indexOf(".", i + 1)) {
    const head = path.slice(0, i);
    if (head in obj) {
      const found = extractField(obj[head], path.slice(i + 1));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

export function virtualValue(field: string, message: SampleMessage, sourceName: string): unknown {
  switch (field) {
    case "_topic":
    case "_stream":
      return sourceName;
    case "_partition":
      return message.partition ?? undefined;
    case "_offset":
      return message.offset ?? undefined;
    case "_key":
      return message.key ?? undefined;
    case "_timestamp":
      return message.timestamp ?? undefined;
    case "_sequence_number":
      return message.sequenceNumber ?? undefined;
    case "_raw_message":
      return isBinary(message) ? `(binary, base64) ${message.value}` : message.value;
    case "_header_keys":
    case "_header_values":
      return [];
    default:
      return undefined;
  }
}

/** Binary messages come base64-encoded; they are not JSON. */
export function isBinary(message: Pick<SampleMessage, "valueEncoding">): boolean {
  return message.valueEncoding === "base64";
}

export function parseMessage(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * What a message's columns are filled from: the decoded message for Avro
 * and Protobuf, else its JSON text. Undefined for a message the pipe
 * cannot read (it would go to the error table).
 */
export function messageBody(message: Pick<SampleMessage, "value" | "valueEncoding" | "decoded" | "decodeError">): unknown {
  if (message.decodeError) return undefined;
  if (message.decoded !== undefined && message.decoded !== null) return message.decoded;
  return isBinary(message) ? undefined : parseMessage(message.value);
}

/** One preview row per message: column name → display text (`null` when missing). */
export function previewRows(
  messages: SampleMessage[],
  columns: { name: string; sourceField: string }[],
  sourceName: string,
): Record<string, string | null>[] {
  return messages.map((m) => {
    const parsed = messageBody(m);
    const row: Record<string, string | null> = {};
    for (const c of columns) {
      const field = c.sourceField || c.name;
      const v = field.startsWith("_") && !(parsed && typeof parsed === "object" && field in (parsed as object))
        ? virtualValue(field, m, sourceName)
        : extractField(parsed, field);
      row[c.name] = displayValue(v);
    }
    return row;
  });
}

export function displayValue(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** Top-level and nested field paths seen in the sample, for mapping pickers. */
export function sampleFields(messages: SampleMessage[]): string[] {
  const found = new Set<string>();
  const walk = (value: unknown, prefix: string, depth: number) => {
    if (value === null || typeof value !== "object" || Array.isArray(value) || depth > 4) return;
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (v !== null && typeof v === "object" && !Array.isArray(v)) walk(v, path, depth + 1);
      else found.add(path);
    }
  };
  for (const m of messages) walk(messageBody(m), "", 0);
  return [...found].sort();
}
