// The types the UI works with, all from the generated API description.
import type { Schemas } from "./client";

export type Pipe = Schemas["Pipe"];
export type PipeSpec = Schemas["PipeSpec"];
export type PipeState = Schemas["PipeState"];
export type PipeStatus = Schemas["PipeStatus"];
export type PipeMetrics = Schemas["PipeMetrics"];
export type PipeEvent = Schemas["PipeEvent"];
export type PipeSettings = Schemas["PipeSettings"];
export type Scaling = Schemas["Scaling"];
export type ReplicaSize = Schemas["ReplicaSize"];
export type Destination = Schemas["Destination"];
export type KafkaAuthentication = Schemas["KafkaAuthentication"];
export type KinesisAuthentication = Schemas["KinesisAuthentication"];
export type OffsetStrategy = Schemas["OffsetStrategy"];
export type IteratorType = Schemas["IteratorType"];
export type TableEngine = Schemas["TableEngine"];
export type Permissions = Schemas["Permissions"];
export type Column = Schemas["Column"];
export type FieldMapping = Schemas["FieldMapping"];
export type KafkaSource = Schemas["KafkaSource"];
export type KinesisSource = Schemas["KinesisSource"];
export type Format = Schemas["Format"];
export type SchemaRegistry = Schemas["SchemaRegistry"];
export type RegistryAuthentication = Schemas["RegistryAuthentication"];
export type SchemaEvolution = Schemas["SchemaEvolution"];

export type Session = Schemas["Session"];
export type KeyRole = Schemas["KeyRole"];
export type SourceCheck = Schemas["SourceCheck"];
export type TopicList = Schemas["TopicList"];
export type StreamList = Schemas["StreamList"];
export type SampleMessages = Schemas["SourceSample"];
export type SampleMessage = Schemas["SampleMessage"];
export type SchemaDiscovery = Schemas["DiscoveredSchema"];
export type DiscoveredColumn = Schemas["DiscoveredColumn"];
export type TableList = Schemas["TableList"];
export type TableInfo = Schemas["TableDescription"];
/** `defaultKind`: DEFAULT, MATERIALIZED or ALIAS (the pipe cannot write the last two). */
export type TableColumn = Schemas["TableColumnView"];
export type PipeActivity = Schemas["ActivityList"];
export type ActivityEntry = Schemas["PipeActivity"];
export type MetricsHistory = Schemas["MetricHistory"];
export type HistoryPoint = Schemas["MetricPoint"];
export type PipeErrors = Schemas["PipeErrorList"];
export type PipeErrorRecord = Schemas["PipeErrorRecord"];
/** Rows by column name, values as ClickHouse's JSON output writes them. */
export type PipeRows = Omit<Schemas["PipeRows"], "rows"> & { rows: Record<string, unknown>[] };

/** Secrets are write-only, so the generated schemas leave them out; the UI sends them. */
export type KafkaCredentialsInput = NonNullable<KafkaSource["credentials"]> & {
  password?: string;
  privateKey?: string;
};
export type KafkaSourceInput = Omit<KafkaSource, "credentials"> & { credentials?: KafkaCredentialsInput };
export type KinesisSourceInput = Omit<KinesisSource, "accessKey"> & {
  accessKey?: { accessKeyId: string; secretKey?: string };
};
export type SourceInput = { kafka: KafkaSourceInput } | { kinesis: KinesisSourceInput };
/** What the wizard sends: settings are left to their defaults. */
export type PipeSpecInput = Omit<PipeSpec, "source" | "settings"> & { source: SourceInput };
export type DestinationSpecInput = Schemas["DestinationSpec"] & { password?: string };
