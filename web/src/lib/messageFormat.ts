// How a source's messages are encoded (JSONEachRow, Avro, AvroConfluent,
// Protobuf) and where their schemas come from: a schema registry, a pasted
// Avro schema, or .proto files. The wizard's state for it, the fields the
// API takes (the same on Kafka and Kinesis sources), and the checks before
// the API sees them. Pure functions, unit-tested in messageFormat.test.ts.
import type { Format, RegistryAuthentication, SampleMessage, SchemaRegistry } from "../api/types";

export interface ProtoFile {
  /** The name imports use, e.g. `shop/orders.proto`. */
  name: string;
  text: string;
}

export interface FormatState {
  format: Format;
  registryUrl: string;
  registryAuthentication: RegistryAuthentication;
  registryUsername: string;
  registryPassword: string;
  registryCaCertificate: string;
  /** Avro: the writer schema is pinned by the registry URL, or pasted. */
  avroSource: "registry" | "inline";
  /** Avro: the writer schema (API `avroSchema`). */
  avroSchema: string;
  /**
   * AvroConfluent: an optional reader schema (also API `avroSchema`). Kept
   * apart so that a writer schema pasted for Avro does not silently become
   * a reader schema when the format changes.
   */
  readerSchema: string;
  protobufSource: "registry" | "files";
  protobufFiles: ProtoFile[];
  messageType: string;
}

export function initialFormatState(): FormatState {
  return {
    format: "JSONEachRow",
    registryUrl: "",
    registryAuthentication: "NONE",
    registryUsername: "",
    registryPassword: "",
    registryCaCertificate: "",
    avroSource: "registry",
    avroSchema: "",
    readerSchema: "",
    protobufSource: "registry",
    protobufFiles: [],
    messageType: "",
  };
}

/** The format fields of `source.kafka` / `source.kinesis`. */
export interface FormatFieldsInput {
  format?: Format;
  schemaRegistry?: SchemaRegistry;
  avroSchema?: string;
  protobufSchema?: Record<string, string>;
  messageType?: string;
}

export function usesRegistry(f: FormatState): boolean {
  switch (f.format) {
    case "AvroConfluent":
      return true;
    case "Avro":
      return f.avroSource === "registry";
    case "Protobuf":
      return f.protobufSource === "registry";
    default:
      return false;
  }
}

export function usesProtoFiles(f: FormatState): boolean {
  return f.format === "Protobuf" && f.protobufSource === "files";
}

/**
 * The fields for the chosen format and schema source only: the API refuses
 * a field that does not apply (a registry with JSONEachRow, a message type
 * with a registry, ...), so what the user typed for another choice stays
 * in the wizard but is not sent.
 */
export function formatFields(f: FormatState): FormatFieldsInput {
  // The default; the API refuses every other format field with it.
  if (f.format === "JSONEachRow") return {};
  const out: FormatFieldsInput = { format: f.format };
  if (usesRegistry(f)) {
    const registry: SchemaRegistry = { url: f.registryUrl.trim(), authentication: f.registryAuthentication };
    if (f.registryAuthentication === "PLAIN") registry.credentials = { username: f.registryUsername.trim(), password: f.registryPassword };
    if (f.registryCaCertificate.trim()) registry.caCertificate = f.registryCaCertificate.trim();
    out.schemaRegistry = registry;
  }
  if (f.format === "Avro" && f.avroSource === "inline") out.avroSchema = f.avroSchema.trim();
  if (f.format === "AvroConfluent" && f.readerSchema.trim()) out.avroSchema = f.readerSchema.trim();
  if (usesProtoFiles(f)) {
    out.protobufSchema = protobufSchemaMap(f.protobufFiles);
    out.messageType = f.messageType.trim();
  }
  return out;
}

/** `.proto` files as the API takes them: text by file name. */
export function protobufSchemaMap(files: ProtoFile[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const file of files) map[file.name.trim()] = file.text;
  return map;
}

/** Anything with a name and text, such as a browser `File`. */
export interface NamedText {
  name: string;
  text(): Promise<string>;
}

/** Reads uploaded files (`<input type=file multiple>`) into ProtoFiles by file name. */
export async function readProtoFiles(files: ArrayLike<NamedText> | Iterable<NamedText>): Promise<ProtoFile[]> {
  return Promise.all(Array.from(files).map(async (file) => ({ name: file.name, text: await file.text() })));
}

/**
 * Adds files to the list: one with a name already listed replaces it where
 * it is (an upload again after an edit elsewhere), the others are appended;
 * blank placeholders go.
 */
export function mergeProtoFiles(existing: ProtoFile[], added: ProtoFile[]): ProtoFile[] {
  const byName = new Map(added.map((f) => [f.name.trim(), f]));
  const merged = existing
    .filter((f) => f.name.trim() || f.text.trim())
    .map((f) => {
      const replacement = byName.get(f.name.trim());
      if (replacement) byName.delete(f.name.trim());
      return replacement ?? f;
    });
  return [...merged, ...byName.values()];
}

export interface ProtoMessage {
  /** Fully qualified: `shop.Order`, `shop.Order.Line`. */
  name: string;
  topLevel: boolean;
}

const PROTO_TOKEN = /"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\/\/[^\n]*|\/\*[\s\S]*?\*\/|[A-Za-z_][A-Za-z0-9_.]*|[{};]/g;

/**
 * The message types the files define, for the message type picker. A
 * tokenizer, not a parser: it follows `package`, `message Name {` and the
 * braces of everything else, which is all the names need.
 */
export function protoMessageTypes(files: ProtoFile[]): ProtoMessage[] {
  const found: ProtoMessage[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    const tokens = (file.text.match(PROTO_TOKEN) ?? []).filter((t) => !/^(["']|\/\/|\/\*)/.test(t));
    let pkg = "";
    // One entry per open brace: the message it opens, or null for anything else.
    const scopes: (string | null)[] = [];
    let pending: string | null = null;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (t === "package" && scopes.length === 0 && tokens[i + 1]) {
        pkg = tokens[i + 1];
        i++;
      } else if (t === "message" && tokens[i + 1] && tokens[i + 2] === "{") {
        pending = tokens[i + 1];
        i++;
      } else if (t === "{") {
        if (pending !== null) {
          const name = [pkg, ...scopes, pending].filter(Boolean).join(".");
          if (!seen.has(name)) {
            seen.add(name);
            found.push({ name, topLevel: scopes.length === 0 });
          }
        }
        scopes.push(pending);
        pending = null;
      } else if (t === "}") {
        scopes.pop();
      }
    }
  }
  return found;
}

/** What a registry URL pins besides the registry itself (as the API reads it). */
export type RegistryPin =
  | { kind: "root" }
  | { kind: "subject"; subject: string; version: number | "latest" }
  | { kind: "id"; id: number };

export type ParsedRegistryUrl = { ok: true; root: string; pin: RegistryPin } | { ok: false; error: string };

export function parseRegistryUrl(raw: string): ParsedRegistryUrl {
  const text = raw.trim();
  if (!text) return { ok: false, error: "Enter the schema registry's URL." };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, error: "Not a URL: give one such as https://registry.example.com:8081." };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { ok: false, error: "Must use http:// or https://." };
  if (!url.hostname) return { ok: false, error: "Must name a host." };
  if (url.username || url.password) return { ok: false, error: "Must not embed credentials: choose PLAIN authentication below." };
  if (url.search || url.hash) return { ok: false, error: "Must not have a query string or fragment." };
  const segments = url.pathname.replace(/\/+$/, "").split("/");
  const rootOf = (at: number) => `${url.origin}${segments.slice(0, at).join("/")}`;
  const subjectAt = segments.lastIndexOf("subjects");
  if (subjectAt >= 0) {
    const rest = segments.slice(subjectAt + 1);
    const shape = "A subject URL is …/subjects/NAME, optionally /versions/N or /versions/latest.";
    if (rest.length !== 1 && !(rest.length === 3 && rest[1] === "versions")) return { ok: false, error: shape };
    let subject: string;
    try {
      subject = decodeURIComponent(rest[0]);
    } catch {
      return { ok: false, error: `\`${rest[0]}\` is not a valid subject name.` };
    }
    if (!subject) return { ok: false, error: "Names an empty subject." };
    let version: number | "latest" = "latest";
    if (rest.length === 3 && rest[2] !== "latest") {
      if (!/^\d{1,9}$/.test(rest[2])) return { ok: false, error: `\`${rest[2]}\` is not a version number (or latest).` };
      version = Number(rest[2]);
    }
    return { ok: true, root: rootOf(subjectAt), pin: { kind: "subject", subject, version } };
  }
  for (let at = segments.length - 2; at >= 0; at--) {
    if (segments[at] === "schemas" && segments[at + 1] === "ids") {
      const rest = segments.slice(at + 2);
      if (rest.length !== 1) return { ok: false, error: "A schema URL is …/schemas/ids/N." };
      if (!/^\d{1,9}$/.test(rest[0])) return { ok: false, error: `\`${rest[0]}\` is not a schema id.` };
      return { ok: true, root: rootOf(at), pin: { kind: "id", id: Number(rest[0]) } };
    }
  }
  return { ok: true, root: `${url.origin}${segments.join("/")}`, pin: { kind: "root" } };
}

function pinText(pin: Exclude<RegistryPin, { kind: "root" }>): string {
  if (pin.kind === "id") return `schema id ${pin.id}`;
  return pin.version === "latest" ? `the latest version of subject ${pin.subject} (when the pipe starts)` : `version ${pin.version} of subject ${pin.subject}`;
}

/** The URL forms the chosen format takes, for the URL field's hint. */
export function registryUrlForms(format: Format): string {
  switch (format) {
    case "Avro":
      return "Avro messages carry no schema id, so the URL pins the writer schema: …/subjects/NAME (its latest version), …/subjects/NAME/versions/N, or …/schemas/ids/N.";
    case "Protobuf":
      return "The registry's root, e.g. https://registry:8081: each message names its schema.";
    default:
      return "Usually the registry's root, e.g. https://registry:8081: each message names its schema id. A subject (…/subjects/NAME), a subject version (…/subjects/NAME/versions/N) or a schema (…/schemas/ids/N) pins the reader schema messages are resolved against.";
  }
}

/** What this URL means for this format, or null when it does not parse. */
export function registryUrlMeaning(format: Format, raw: string): string | null {
  const parsed = parseRegistryUrl(raw);
  if (!parsed.ok) return null;
  const { pin } = parsed;
  if (pin.kind === "root") {
    return format === "Avro" ? null : `The registry at ${parsed.root}: each message's schema is looked up by the id it carries.`;
  }
  switch (format) {
    case "Avro":
      return `Every message was written with ${pinText(pin)}.`;
    case "AvroConfluent":
      return `Messages are resolved against ${pinText(pin)} as the reader schema.`;
    default:
      return null;
  }
}

const PROTO_FILE_NAME = /^[A-Za-z0-9._/-]+$/;
const MESSAGE_PART = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The API's rule for a `.proto` file name, or null when it is fine. */
export function protoFileNameError(name: string): string | null {
  const n = name.trim();
  if (!n) return "Name the file as imports name it, e.g. shop/orders.proto.";
  if (n.length > 256) return "At most 256 characters.";
  if (!n.endsWith(".proto")) return "Must end in .proto.";
  if (n.startsWith("/") || n.split("/").some((part) => part === "" || part === "..")) return "A relative path without empty parts or `..`.";
  if (!PROTO_FILE_NAME.test(n)) return "ASCII letters, digits and `. _ - /` only.";
  return null;
}

/** Field key of one .proto file's errors (the API's pointer names the file). */
export function protoFileKey(name: string): string {
  return `format.protobufFile.${name.trim()}`;
}

function jsonError(text: string): string | null {
  try {
    JSON.parse(text);
    return null;
  } catch (e) {
    return `Not valid JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/** Checks before leaving the connection step (the API checks everything again). */
export function validateFormat(f: FormatState): Record<string, string> {
  const errors: Record<string, string> = {};
  if (f.format === "JSONEachRow") return errors;
  if (usesRegistry(f)) {
    const parsed = parseRegistryUrl(f.registryUrl);
    if (!parsed.ok) errors["format.registryUrl"] = parsed.error;
    else if (f.format === "Avro" && parsed.pin.kind === "root")
      errors["format.registryUrl"] = "Avro messages carry no schema id: pin the writer schema with …/subjects/NAME, …/subjects/NAME/versions/N or …/schemas/ids/N, or paste the schema instead.";
    else if (f.format === "Protobuf" && parsed.pin.kind !== "root")
      errors["format.registryUrl"] = `Protobuf takes the registry's root (${parsed.root}): each message names its schema and type.`;
    if (f.registryAuthentication === "PLAIN") {
      const user = f.registryUsername.trim();
      if (!user) errors["format.registryUsername"] = "Required for PLAIN authentication.";
      else if (user.includes(":")) errors["format.registryUsername"] = "Must not contain `:` (HTTP basic authentication).";
      if (!f.registryPassword) errors["format.registryPassword"] = "Required for PLAIN authentication.";
    }
  }
  if (f.format === "Avro" && f.avroSource === "inline") {
    if (!f.avroSchema.trim()) errors["format.avroSchema"] = "Paste the Avro schema (JSON) the messages were written with.";
    else {
      const bad = jsonError(f.avroSchema);
      if (bad) errors["format.avroSchema"] = bad;
    }
  }
  if (f.format === "AvroConfluent" && f.readerSchema.trim()) {
    const bad = jsonError(f.readerSchema);
    const parsed = parseRegistryUrl(f.registryUrl);
    if (bad) errors["format.avroSchema"] = bad;
    else if (parsed.ok && parsed.pin.kind !== "root") errors["format.avroSchema"] = "The registry URL already pins the reader schema: keep one of the two.";
  }
  if (usesProtoFiles(f)) {
    if (f.protobufFiles.length === 0) errors["format.protobufSchema"] = "Upload or paste at least one .proto file.";
    else if (f.protobufFiles.length > 64) errors["format.protobufSchema"] = "At most 64 files.";
    const seen = new Set<string>();
    for (const file of f.protobufFiles) {
      const key = protoFileKey(file.name);
      const nameError = protoFileNameError(file.name);
      if (nameError) errors[key] = nameError;
      else if (seen.has(file.name.trim())) errors[key] = `${file.name.trim()} is listed twice.`;
      else if (!file.text.trim()) errors[key] = "The file is empty.";
      seen.add(file.name.trim());
    }
    const type = f.messageType.trim();
    if (!type) errors["format.messageType"] = "The fully qualified message type, e.g. shop.Order.";
    else if (type.length > 512 || !type.replace(/^\.+/, "").split(".").every((part) => MESSAGE_PART.test(part)))
      errors["format.messageType"] = "A fully qualified message type such as shop.Order.";
  }
  return errors;
}

/** One line for the review: the format and where its schema comes from. */
export function describeFormat(f: FormatState): string {
  switch (f.format) {
    case "JSONEachRow":
      return "JSONEachRow";
    case "AvroConfluent":
      return `AvroConfluent, schemas from ${f.registryUrl.trim()}${f.readerSchema.trim() ? " (with a reader schema)" : ""}`;
    case "Avro":
      return f.avroSource === "inline" ? "Avro, with the pasted writer schema" : `Avro, writer schema ${f.registryUrl.trim()}`;
    case "Protobuf":
      return f.protobufSource === "files"
        ? `Protobuf, ${f.messageType.trim()} from ${f.protobufFiles.length} .proto file${f.protobufFiles.length === 1 ? "" : "s"}`
        : `Protobuf, schemas from ${f.registryUrl.trim()}`;
  }
}

/** The first bytes of a sampled message (binary ones come base64-encoded). */
function leadingBytes(message: Pick<SampleMessage, "value" | "valueEncoding">, n: number): number[] {
  if (message.valueEncoding === "base64") {
    try {
      // Whole 4-character groups: enough for n bytes.
      const bin = atob(message.value.slice(0, Math.ceil(n / 3) * 4));
      return Array.from(bin.slice(0, n), (c) => c.charCodeAt(0));
    } catch {
      return [];
    }
  }
  const codes = Array.from(message.value.slice(0, n), (c) => c.charCodeAt(0));
  // Past ASCII, text no longer says what the bytes were.
  const ascii = codes.findIndex((c) => c > 0x7f);
  return ascii < 0 ? codes : codes.slice(0, ascii);
}

/**
 * The schema id of a message in Confluent's wire format (a zero byte, then
 * the id as a big-endian 32-bit number), or null when it is not framed so.
 */
export function confluentSchemaId(message: Pick<SampleMessage, "value" | "valueEncoding">): number | null {
  const b = leadingBytes(message, 5);
  if (b.length < 5 || b[0] !== 0) return null;
  const id = b[1] * 2 ** 24 + (b[2] << 16) + (b[3] << 8) + b[4];
  return id > 0 ? id : null;
}

/**
 * A hint when the sample does not look like the chosen format: JSONEachRow
 * with binary messages, or a format that reads none of them.
 */
export function sampleFormatHint(messages: SampleMessage[], format: Format): string | null {
  if (messages.length === 0) return null;
  if (format === "JSONEachRow") {
    const ids = [...new Set(messages.map(confluentSchemaId).filter((id): id is number => id !== null))];
    if (ids.length > 0)
      return `These messages look like Confluent's schema registry framing (schema id ${ids.slice(0, 3).join(", ")}): choose AvroConfluent, or Protobuf with a schema registry, as the message format.`;
    const binary = messages.filter((m) => m.valueEncoding === "base64").length;
    if (binary > 0)
      return `${binary === messages.length ? "These messages are" : `${binary} of ${messages.length} messages are`} binary, not JSON: if they are Avro or Protobuf, choose that message format.`;
    return null;
  }
  if (messages.every((m) => m.decodeError)) return `None of these messages can be read as ${format}: check the message format and its schema.`;
  return null;
}

export interface DecodeSummary {
  decoded: number;
  failed: number;
  /** The registry ids the messages name, in order of first appearance. */
  schemaIds: number[];
}

export function decodeSummary(messages: SampleMessage[]): DecodeSummary {
  const ids: number[] = [];
  let decoded = 0;
  let failed = 0;
  for (const m of messages) {
    if (m.decodeError) failed++;
    else if (m.decoded !== undefined && m.decoded !== null) decoded++;
    if (m.schemaId !== undefined && m.schemaId !== null && !ids.includes(m.schemaId)) ids.push(m.schemaId);
  }
  return { decoded, failed, schemaIds: ids };
}
