// Steps 5 to 7: permissions, scaling, review.
import { ScalingFields } from "../../components/ScalingFields";
import { FieldError } from "../../components/ui";
import { describeFormat } from "../../lib/messageFormat";
import { presetById } from "../../lib/presets";
import { buildPipeSpec, describeSchemaEvolution, schemaEvolutionOffered } from "../../lib/wizard";
import { RadioCards, type StepCtx } from "./common";

export function StepPermissions({ ctx }: { ctx: StepCtx }) {
  return (
    <div className="stack">
      <RadioCards
        name="permissions"
        legend="What the pipe's ClickHouse user may do"
        value={ctx.state.permissions}
        options={[
          {
            value: "full",
            label: "Full access",
            description: "Creates and alters its tables (the table, the error table beside it). Needed for a new table.",
          },
          {
            value: "table_only",
            label: "Table only",
            description: "Sluice runs no DDL: INSERT on the table and its _sluice_errors table, which must exist (the pipe says how to create a missing one).",
          },
        ]}
        onChange={(permissions) => {
          ctx.update((s) => ({ ...s, permissions }));
          ctx.setErrors({ permissions: undefined });
        }}
        testIdPrefix="permissions"
        columns={2}
        error={ctx.errors.permissions}
      />
      {ctx.state.permissions === "table_only" && ctx.state.destination.mode === "new" && (
        <p className="notice notice-warn">A new table needs full access: with “Table only” Sluice creates nothing, so Create refuses a new table. Choose an existing table, or full access.</p>
      )}
      {ctx.state.permissions === "table_only" && ctx.state.addColumns && schemaEvolutionOffered(ctx.state) && (
        <p className="notice notice-warn" data-testid="schema-evolution-needs-full">Adding columns for new schema fields alters the table: with “Table only” it is off.</p>
      )}
    </div>
  );
}

export function StepScaling({ ctx }: { ctx: StepCtx }) {
  return (
    <div className="stack">
      <p className="muted">Each replica is a consumer on a worker. Sizes set the CPU and memory reserved for it.</p>
      <ScalingFields
        value={ctx.state.scaling}
        onChange={(scaling) => {
          ctx.update((s) => ({ ...s, scaling }));
          ctx.setErrors({ "scaling.replicas": undefined, "scaling.minReplicas": undefined, "scaling.maxReplicas": undefined, "scaling.replicaSize": undefined });
        }}
        errors={ctx.errors}
      />
    </div>
  );
}

const SECRET_KEYS = new Set(["password", "secretKey", "privateKey"]);

/** The spec as JSON with secrets masked. */
export function maskedJson(value: unknown): string {
  return JSON.stringify(value, (key, v) => (SECRET_KEYS.has(key) && typeof v === "string" && v ? "••••••••" : v), 2);
}

export function StepReview({ ctx }: { ctx: StepCtx }) {
  const { state } = ctx;
  const { spec } = buildPipeSpec(state);
  const d = spec.destination;
  const evolution = describeSchemaEvolution(state);
  const src = state.kind === "kafka" ? `Kafka (${presetById(state.preset).label}) topic ${state.kafka.topic}` : `Kinesis stream ${state.kinesis.streamName} (${state.kinesis.region})`;
  const summary: [string, string][] = [
    ["Name", spec.name],
    ["Source", src],
    ["Message format", describeFormat(state.format)],
    ["Destination", `${d.database ? `${d.database}.` : ""}${d.table} (${d.managedTable ? `new ${d.tableDefinition?.engine} table` : "existing table"})`],
    ["Columns", `${d.columns?.length ?? 0}${spec.fieldMappings?.length ? `, ${spec.fieldMappings.length} mapped from other fields` : ""}`],
    ["Permissions", state.permissions === "full" ? "Full access" : "Table only"],
    ...(evolution ? ([["Schema evolution", evolution]] as [string, string][]) : []),
    [
      "Scaling",
      `${spec.scaling?.replicas} × ${spec.scaling?.replicaSize}${spec.scaling?.autoscaling ? `, autoscaling ${spec.scaling.autoscaling.minReplicas}–${spec.scaling.autoscaling.maxReplicas}` : ""}`,
    ],
  ];
  return (
    <div className="stack">
      <dl className="facts facts-wide" data-testid="review-summary">
        {summary.map(([k, v]) => (
          <div key={k} className="fact">
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <details className="advanced" open>
        <summary>Pipe definition (JSON)</summary>
        <pre className="json" data-testid="review-json">
          {maskedJson(spec)}
        </pre>
      </details>
      <label className="switch">
        <input type="checkbox" checked={state.startNow} onChange={(e) => ctx.update((s) => ({ ...s, startNow: e.target.checked }))} data-testid="start-now" />
        <span>Start the pipe now (otherwise it is created stopped)</span>
      </label>
      <FieldError name="form" error={ctx.errors.form} />
    </div>
  );
}
