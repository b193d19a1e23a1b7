// Source presets: the kinds of Kafka service people connect, with the
// authentication mechanism and port each one uses, prefilled in step 2.
import type { KafkaAuthentication } from "../api/types";
import type { WizardState } from "./wizard";

export type PresetId = "kafka" | "confluent" | "msk" | "redpanda" | "eventhubs" | "warpstream" | "kinesis";

export interface Preset {
  id: PresetId;
  kind: "kafka" | "kinesis";
  label: string;
  blurb: string;
  authentication?: KafkaAuthentication;
  /** The port the service's bootstrap servers listen on. */
  port?: number;
  brokersPlaceholder?: string;
  /** A fixed SASL user name (Event Hubs: `$ConnectionString`). */
  username?: string;
  usernameLabel?: string;
  passwordLabel?: string;
  hint?: string;
}

export const PRESETS: Preset[] = [
  {
    id: "kafka",
    kind: "kafka",
    label: "Apache Kafka",
    blurb: "Any Kafka-compatible cluster",
    authentication: "NONE",
    port: 9092,
    brokersPlaceholder: "broker-1:9092,broker-2:9092",
    hint: "Bootstrap servers as host:port, separated by commas.",
  },
  {
    id: "confluent",
    kind: "kafka",
    label: "Confluent Cloud",
    blurb: "SASL/PLAIN with an API key",
    authentication: "PLAIN",
    port: 9092,
    brokersPlaceholder: "pkc-xxxxx.us-east-1.aws.confluent.cloud:9092",
    usernameLabel: "API key",
    passwordLabel: "API secret",
    hint: "The cluster's bootstrap server (Cluster settings → Endpoints), port 9092.",
  },
  {
    id: "msk",
    kind: "kafka",
    label: "Amazon MSK",
    blurb: "SASL/SCRAM-SHA-512",
    authentication: "SCRAM-SHA-512",
    port: 9096,
    brokersPlaceholder: "b-1.mycluster.abc123.c2.kafka.us-east-1.amazonaws.com:9096",
    hint: "The SASL/SCRAM bootstrap brokers (port 9096) from “View client information”.",
  },
  {
    id: "redpanda",
    kind: "kafka",
    label: "Redpanda",
    blurb: "SASL/SCRAM-SHA-256",
    authentication: "SCRAM-SHA-256",
    port: 9092,
    brokersPlaceholder: "seed-abc123.cloud.redpanda.com:9092",
    hint: "The cluster's bootstrap server URL, port 9092.",
  },
  {
    id: "eventhubs",
    kind: "kafka",
    label: "Azure Event Hubs",
    blurb: "Kafka endpoint, SASL/PLAIN",
    authentication: "PLAIN",
    port: 9093,
    brokersPlaceholder: "mynamespace.servicebus.windows.net:9093",
    username: "$ConnectionString",
    passwordLabel: "Connection string",
    hint: "The namespace's host name with port 9093; the password is the namespace's connection string.",
  },
  {
    id: "warpstream",
    kind: "kafka",
    label: "WarpStream",
    blurb: "SASL/PLAIN with agent credentials",
    authentication: "PLAIN",
    port: 9092,
    brokersPlaceholder: "api-abc123.warpstream.com:9092",
    hint: "The agents' bootstrap address, port 9092.",
  },
  {
    id: "kinesis",
    kind: "kinesis",
    label: "Amazon Kinesis",
    blurb: "Data Streams, IAM user or role",
    hint: "Read a Kinesis data stream with an IAM user's access key or an assumed role.",
  },
];

export function presetById(id: PresetId): Preset {
  return PRESETS.find((p) => p.id === id) ?? PRESETS[0];
}

/**
 * Switches the wizard to a preset: sets the source kind and the preset's
 * authentication, and its fixed user name. Values the user typed stay,
 * except a fixed user name that belonged to the previous preset.
 */
export function applyPreset(state: WizardState, id: PresetId): WizardState {
  const preset = presetById(id);
  const previous = presetById(state.preset);
  if (preset.kind === "kinesis") {
    return { ...state, preset: id, kind: "kinesis" };
  }
  let username = state.kafka.username;
  if (previous.username && username === previous.username) username = "";
  if (preset.username) username = preset.username;
  return {
    ...state,
    preset: id,
    kind: "kafka",
    kafka: {
      ...state.kafka,
      authentication: preset.authentication ?? state.kafka.authentication,
      username,
    },
  };
}

/** "Port 9093" hint text when the brokers typed so far use another port. */
export function portHint(preset: Preset, brokers: string): string | null {
  // A self-run Kafka listens wherever it was configured; services have one port.
  if (!preset.port || preset.id === "kafka") return null;
  const entries = brokers
    .split(",")
    .map((b) => b.trim())
    .filter(Boolean);
  const wrong = entries.filter((b) => {
    const port = b.slice(b.lastIndexOf(":") + 1);
    return b.includes(":") && port !== String(preset.port);
  });
  if (wrong.length === 0) return null;
  return `${preset.label} usually listens on port ${preset.port}.`;
}
