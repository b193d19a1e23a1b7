// Maps the JSON Pointers of the API's field errors (into a PipeSpec, or into
// `{source: …}` bodies, which share the `/source/...` pointers) to the
// wizard step and field that show them.
import { protoFileKey } from "./messageFormat";
import type { SpecOwners } from "./wizard";

export interface FieldTarget {
  step: number;
  /** The wizard's field key, e.g. `kafka.brokers` or `column.<id>.type`; `form` = no single field. */
  field: string;
}

/** RFC 6901 segments. */
export function parsePointer(pointer: string): string[] {
  if (!pointer || pointer === "/") return [];
  return pointer
    .replace(/^\//, "")
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

const KAFKA: Record<string, FieldTarget> = {
  brokers: { step: 2, field: "kafka.brokers" },
  authentication: { step: 2, field: "kafka.authentication" },
  credentials: { step: 2, field: "kafka.authentication" },
  caCertificate: { step: 2, field: "kafka.caCertificate" },
  topics: { step: 3, field: "kafka.topic" },
  consumerGroup: { step: 3, field: "form" },
  offset: { step: 3, field: "kafka.offset" },
  readCommitted: { step: 3, field: "kafka.readCommitted" },
};

const KAFKA_CREDENTIALS: Record<string, string> = {
  username: "kafka.username",
  password: "kafka.password",
  certificate: "kafka.certificate",
  privateKey: "kafka.privateKey",
};

const KINESIS: Record<string, FieldTarget> = {
  streamName: { step: 3, field: "kinesis.streamName" },
  region: { step: 2, field: "kinesis.region" },
  endpoint: { step: 2, field: "kinesis.endpoint" },
  iteratorType: { step: 3, field: "kinesis.iteratorType" },
  timestamp: { step: 3, field: "kinesis.timestamp" },
  useEnhancedFanOut: { step: 3, field: "kinesis.useEnhancedFanOut" },
  authentication: { step: 2, field: "kinesis.authentication" },
  accessKey: { step: 2, field: "kinesis.accessKeyId" },
  iamRole: { step: 2, field: "kinesis.iamRole" },
  externalId: { step: 2, field: "kinesis.externalId" },
};

const REGISTRY_CREDENTIALS: Record<string, string> = {
  username: "format.registryUsername",
  password: "format.registryPassword",
};

/**
 * The format fields, the same under `/source/kafka` and `/source/kinesis`
 * and shown on the connection step; null for any other field.
 */
function formatTarget(field: string | undefined, sub: string | undefined, subsub: string | undefined): FieldTarget | null {
  const at = (f: string): FieldTarget => ({ step: 2, field: f });
  switch (field) {
    case "format":
      return at("format.format");
    case "schemaRegistry":
      if (sub === "credentials") return at((subsub && REGISTRY_CREDENTIALS[subsub]) || "format.registryAuthentication");
      if (sub === "authentication") return at("format.registryAuthentication");
      if (sub === "caCertificate") return at("format.registryCaCertificate");
      return at("format.registryUrl");
    case "avroSchema":
      return at("format.avroSchema");
    case "protobufSchema":
      // One file's problem names the file: `/protobufSchema/shop~1orders.proto`.
      return at(sub ? protoFileKey(sub) : "format.protobufSchema");
    case "messageType":
      return at("format.messageType");
    default:
      return null;
  }
}

const REVIEW: FieldTarget = { step: 7, field: "form" };

/**
 * Where a field error shows. `owners` (from `buildPipeSpec`) tells which
 * wizard row each `destination/columns/<i>` and `fieldMappings/<i>` came
 * from; `mode` whether the destination is a new or an existing table.
 */
export function pointerToField(
  pointer: string,
  owners: SpecOwners = { columns: [], fieldMappings: [] },
  mode: "new" | "existing" = "new",
): FieldTarget {
  const [top, second, third, fourth, fifth] = parsePointer(pointer);
  switch (top) {
    case "name":
      return { step: 2, field: "name" };
    case "description":
      return { step: 2, field: "description" };
    case "source": {
      if (second === "kafka" || second === "kinesis") {
        const format = formatTarget(third, fourth, fifth);
        if (format) return format;
      }
      if (second === "kafka") {
        if (third === "credentials" && fourth && KAFKA_CREDENTIALS[fourth]) {
          return { step: 2, field: KAFKA_CREDENTIALS[fourth] };
        }
        if (third === "offset" && fourth === "timestamp") return { step: 3, field: "kafka.offsetTimestamp" };
        return (third && KAFKA[third]) || { step: 2, field: "kafka.brokers" };
      }
      if (second === "kinesis") {
        if (third === "accessKey" && fourth === "secretKey") return { step: 2, field: "kinesis.secretKey" };
        return (third && KINESIS[third]) || { step: 2, field: "kinesis.region" };
      }
      return { step: 1, field: "form" };
    }
    case "destination": {
      const tableField = mode === "new" ? "destination.table" : "destination.existingTable";
      switch (second) {
        case undefined:
        case "managedTable":
          return { step: 4, field: "form" };
        case "destinationId":
          return { step: 4, field: "destination.destinationId" };
        case "database":
          return { step: 4, field: "destination.database" };
        case "table":
          return { step: 4, field: tableField };
        case "permissions":
          return { step: 5, field: "permissions" };
        case "tableDefinition":
          if (third === "sortingKey") return { step: 4, field: "destination.sortingKey" };
          if (third === "partitionBy") return { step: 4, field: "destination.partitionBy" };
          return { step: 4, field: "destination.engine" };
        case "columns": {
          const owner = third !== undefined ? owners.columns[Number(third)] : undefined;
          if (!owner) return { step: 4, field: "destination.columns" };
          if (owner.startsWith("mapping.")) return { step: 4, field: owner };
          return { step: 4, field: fourth === "type" ? `${owner}.type` : `${owner}.name` };
        }
        default:
          return { step: 4, field: "form" };
      }
    }
    case "fieldMappings": {
      const owner = second !== undefined ? owners.fieldMappings[Number(second)] : undefined;
      if (!owner) return { step: 4, field: "destination.columns" };
      if (owner.startsWith("mapping.")) return { step: 4, field: owner };
      return { step: 4, field: third === "destinationField" ? `${owner}.name` : `${owner}.sourceField` };
    }
    case "schemaEvolution":
      // Offered with a new table, on the destination step.
      return { step: 4, field: "schemaEvolution" };
    case "scaling":
      if (second === "autoscaling") {
        return { step: 6, field: third === "maxReplicas" ? "scaling.maxReplicas" : "scaling.minReplicas" };
      }
      if (second === "replicaSize") return { step: 6, field: "scaling.replicaSize" };
      return { step: 6, field: "scaling.replicas" };
    default:
      return REVIEW;
  }
}

export interface MappedErrors {
  /** Field key → message (several messages for one field are joined). */
  fields: Record<string, string>;
  /** The earliest step with an error, to jump to. */
  firstStep: number | null;
}

export function mapFieldErrors(
  errors: { pointer: string; message: string }[],
  owners?: SpecOwners,
  mode?: "new" | "existing",
): MappedErrors {
  const fields: Record<string, string> = {};
  let firstStep: number | null = null;
  for (const e of errors) {
    const target = pointerToField(e.pointer, owners, mode);
    const text = target.field === "form" && e.pointer ? `${e.pointer}: ${e.message}` : e.message;
    fields[target.field] = fields[target.field] ? `${fields[target.field]}; ${text}` : text;
    firstStep = firstStep === null ? target.step : Math.min(firstStep, target.step);
  }
  return { fields, firstStep };
}

const STEP2_FIELDS = /^(name|description|kafka\.(brokers|authentication|username|password|certificate|privateKey|caCertificate)|kinesis\.(region|endpoint|authentication|accessKeyId|secretKey|iamRole|externalId))$/;

/** The wizard step that shows a field key. */
export function stepOfField(field: string): number {
  if (STEP2_FIELDS.test(field) || field.startsWith("format.")) return 2;
  if (field.startsWith("kafka.") || field.startsWith("kinesis.")) return 3;
  if (field.startsWith("destination.") || field.startsWith("column.") || field.startsWith("mapping.") || field === "schemaEvolution") return 4;
  if (field === "permissions") return 5;
  if (field.startsWith("scaling.")) return 6;
  return 7;
}
