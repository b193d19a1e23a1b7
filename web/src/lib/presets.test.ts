import { describe, expect, it } from "vitest";
import { PRESETS, applyPreset, portHint, presetById } from "./presets";
import { buildSource, initialWizardState } from "./wizard";

describe("presets", () => {
  it("prefill the authentication each service uses", () => {
    const s = initialWizardState();
    expect(applyPreset(s, "confluent").kafka.authentication).toBe("PLAIN");
    expect(applyPreset(s, "msk").kafka.authentication).toBe("SCRAM-SHA-512");
    expect(applyPreset(s, "redpanda").kafka.authentication).toBe("SCRAM-SHA-256");
    expect(applyPreset(s, "warpstream").kafka.authentication).toBe("PLAIN");
    expect(applyPreset(s, "kafka").kafka.authentication).toBe("NONE");
  });

  it("know each service's port", () => {
    expect(presetById("confluent").port).toBe(9092);
    expect(presetById("eventhubs").port).toBe(9093);
    expect(presetById("msk").port).toBe(9096);
  });

  it("Event Hubs fixes the user name to $ConnectionString, and leaving it clears it", () => {
    const hubs = applyPreset(initialWizardState(), "eventhubs");
    expect(hubs.kafka.authentication).toBe("PLAIN");
    expect(hubs.kafka.username).toBe("$ConnectionString");
    const hubsSource = buildSource({ ...hubs, kafka: { ...hubs.kafka, brokers: "ns.servicebus.windows.net:9093", password: "Endpoint=sb://…" } });
    expect(hubsSource).toMatchObject({
      kafka: { authentication: "PLAIN", credentials: { username: "$ConnectionString", password: "Endpoint=sb://…" } },
    });
    const back = applyPreset(hubs, "confluent");
    expect(back.kafka.username).toBe("");
  });

  it("keep what the user typed", () => {
    const s = initialWizardState();
    s.kafka.brokers = "b:9092";
    s.kafka.username = "alice";
    const msk = applyPreset(s, "msk");
    expect(msk.kafka.brokers).toBe("b:9092");
    expect(msk.kafka.username).toBe("alice");
  });

  it("Kinesis switches the source kind", () => {
    const s = applyPreset(initialWizardState(), "kinesis");
    expect(s.kind).toBe("kinesis");
    expect(applyPreset(s, "redpanda").kind).toBe("kafka");
  });

  it("hint when the port differs from the service's", () => {
    expect(portHint(presetById("eventhubs"), "ns.servicebus.windows.net:9092")).toMatch(/9093/);
    expect(portHint(presetById("eventhubs"), "ns.servicebus.windows.net:9093")).toBeNull();
    expect(portHint(presetById("msk"), "")).toBeNull();
  });

  it("every preset has a label and a kind", () => {
    for (const p of PRESETS) {
      expect(p.label).toBeTruthy();
      expect(["kafka", "kinesis"]).toContain(p.kind);
    }
    expect(PRESETS.map((p) => p.id)).toEqual(["kafka", "confluent", "msk", "redpanda", "eventhubs", "warpstream", "kinesis"]);
  });
});
