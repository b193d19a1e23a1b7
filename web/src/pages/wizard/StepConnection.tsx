import { useState } from "react";
import { ApiError, api, call, errorMessage } from "../../api/client";
import type { KafkaAuthentication, KinesisAuthentication, SourceCheck } from "../../api/types";
import { Button, Field } from "../../components/ui";
import { mapFieldErrors } from "../../lib/pointer";
import { portHint, presetById } from "../../lib/presets";
import { usesRegistry } from "../../lib/messageFormat";
import { buildSource, isSasl } from "../../lib/wizard";
import { TextInput, setKafka, setKinesis, type StepCtx } from "./common";
import { MessageFormat } from "./MessageFormat";

const KAFKA_AUTH: { value: KafkaAuthentication; label: string }[] = [
  { value: "NONE", label: "None (plaintext)" },
  { value: "PLAIN", label: "SASL/PLAIN" },
  { value: "SCRAM-SHA-256", label: "SASL/SCRAM-SHA-256" },
  { value: "SCRAM-SHA-512", label: "SASL/SCRAM-SHA-512" },
  { value: "MUTUAL_TLS", label: "Mutual TLS (client certificate)" },
];

const KINESIS_AUTH: { value: KinesisAuthentication; label: string }[] = [
  { value: "IAM_USER", label: "IAM user (access key)" },
  { value: "IAM_ROLE", label: "IAM role (assume role)" },
];

export function StepConnection({ ctx }: { ctx: StepCtx }) {
  const { state } = ctx;
  const preset = presetById(state.preset);
  return (
    <div className="stack">
      <div className="row">
        <TextInput
          ctx={ctx}
          name="name"
          label="Pipe name"
          value={state.name}
          onChange={(name) => {
            ctx.update((s) => ({ ...s, name }));
            ctx.setErrors({ name: undefined });
          }}
          placeholder="orders to ClickHouse"
          hint="Letters, digits, spaces and _ . -"
          testId="pipe-name"
        />
        <TextInput
          ctx={ctx}
          name="description"
          label={
            <>
              Description <span className="optional">optional</span>
            </>
          }
          value={state.description}
          onChange={(description) => ctx.update((s) => ({ ...s, description }))}
          testId="pipe-description"
        />
      </div>
      {state.kind === "kafka" ? <KafkaConnection ctx={ctx} presetLabel={preset.label} /> : <KinesisConnection ctx={ctx} />}
      <MessageFormat ctx={ctx} />
      <ConnectionCheck ctx={ctx} />
    </div>
  );
}

function KafkaConnection({ ctx, presetLabel }: { ctx: StepCtx; presetLabel: string }) {
  const k = ctx.state.kafka;
  const preset = presetById(ctx.state.preset);
  const hint = portHint(preset, k.brokers);
  const fixedUser = !!preset.username && k.username === preset.username;
  return (
    <>
      <h3 className="section-title">{presetLabel} connection</h3>
      <TextInput
        ctx={ctx}
        name="kafka.brokers"
        label="Bootstrap servers"
        value={k.brokers}
        onChange={(brokers) => setKafka(ctx, { brokers })}
        placeholder={preset.brokersPlaceholder}
        hint={
          <>
            {preset.hint}
            {hint && <span className="hint-warn"> {hint}</span>}
          </>
        }
        testId="kafka-brokers"
      />
      <Field label="Authentication" name="kafka.authentication" error={ctx.errors["kafka.authentication"]}>
        {(p) => (
          <select
            {...p}
            value={k.authentication}
            onChange={(e) => setKafka(ctx, { authentication: e.target.value as KafkaAuthentication })}
            data-testid="kafka-authentication"
          >
            {KAFKA_AUTH.map((a) => (
              <option key={a.value} value={a.value}>
                {a.label}
              </option>
            ))}
          </select>
        )}
      </Field>
      {isSasl(k.authentication) && (
        <div className="row">
          <TextInput
            ctx={ctx}
            name="kafka.username"
            label={preset.usernameLabel ?? "Username"}
            value={k.username}
            onChange={(username) => setKafka(ctx, { username })}
            readOnly={fixedUser}
            hint={fixedUser ? `${preset.label} always uses ${preset.username}.` : undefined}
            testId="kafka-username"
          />
          <TextInput
            ctx={ctx}
            name="kafka.password"
            label={preset.passwordLabel ?? "Password"}
            type="password"
            autoComplete="new-password"
            value={k.password}
            onChange={(password) => setKafka(ctx, { password })}
            testId="kafka-password"
          />
        </div>
      )}
      {k.authentication === "MUTUAL_TLS" && (
        <div className="row">
          <TextInput
            ctx={ctx}
            name="kafka.certificate"
            label="Client certificate (PEM)"
            multiline
            value={k.certificate}
            onChange={(certificate) => setKafka(ctx, { certificate })}
            placeholder="-----BEGIN CERTIFICATE-----"
            testId="kafka-certificate"
          />
          <TextInput
            ctx={ctx}
            name="kafka.privateKey"
            label="Private key (PEM)"
            multiline
            value={k.privateKey}
            onChange={(privateKey) => setKafka(ctx, { privateKey })}
            placeholder="-----BEGIN PRIVATE KEY-----"
            testId="kafka-private-key"
          />
        </div>
      )}
      <details className="advanced" open={!!k.caCertificate || !!ctx.errors["kafka.caCertificate"]}>
        <summary>Advanced: custom CA certificate</summary>
        <TextInput
          ctx={ctx}
          name="kafka.caCertificate"
          label={
            <>
              CA certificate (PEM) <span className="optional">optional</span>
            </>
          }
          multiline
          value={k.caCertificate}
          onChange={(caCertificate) => setKafka(ctx, { caCertificate })}
          hint="Only for brokers whose TLS certificate is signed by a private CA."
          testId="kafka-ca"
        />
      </details>
    </>
  );
}

function KinesisConnection({ ctx }: { ctx: StepCtx }) {
  const k = ctx.state.kinesis;
  return (
    <>
      <h3 className="section-title">Amazon Kinesis connection</h3>
      <div className="row">
        <TextInput ctx={ctx} name="kinesis.region" label="Region" value={k.region} onChange={(region) => setKinesis(ctx, { region })} placeholder="us-east-1" testId="kinesis-region" />
        <Field label="Authentication" name="kinesis.authentication" error={ctx.errors["kinesis.authentication"]}>
          {(p) => (
            <select
              {...p}
              value={k.authentication}
              onChange={(e) => setKinesis(ctx, { authentication: e.target.value as KinesisAuthentication })}
              data-testid="kinesis-authentication"
            >
              {KINESIS_AUTH.map((a) => (
                <option key={a.value} value={a.value}>
                  {a.label}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      {k.authentication === "IAM_ROLE" && (
        <div className="row">
          <TextInput ctx={ctx} name="kinesis.iamRole" label="Role ARN" value={k.iamRole} onChange={(iamRole) => setKinesis(ctx, { iamRole })} placeholder="arn:aws:iam::123456789012:role/sluice-reader" testId="kinesis-role" />
          <TextInput
            ctx={ctx}
            name="kinesis.externalId"
            label={
              <>
                External id <span className="optional">optional</span>
              </>
            }
            value={k.externalId}
            onChange={(externalId) => setKinesis(ctx, { externalId })}
            testId="kinesis-external-id"
          />
        </div>
      )}
      <div className="row">
        <TextInput
          ctx={ctx}
          name="kinesis.accessKeyId"
          label={
            <>
              Access key id {k.authentication === "IAM_ROLE" && <span className="optional">optional</span>}
            </>
          }
          value={k.accessKeyId}
          onChange={(accessKeyId) => setKinesis(ctx, { accessKeyId })}
          placeholder="AKIA…"
          hint={k.authentication === "IAM_ROLE" ? "The credentials that assume the role; without them the worker's own are used." : undefined}
          testId="kinesis-access-key-id"
        />
        <TextInput
          ctx={ctx}
          name="kinesis.secretKey"
          label={
            <>
              Secret access key {k.authentication === "IAM_ROLE" && <span className="optional">optional</span>}
            </>
          }
          type="password"
          autoComplete="new-password"
          value={k.secretKey}
          onChange={(secretKey) => setKinesis(ctx, { secretKey })}
          testId="kinesis-secret-key"
        />
      </div>
      <details className="advanced" open={!!k.endpoint || !!ctx.errors["kinesis.endpoint"]}>
        <summary>Advanced: endpoint override</summary>
        <TextInput
          ctx={ctx}
          name="kinesis.endpoint"
          label={
            <>
              Endpoint URL <span className="optional">optional</span>
            </>
          }
          value={k.endpoint}
          onChange={(endpoint) => setKinesis(ctx, { endpoint })}
          placeholder="https://vpce-….kinesis.us-east-1.vpce.amazonaws.com"
          hint="For VPC endpoints and local emulators."
          testId="kinesis-endpoint"
        />
      </details>
    </>
  );
}

function ConnectionCheck({ ctx }: { ctx: StepCtx }) {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<SourceCheck | null>(null);
  const [failure, setFailure] = useState<string | null>(null);

  async function test() {
    setBusy(true);
    setResult(null);
    setFailure(null);
    try {
      const check = await call(api.POST("/v1/sources/check", { body: { source: buildSource(ctx.state) } }));
      setResult(check);
    } catch (e) {
      if (e instanceof ApiError && e.fieldErrors.length) {
        const mapped = mapFieldErrors(e.fieldErrors);
        const here = Object.entries(mapped.fields).filter(([k]) => !k.endsWith(".topic") && !k.endsWith(".streamName"));
        ctx.setErrors(Object.fromEntries(here));
        setFailure(here.length ? "Fix the highlighted fields first." : errorMessage(e));
      } else {
        setFailure(errorMessage(e));
      }
    } finally {
      setBusy(false);
    }
  }

  const ok = result?.ok === true;
  const message = failure ?? (result ? (result.ok ? `Connected in ${result.latencyMs} ms${result.details ? ` — ${result.details}` : ""}` : result.error || "The connection failed.") : null);
  return (
    <div className="check">
      <Button onClick={() => void test()} busy={busy} data-testid="test-connection">
        {busy ? "Testing…" : "Test connection"}
      </Button>
      <div
        className={`check-result ${message ? (ok ? "check-ok" : "check-bad") : ""}`}
        role={message ? (ok ? "status" : "alert") : undefined}
        aria-live="polite"
        data-testid="connection-result"
        data-ok={message ? String(ok) : undefined}
      >
        {message && (
          <>
            <span className="check-icon" aria-hidden="true">
              {ok ? "✓" : "!"}
            </span>
            <span>{message}</span>
          </>
        )}
      </div>
      {usesRegistry(ctx.state.format) && (
        <p className="muted small check-note" data-testid="registry-check-note">
          The test checks the {ctx.state.kind === "kafka" ? "brokers" : "stream service"} and the format settings; the schema registry is first asked when the next step reads a sample.
        </p>
      )}
    </div>
  );
}
