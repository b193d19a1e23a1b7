// What every wizard step gets, and inputs bound to the wizard's errors.
import type { ReactNode } from "react";
import { Field } from "../../components/ui";
import type { FormatState } from "../../lib/messageFormat";
import type { FieldErrors, WizardState } from "../../lib/wizard";

export interface StepCtx {
  state: WizardState;
  update(fn: (s: WizardState) => WizardState): void;
  errors: FieldErrors;
  /** Replaces the errors of the given keys (undefined clears one). */
  setErrors(errors: Record<string, string | undefined>): void;
  goTo(step: number): void;
}

export function setKafka(ctx: StepCtx, patch: Partial<WizardState["kafka"]>) {
  ctx.update((s) => ({ ...s, kafka: { ...s.kafka, ...patch } }));
  clear(ctx, Object.keys(patch).map((k) => `kafka.${k}`));
}

export function setKinesis(ctx: StepCtx, patch: Partial<WizardState["kinesis"]>) {
  ctx.update((s) => ({ ...s, kinesis: { ...s.kinesis, ...patch } }));
  clear(ctx, Object.keys(patch).map((k) => `kinesis.${k}`));
}

/** Choosing another format or schema source changes what every format field means: all their errors go. */
const FORMAT_CHOICES = new Set<keyof FormatState>(["format", "avroSource", "protobufSource"]);

export function setFormat(ctx: StepCtx, patch: Partial<FormatState>) {
  ctx.update((s) => ({ ...s, format: { ...s.format, ...patch } }));
  const fields = Object.keys(patch) as (keyof FormatState)[];
  const stale = Object.keys(ctx.errors).filter(
    (k) =>
      k.startsWith("format.") &&
      (fields.some((f) => FORMAT_CHOICES.has(f)) ||
        fields.some((f) => k === `format.${f}`) ||
        // The registry's answers (subject not found, ...) show on the format choice.
        (k === "format.format" && fields.some((f) => f.startsWith("registry") || f === "avroSchema" || f === "readerSchema" || f === "protobufFiles" || f === "messageType")) ||
        // Both Avro schema texts are the API's avroSchema.
        (k === "format.avroSchema" && fields.includes("readerSchema")) ||
        // The Avro pin error shows on the URL while the schema comes from the registry.
        (k === "format.avroSchema" && fields.includes("registryUrl")) ||
        (fields.includes("protobufFiles") && (k === "format.protobufSchema" || k.startsWith("format.protobufFile.")))),
  );
  if (stale.length) ctx.setErrors(Object.fromEntries(stale.map((k) => [k, undefined])));
}

export function setDestination(ctx: StepCtx, patch: Partial<WizardState["destination"]>) {
  ctx.update((s) => ({ ...s, destination: { ...s.destination, ...patch } }));
  clear(ctx, Object.keys(patch).map((k) => `destination.${k}`));
}

export function clear(ctx: StepCtx, keys: string[]) {
  if (keys.some((k) => ctx.errors[k])) ctx.setErrors(Object.fromEntries(keys.map((k) => [k, undefined])));
}

interface TextInputProps {
  ctx: StepCtx;
  name: string;
  label: ReactNode;
  value: string;
  onChange(value: string): void;
  hint?: ReactNode;
  type?: string;
  placeholder?: string;
  testId?: string;
  autoComplete?: string;
  multiline?: boolean;
  rows?: number;
  readOnly?: boolean;
  list?: string;
  className?: string;
  /** Shown instead of the field's own error (another field's error that belongs here). */
  error?: string;
}

export function TextInput({ ctx, name, label, value, onChange, hint, type = "text", placeholder, testId, autoComplete = "off", multiline, rows = 4, readOnly, list, className, error }: TextInputProps) {
  return (
    <Field label={label} name={name} hint={hint} error={error ?? ctx.errors[name]} className={className}>
      {(p) =>
        multiline ? (
          <textarea
            {...p}
            rows={rows}
            value={value}
            placeholder={placeholder}
            spellCheck={false}
            onChange={(e) => onChange(e.target.value)}
            data-testid={testId}
            readOnly={readOnly}
          />
        ) : (
          <input
            {...p}
            type={type}
            value={value}
            placeholder={placeholder}
            autoComplete={autoComplete}
            spellCheck={false}
            onChange={(e) => onChange(e.target.value)}
            data-testid={testId}
            readOnly={readOnly}
            list={list}
          />
        )
      }
    </Field>
  );
}

interface Option<T extends string> {
  value: T;
  label: ReactNode;
  description?: ReactNode;
}

/** Radio buttons shown as cards. */
export function RadioCards<T extends string>({
  name,
  legend,
  value,
  options,
  onChange,
  testIdPrefix,
  columns = 3,
  error,
}: {
  name: string;
  legend: ReactNode;
  value: T;
  options: Option<T>[];
  onChange(value: T): void;
  testIdPrefix: string;
  columns?: number;
  error?: string;
}) {
  return (
    <fieldset className="fieldset">
      <legend>{legend}</legend>
      <div className={`choice-grid choice-grid-${columns}`}>
        {options.map((o) => (
          <label key={o.value} className={`choice ${value === o.value ? "choice-selected" : ""}`}>
            <input
              type="radio"
              name={name}
              value={o.value}
              checked={value === o.value}
              onChange={() => onChange(o.value)}
              data-testid={`${testIdPrefix}-${o.value}`}
            />
            <span className="choice-title">{o.label}</span>
            {o.description && <span className="choice-sub">{o.description}</span>}
          </label>
        ))}
      </div>
      {error && (
        <p className="field-error" role="alert" data-testid={`error-${name}`}>
          {error}
        </p>
      )}
    </fieldset>
  );
}
