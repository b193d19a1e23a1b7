// Replica size, count and autoscaling bounds: the wizard's step 6 and the
// pipe page's scaling editor.
import type { ReplicaSize } from "../api/types";
import { Field, FieldError } from "./ui";

export const REPLICA_SIZES: { size: ReplicaSize; vcpu: string; memory: string }[] = [
  { size: "XS", vcpu: "0.125 vCPU", memory: "512 MiB" },
  { size: "S", vcpu: "0.25 vCPU", memory: "1 GiB" },
  { size: "M", vcpu: "0.5 vCPU", memory: "2 GiB" },
  { size: "L", vcpu: "1 vCPU", memory: "4 GiB" },
  { size: "XL", vcpu: "2 vCPU", memory: "8 GiB" },
];

export interface ScalingValue {
  replicaSize: ReplicaSize;
  replicas: number;
  autoscaling: boolean;
  minReplicas: number;
  maxReplicas: number;
}

interface Props {
  value: ScalingValue;
  onChange(value: ScalingValue): void;
  errors: Record<string, string>;
  disabled?: boolean;
  idPrefix?: string;
  /** A select instead of cards for the size (narrow cards). */
  compact?: boolean;
}

const REPLICA_CHOICES = Array.from({ length: 10 }, (_, i) => i + 1);

export function ScalingFields({ value, onChange, errors, disabled, idPrefix = "scaling", compact }: Props) {
  const set = (patch: Partial<ScalingValue>) => onChange({ ...value, ...patch });
  return (
    <div className="stack">
      {compact ? (
        <Field label="Replica size" name="scaling.replicaSize" error={errors["scaling.replicaSize"]}>
          {(p) => (
            <select {...p} disabled={disabled} value={value.replicaSize} onChange={(e) => set({ replicaSize: e.target.value as ReplicaSize })} data-testid={`${idPrefix}-size`}>
              {REPLICA_SIZES.map((s) => (
                <option key={s.size} value={s.size}>
                  {s.size} — {s.vcpu}, {s.memory}
                </option>
              ))}
            </select>
          )}
        </Field>
      ) : (
      <fieldset className="fieldset" disabled={disabled}>
        <legend>Replica size</legend>
        <div className="choice-grid choice-grid-5" role="radiogroup" aria-label="Replica size">
          {REPLICA_SIZES.map((s) => (
            <label key={s.size} className={`choice ${value.replicaSize === s.size ? "choice-selected" : ""}`}>
              <input
                type="radio"
                name={`${idPrefix}-size`}
                value={s.size}
                checked={value.replicaSize === s.size}
                onChange={() => set({ replicaSize: s.size })}
                data-testid={`${idPrefix}-size-${s.size}`}
              />
              <span className="choice-title">{s.size}</span>
              <span className="choice-sub">
                {s.vcpu} · {s.memory}
              </span>
            </label>
          ))}
        </div>
        <FieldError name="scaling.replicaSize" error={errors["scaling.replicaSize"]} />
      </fieldset>
      )}

      <div className="row">
        <Field
          label={value.autoscaling ? "Starting replicas" : "Replicas"}
          name="scaling.replicas"
          error={errors["scaling.replicas"]}
          hint="Kafka: at most one replica per partition is busy. Kinesis: shards are shared out."
        >
          {(p) => (
            <select
              {...p}
              disabled={disabled}
              value={value.replicas}
              onChange={(e) => set({ replicas: Number(e.target.value) })}
              data-testid={`${idPrefix}-replicas`}
            >
              {REPLICA_CHOICES.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>

      <label className="switch">
        <input
          type="checkbox"
          role="switch"
          checked={value.autoscaling}
          disabled={disabled}
          onChange={(e) => set({ autoscaling: e.target.checked })}
          data-testid={`${idPrefix}-autoscaling`}
        />
        <span>Autoscaling on consumer lag</span>
      </label>
      {value.autoscaling && (
        <div className="row">
          <Field label="Minimum replicas" name="scaling.minReplicas" error={errors["scaling.minReplicas"]}>
            {(p) => (
              <select {...p} disabled={disabled} value={value.minReplicas} onChange={(e) => set({ minReplicas: Number(e.target.value) })} data-testid={`${idPrefix}-min`}>
                {REPLICA_CHOICES.map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Maximum replicas" name="scaling.maxReplicas" error={errors["scaling.maxReplicas"]}>
            {(p) => (
              <select {...p} disabled={disabled} value={value.maxReplicas} onChange={(e) => set({ maxReplicas: Number(e.target.value) })} data-testid={`${idPrefix}-max`}>
                {REPLICA_CHOICES.map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
      )}
    </div>
  );
}
