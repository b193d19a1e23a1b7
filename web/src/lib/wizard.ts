// The new-pipe wizard's state, its per-step checks, and the PipeSpec it
// becomes. Pure functions, unit-tested in wizard.test.ts.
import type {
  IteratorType,
  KafkaAuthentication,
  KafkaSourceInput,
  KinesisAuthentication,
  KinesisSourceInput,
  OffsetStrategy,
  Permissions,
  PipeSpecInput,
  ReplicaSize,
  SchemaEvolution,
  SourceInput,
  TableColumn,
  TableEngine,
} from "../api/types";
import { formatFields, initialFormatState, validateFormat, type FormatState } from "./messageFormat";
import type { PresetId } from "./presets";

export interface WizardColumn {
  /** Stable across renames: sorting key and errors refer to it. */
  id: string;
  name: string;
  type: string;
  /** Source field: a dotted JSON path or a virtual column such as `_offset`. */
  sourceField: string;
}

export interface WizardState {
  preset: PresetId;
  kind: "kafka" | "kinesis";
  name: string;
  description: string;
  kafka: {
    brokers: string;
    authentication: KafkaAuthentication;
    username: string;
    password: string;
    certificate: string;
    privateKey: string;
    caCertificate: string;
    topic: string;
    offsetStrategy: OffsetStrategy;
    /** `datetime-local` input value, local time. */
    offsetTimestamp: string;
    readCommitted: boolean;
  };
  kinesis: {
    streamName: string;
    region: string;
    endpoint: string;
    authentication: KinesisAuthentication;
    accessKeyId: string;
    secretKey: string;
    iamRole: string;
    externalId: string;
    iteratorType: IteratorType;
    timestamp: string;
    useEnhancedFanOut: boolean;
  };
  /** How messages are encoded: the same fields on Kafka and Kinesis sources. */
  format: FormatState;
  destination: {
    destinationId: string;
    /** Empty: the destination's own database. */
    database: string;
    mode: "new" | "existing";
    table: string;
    engine: TableEngine;
    /** Column ids, in key order. */
    sortingKey: string[];
    partitionBy: string;
    columns: WizardColumn[];
    existingTable: string;
    existingColumns: TableColumn[];
    /** Table column name → source field ("" = not filled, the column's default). */
    mappings: Record<string, string>;
  };
  permissions: Permissions;
  /**
   * Add a Nullable column per new field of a newer writer schema. Kept as
   * the user ticked it; sent only where it applies (schemaEvolutionSent).
   */
  addColumns: boolean;
  scaling: {
    replicaSize: ReplicaSize;
    replicas: number;
    autoscaling: boolean;
    minReplicas: number;
    maxReplicas: number;
  };
  startNow: boolean;
}

export const STEPS = [
  { n: 1, title: "Source" },
  { n: 2, title: "Connection" },
  { n: 3, title: "Data" },
  { n: 4, title: "Destination" },
  { n: 5, title: "Permissions" },
  { n: 6, title: "Scaling" },
  { n: 7, title: "Review" },
] as const;

export function initialWizardState(): WizardState {
  return {
    preset: "kafka",
    kind: "kafka",
    name: "",
    description: "",
    kafka: {
      brokers: "",
      authentication: "NONE",
      username: "",
      password: "",
      certificate: "",
      privateKey: "",
      caCertificate: "",
      topic: "",
      offsetStrategy: "from_beginning",
      offsetTimestamp: "",
      readCommitted: false,
    },
    kinesis: {
      streamName: "",
      region: "us-east-1",
      endpoint: "",
      authentication: "IAM_USER",
      accessKeyId: "",
      secretKey: "",
      iamRole: "",
      externalId: "",
      iteratorType: "TRIM_HORIZON",
      timestamp: "",
      useEnhancedFanOut: false,
    },
    format: initialFormatState(),
    destination: {
      destinationId: "",
      database: "",
      mode: "new",
      table: "",
      engine: "MergeTree",
      sortingKey: [],
      partitionBy: "",
      columns: [],
      existingTable: "",
      existingColumns: [],
      mappings: {},
    },
    permissions: "full",
    addColumns: false,
    scaling: { replicaSize: "XS", replicas: 1, autoscaling: false, minReplicas: 1, maxReplicas: 3 },
    startNow: true,
  };
}

let columnSeq = 0;
export function newColumnId(): string {
  columnSeq += 1;
  return `c${Date.now().toString(36)}${columnSeq}`;
}

const SASL: KafkaAuthentication[] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];
export const isSasl = (a: KafkaAuthentication) => SASL.includes(a);

/** A `datetime-local` value (local time) as RFC 3339 UTC, or undefined. */
export function localToIso(value: string): string | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function normalizeBrokers(brokers: string): string {
  return brokers
    .split(/[,\s]+/)
    .map((b) => b.trim())
    .filter(Boolean)
    .join(",");
}

/** The PipeSpec's `source`, as sent to the source endpoints and in the pipe. */
export function buildSource(state: WizardState): SourceInput {
  if (state.kind === "kafka") {
    const k = state.kafka;
    const kafka: KafkaSourceInput = {
      brokers: normalizeBrokers(k.brokers),
      topics: k.topic ? [k.topic] : [],
      authentication: k.authentication,
      offset:
        k.offsetStrategy === "from_timestamp"
          ? { strategy: k.offsetStrategy, timestamp: localToIso(k.offsetTimestamp) ?? null }
          : { strategy: k.offsetStrategy },
      readCommitted: k.readCommitted,
    };
    if (isSasl(k.authentication)) {
      kafka.credentials = { username: k.username, password: k.password };
    } else if (k.authentication === "MUTUAL_TLS") {
      kafka.credentials = { certificate: k.certificate, privateKey: k.privateKey };
    }
    if (k.caCertificate.trim()) kafka.caCertificate = k.caCertificate.trim();
    return { kafka: { ...kafka, ...formatFields(state.format) } };
  }
  const k = state.kinesis;
  const kinesis: KinesisSourceInput = {
    streamName: k.streamName,
    region: k.region.trim(),
    authentication: k.authentication,
    iteratorType: k.iteratorType,
    useEnhancedFanOut: k.useEnhancedFanOut,
  };
  if (k.endpoint.trim()) kinesis.endpoint = k.endpoint.trim();
  if (k.iteratorType === "AT_TIMESTAMP") kinesis.timestamp = localToIso(k.timestamp) ?? null;
  if (k.authentication === "IAM_USER" || k.accessKeyId.trim()) {
    kinesis.accessKey = { accessKeyId: k.accessKeyId.trim(), secretKey: k.secretKey };
  }
  if (k.authentication === "IAM_ROLE") {
    kinesis.iamRole = k.iamRole.trim();
    if (k.externalId.trim()) kinesis.externalId = k.externalId.trim();
  }
  return { kinesis: { ...kinesis, ...formatFields(state.format) } };
}

/**
 * The source without its format: enough to list topics and streams, which
 * do not depend on it, and the API then does not refuse the listing for
 * a format setting still being typed.
 */
export function connectionSource(state: WizardState): SourceInput {
  return buildSource({ ...state, format: { ...state.format, format: "JSONEachRow" } });
}

/** The topic or stream the wizard reads. */
export function sourceName(state: WizardState): string {
  return state.kind === "kafka" ? state.kafka.topic : state.kinesis.streamName;
}

/**
 * Whether the wizard offers schema evolution: the format's messages name a
 * writer schema in a registry (AvroConfluent, Protobuf through a registry;
 * not Avro, whose one writer schema is pinned) and Sluice creates the table.
 */
export function schemaEvolutionOffered(state: WizardState): boolean {
  const f = state.format;
  const registryFormat = f.format === "AvroConfluent" || (f.format === "Protobuf" && f.protobufSource === "registry");
  return registryFormat && state.destination.mode === "new";
}

/**
 * The `schemaEvolution` the spec carries, or undefined (the server's
 * default, `none`): `add_columns` only when it is ticked, offered, and the
 * pipe may alter its table (full permissions), as the API requires.
 */
export function schemaEvolutionSent(state: WizardState): SchemaEvolution | undefined {
  return state.addColumns && schemaEvolutionOffered(state) && state.permissions === "full" ? "add_columns" : undefined;
}

/** One line for the review. */
export function describeSchemaEvolution(state: WizardState): string | null {
  if (!schemaEvolutionOffered(state)) return null;
  if (schemaEvolutionSent(state)) return "Add columns for new fields (Nullable)";
  if (state.addColumns) return "None: adding columns needs full access";
  return "None: new fields are not loaded";
}

/** Field keys of the rows that own each `destination/columns` and `fieldMappings` entry. */
export interface SpecOwners {
  columns: string[];
  fieldMappings: string[];
}

export interface BuiltSpec {
  spec: PipeSpecInput;
  owners: SpecOwners;
}

/**
 * The PipeSpec for the wizard's state. A managed table sends its columns
 * and table definition; an existing table sends the mapped columns. Every
 * column filled from a differently named source field gets a fieldMapping.
 */
export function buildPipeSpec(state: WizardState): BuiltSpec {
  const d = state.destination;
  const owners: SpecOwners = { columns: [], fieldMappings: [] };
  const columns: { name: string; type: string }[] = [];
  const fieldMappings: { sourceField: string; destinationField: string }[] = [];

  if (d.mode === "new") {
    for (const c of d.columns) {
      const name = c.name.trim();
      columns.push({ name, type: c.type.trim() });
      owners.columns.push(`column.${c.id}`);
      const source = c.sourceField.trim();
      if (source && source !== name) {
        fieldMappings.push({ sourceField: source, destinationField: name });
        owners.fieldMappings.push(`column.${c.id}`);
      }
    }
  } else {
    for (const c of d.existingColumns) {
      const source = (d.mappings[c.name] ?? "").trim();
      if (!source) continue;
      columns.push({ name: c.name, type: c.type });
      owners.columns.push(`mapping.${c.name}`);
      if (source !== c.name) {
        fieldMappings.push({ sourceField: source, destinationField: c.name });
        owners.fieldMappings.push(`mapping.${c.name}`);
      }
    }
  }

  const byId = new Map(d.columns.map((c) => [c.id, c.name.trim()]));
  const destination: PipeSpecInput["destination"] = {
    destinationId: d.destinationId,
    table: (d.mode === "new" ? d.table : d.existingTable).trim(),
    managedTable: d.mode === "new",
    columns,
    permissions: state.permissions,
  };
  if (d.database) destination.database = d.database;
  if (d.mode === "new") {
    destination.tableDefinition = {
      engine: d.engine,
      sortingKey: d.sortingKey.map((id) => byId.get(id)).filter((n): n is string => !!n),
    };
    if (d.partitionBy.trim()) destination.tableDefinition.partitionBy = d.partitionBy.trim();
  }

  const s = state.scaling;
  const spec: PipeSpecInput = {
    name: state.name.trim(),
    description: state.description.trim(),
    source: buildSource(state),
    destination,
    fieldMappings,
    scaling: s.autoscaling
      ? {
          replicas: Math.min(Math.max(s.replicas, s.minReplicas), s.maxReplicas),
          replicaSize: s.replicaSize,
          autoscaling: { minReplicas: s.minReplicas, maxReplicas: s.maxReplicas },
        }
      : { replicas: s.replicas, replicaSize: s.replicaSize },
  };
  const schemaEvolution = schemaEvolutionSent(state);
  if (schemaEvolution) spec.schemaEvolution = schemaEvolution;
  return { spec, owners };
}

/** A ClickHouse identifier from a topic or stream name: `web-clicks.v2` → `web_clicks_v2`. */
export function tableNameFor(source: string): string {
  let name = source.replace(/[^A-Za-z0-9_]/g, "_").replace(/_+/g, "_").replace(/^_+|_+$/g, "");
  if (!name) return "events";
  if (/^[0-9]/.test(name)) name = `t_${name}`;
  return name.slice(0, 200);
}

/** A default sorting key: the first column that is neither Nullable nor an Array. */
export function defaultSortingKey(columns: WizardColumn[]): string[] {
  const preferred = columns.find((c) => /^(id|.*_id)$/i.test(c.name) && plainKeyType(c.type));
  const first = preferred ?? columns.find((c) => plainKeyType(c.type));
  return first ? [first.id] : [];
}

export function plainKeyType(type: string): boolean {
  return !/^(Nullable|Array|Map|Tuple|JSON|Object)\b/.test(type.trim());
}

export type FieldErrors = Record<string, string>;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const COLUMN_IDENT = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_0-9]+)*$/;
const DISPLAY_NAME = /^[\p{L}\p{N} _.-]+$/u;

/** Client-side checks before leaving a step (the API checks everything again). */
export function validateStep(step: number, state: WizardState): FieldErrors {
  const errors: FieldErrors = {};
  if (step === 2) {
    const name = state.name;
    if (!name.trim()) errors.name = "Give the pipe a name.";
    else if (name.trim() !== name) errors.name = "must not start or end with whitespace";
    else if (!DISPLAY_NAME.test(name)) errors.name = "may contain only letters, digits, spaces and _ . -";
    else if (name.length > 128) errors.name = "must be at most 128 characters";
    if (state.kind === "kafka") {
      const k = state.kafka;
      if (!normalizeBrokers(k.brokers)) errors["kafka.brokers"] = "Enter at least one host:port.";
      else
        for (const b of normalizeBrokers(k.brokers).split(",")) {
          if (!/^.+:\d{1,5}$/.test(b)) {
            errors["kafka.brokers"] = `\`${b}\` must be host:port`;
            break;
          }
        }
      if (isSasl(k.authentication)) {
        if (!k.username) errors["kafka.username"] = "Required for SASL authentication.";
        if (!k.password) errors["kafka.password"] = "Required for SASL authentication.";
      }
      if (k.authentication === "MUTUAL_TLS") {
        if (!k.certificate.trim()) errors["kafka.certificate"] = "Required for mutual TLS.";
        if (!k.privateKey.trim()) errors["kafka.privateKey"] = "Required for mutual TLS.";
      }
    } else {
      const k = state.kinesis;
      if (!/^[a-z0-9-]+-[a-z0-9-]+$/.test(k.region.trim())) errors["kinesis.region"] = "An AWS region such as us-east-1.";
      if (k.endpoint.trim() && !/^https?:\/\/.+/.test(k.endpoint.trim()))
        errors["kinesis.endpoint"] = "An http:// or https:// URL.";
      if (k.authentication === "IAM_USER") {
        if (!k.accessKeyId.trim()) errors["kinesis.accessKeyId"] = "Required for an IAM user.";
        if (!k.secretKey) errors["kinesis.secretKey"] = "Required for an IAM user.";
      } else if (!k.iamRole.trim().startsWith("arn:")) {
        errors["kinesis.iamRole"] = "A role ARN such as arn:aws:iam::123456789012:role/reader.";
      }
    }
    Object.assign(errors, validateFormat(state.format));
  }
  if (step === 3) {
    if (state.kind === "kafka") {
      if (!state.kafka.topic) errors["kafka.topic"] = "Choose a topic.";
      if (state.kafka.offsetStrategy === "from_timestamp" && !localToIso(state.kafka.offsetTimestamp))
        errors["kafka.offsetTimestamp"] = "Choose the time to start from.";
    } else {
      if (!state.kinesis.streamName) errors["kinesis.streamName"] = "Choose a stream.";
      if (state.kinesis.iteratorType === "AT_TIMESTAMP" && !localToIso(state.kinesis.timestamp))
        errors["kinesis.timestamp"] = "Choose the time to start from.";
    }
  }
  if (step === 4) {
    const d = state.destination;
    if (!d.destinationId) errors["destination.destinationId"] = "Choose a destination.";
    if (d.mode === "new") {
      if (!IDENT.test(d.table.trim())) errors["destination.table"] = "A table name: letters, digits and _, not starting with a digit.";
      if (d.columns.length === 0) errors["destination.columns"] = "Add at least one column.";
      const seen = new Set<string>();
      for (const c of d.columns) {
        const name = c.name.trim();
        if (!COLUMN_IDENT.test(name)) errors[`column.${c.id}.name`] = "Letters, digits and _, not starting with a digit.";
        else if (seen.has(name)) errors[`column.${c.id}.name`] = `\`${name}\` is listed twice.`;
        seen.add(name);
        if (!/^[A-Za-z][A-Za-z0-9_(), '=.-]*$/.test(c.type.trim())) errors[`column.${c.id}.type`] = "A ClickHouse type such as String.";
      }
      if (d.engine !== "Null" && d.sortingKey.length === 0 && d.columns.length > 0 && d.engine !== "MergeTree")
        errors["destination.sortingKey"] = `${d.engine} needs a sorting key.`;
    } else {
      if (!d.existingTable) errors["destination.existingTable"] = "Choose a table.";
      else if (!Object.values(d.mappings).some((v) => v.trim())) errors["destination.columns"] = "Map at least one column.";
    }
  }
  if (step === 6) {
    const s = state.scaling;
    const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= 10;
    if (!ok(s.replicas)) errors["scaling.replicas"] = "Between 1 and 10.";
    if (s.autoscaling) {
      if (!ok(s.minReplicas)) errors["scaling.minReplicas"] = "Between 1 and 10.";
      if (!ok(s.maxReplicas)) errors["scaling.maxReplicas"] = "Between 1 and 10.";
      else if (s.maxReplicas < s.minReplicas) errors["scaling.maxReplicas"] = "Must not be less than the minimum.";
    }
  }
  return errors;
}
