import { useEffect, useMemo, useState, type FormEvent } from "react";
import { ApiError, api, call, errorMessage } from "../../api/client";
import type { DestinationSpecInput, SampleMessage, SchemaDiscovery, TableEngine } from "../../api/types";
import { useToast } from "../../components/Toasts";
import { Button, ErrorState, Field, FieldError, Loading, Spinner } from "../../components/ui";
import { usePoll } from "../../lib/hooks";
import { previewRows, sampleFields } from "../../lib/preview";
import { useSession } from "../../lib/session";
import { compatibility, fitType, serverHas } from "../../lib/typeCompat";
import { defaultColumnName, virtualColumns } from "../../lib/virtualColumns";
import { newColumnId, plainKeyType, schemaEvolutionOffered, sourceName, type WizardColumn } from "../../lib/wizard";
import { RadioCards, TextInput, clear, setDestination, type StepCtx } from "./common";
import type { Loadable } from "./StepData";

export const COMMON_TYPES = [
  "String",
  "Int64",
  "UInt64",
  "Int32",
  "UInt32",
  "Float64",
  "Bool",
  "DateTime",
  "DateTime64(3)",
  "Date",
  "UUID",
  "LowCardinality(String)",
  "Nullable(String)",
  "Nullable(Int64)",
  "Nullable(Float64)",
  "Array(String)",
  "Array(Int64)",
  "Decimal(18, 4)",
  "JSON",
];

const ENGINES: { value: TableEngine; label: string; description: string }[] = [
  { value: "MergeTree", label: "MergeTree", description: "Keeps every row" },
  { value: "ReplacingMergeTree", label: "ReplacingMergeTree", description: "Keeps the last row per sorting key" },
  { value: "SummingMergeTree", label: "SummingMergeTree", description: "Sums numeric columns per sorting key" },
  { value: "Null", label: "Null", description: "Discards rows (for materialized views)" },
];

interface Props {
  ctx: StepCtx;
  sample: SampleMessage[];
  discovery: Loadable<SchemaDiscovery>;
  reinfer(): void;
}

export function StepDestination({ ctx, sample, discovery, reinfer }: Props) {
  const d = ctx.state.destination;
  const destinations = usePoll(() => call(api.GET("/v1/destinations", { params: { query: { limit: 100 } } })), 0, []);
  const list = destinations.data?.data ?? [];
  const chosen = list.find((x) => x.id === d.destinationId);
  const [creating, setCreating] = useState(false);

  // One destination: choose it.
  useEffect(() => {
    if (!d.destinationId && list.length === 1) setDestination(ctx, { destinationId: list[0].id });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [list.length]);

  const databases = usePoll(
    () => (d.destinationId ? call(api.GET("/v1/destinations/{id}/databases", { params: { path: { id: d.destinationId } } })) : Promise.resolve(null)),
    0,
    [d.destinationId],
  );
  const database = d.database || chosen?.database || "default";

  return (
    <div className="stack">
      <section className="stack">
        <h3 className="section-title">ClickHouse destination</h3>
        {destinations.loading && !destinations.data ? (
          <Loading label="Loading destinations…" />
        ) : destinations.error != null && !destinations.data ? (
          <ErrorState error={`Could not list destinations: ${errorMessage(destinations.error)}`} onRetry={() => void destinations.reload()} />
        ) : list.length === 0 && !creating ? (
          <div className="notice" data-testid="no-destinations">
            <p>
              <strong>No destination yet.</strong> A destination is a ClickHouse service's address and credentials. An admin can create one with{" "}
              <code>POST /v1/destinations</code>, or you can add one here.
            </p>
            <Button onClick={() => setCreating(true)} data-testid="destination-create-open">
              Add a destination
            </Button>
          </div>
        ) : (
          <div className="row row-end">
            <Field label="Destination" name="destination.destinationId" error={ctx.errors["destination.destinationId"]}>
              {(p) => (
                <select
                  {...p}
                  value={d.destinationId}
                  onChange={(e) => setDestination(ctx, { destinationId: e.target.value, database: "", existingTable: "", existingColumns: [], mappings: {} })}
                  data-testid="destination-select"
                >
                  <option value="">Choose a destination…</option>
                  {list.map((x) => (
                    <option key={x.id} value={x.id}>
                      {x.name} — {x.url}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field
              label="Database"
              name="destination.database"
              error={ctx.errors["destination.database"]}
              hint={databases.error ? `Cannot list databases: ${errorMessage(databases.error)}` : undefined}
            >
              {(p) =>
                databases.data && !databases.error ? (
                  <select {...p} value={database} onChange={(e) => setDestination(ctx, { database: e.target.value, existingTable: "", existingColumns: [], mappings: {} })} data-testid="database-select">
                    {!databases.data.databases.includes(database) && <option value={database}>{database}</option>}
                    {databases.data.databases.map((db) => (
                      <option key={db} value={db}>
                        {db}
                      </option>
                    ))}
                  </select>
                ) : (
                  <input {...p} value={d.database} placeholder={chosen?.database ?? "default"} onChange={(e) => setDestination(ctx, { database: e.target.value })} disabled={!d.destinationId} data-testid="database-input" />
                )
              }
            </Field>
            {!creating && (
              <Button variant="ghost" onClick={() => setCreating(true)} data-testid="destination-create-open">
                Add another
              </Button>
            )}
          </div>
        )}
        {creating && (
          <DestinationForm
            onCancel={() => setCreating(false)}
            onCreated={(id) => {
              setCreating(false);
              void destinations.reload().then(() => setDestination(ctx, { destinationId: id, database: "" }));
            }}
          />
        )}
      </section>

      <RadioCards
        name="destination.mode"
        legend="Table"
        value={d.mode}
        options={[
          { value: "new", label: "New table", description: "Sluice creates it from the columns below" },
          { value: "existing", label: "Existing table", description: "Map fields onto a table you have" },
        ]}
        onChange={(mode) => setDestination(ctx, { mode })}
        testIdPrefix="table-mode"
        columns={2}
      />
      {ctx.errors.form && <FieldError name="form" error={ctx.errors.form} />}

      {d.mode === "new" ? (
        <NewTable ctx={ctx} sample={sample} discovery={discovery} reinfer={reinfer} />
      ) : (
        <ExistingTable ctx={ctx} database={database} sample={sample} discovery={discovery} />
      )}
      <SchemaEvolutionOption ctx={ctx} />
    </div>
  );
}

/**
 * Schema evolution, where it fits: a registry format (each message names
 * its writer schema) into a table Sluice creates. Also shown, with the
 * API's answer, when the API refused it.
 */
function SchemaEvolutionOption({ ctx }: { ctx: StepCtx }) {
  const { state } = ctx;
  const error = ctx.errors.schemaEvolution;
  if (!schemaEvolutionOffered(state) && !error) return null;
  return (
    <section className="stack" data-testid="schema-evolution-section">
      <h3 className="section-title">Schema evolution</h3>
      <Field
        label="When a newer writer schema has new fields"
        name="schemaEvolution"
        error={error}
        hint="New fields of a newer writer schema become Nullable columns; without it they are not loaded and an event says so."
      >
        {(p) => (
          <label className="switch">
            <input
              {...p}
              type="checkbox"
              checked={state.addColumns}
              onChange={(e) => {
                const addColumns = e.target.checked;
                ctx.update((s) => ({ ...s, addColumns }));
                ctx.setErrors({ schemaEvolution: undefined });
              }}
              data-testid="schema-evolution"
            />
            <span>Add columns when the schema gains fields</span>
          </label>
        )}
      </Field>
    </section>
  );
}

function DestinationForm({ onCancel, onCreated }: { onCancel(): void; onCreated(id: string): void }) {
  const toast = useToast();
  const { session } = useSession();
  const [form, setForm] = useState<DestinationSpecInput>({ name: "", url: "", database: "default", username: "default", password: "" });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<DestinationSpecInput>) => setForm({ ...form, ...patch });

  async function submit(e?: FormEvent) {
    e?.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      const body: DestinationSpecInput = { ...form };
      if (!body.password) delete body.password;
      const created = await call(api.POST("/v1/destinations", { body }));
      toast.success(`Destination “${created.name}” added`);
      onCreated(created.id);
    } catch (err) {
      if (err instanceof ApiError && err.fieldErrors.length) {
        setErrors(Object.fromEntries(err.fieldErrors.map((f) => [f.pointer.replace(/^\//, ""), f.message])));
      } else if (err instanceof ApiError && err.status === 403) {
        setErrors({ form: `Your key (${session?.role}) may not create destinations; ask an admin.` });
      } else {
        setErrors({ form: errorMessage(err) });
      }
      toast.error("Could not add the destination", errorMessage(err));
    } finally {
      setBusy(false);
    }
  }

  const ctx = { errors, setErrors: () => {}, update: () => {}, state: undefined as never, goTo: () => {} };
  // Enter submits this small form without submitting the wizard step around it.
  const onKeyDown = (e: React.KeyboardEvent) => {
    if (e.key === "Enter" && (e.target as HTMLElement).tagName === "INPUT") {
      e.preventDefault();
      e.stopPropagation();
      void submit();
    }
  };
  return (
    <div className="subform" role="group" aria-label="New destination" onKeyDown={onKeyDown} data-testid="destination-form">
      <h4>New ClickHouse destination</h4>
      <div className="row">
        <TextInput ctx={ctx} name="name" label="Name" value={form.name} onChange={(name) => set({ name })} placeholder="analytics" testId="destination-name" />
        <TextInput ctx={ctx} name="url" label="HTTP(S) URL" value={form.url} onChange={(url) => set({ url })} placeholder="https://abc.eu-west-1.aws.clickhouse.cloud:8443" testId="destination-url" />
      </div>
      <div className="row">
        <TextInput ctx={ctx} name="database" label="Database" value={form.database ?? ""} onChange={(database) => set({ database })} testId="destination-database" />
        <TextInput ctx={ctx} name="username" label="Username" value={form.username ?? ""} onChange={(username) => set({ username })} testId="destination-username" />
        <TextInput ctx={ctx} name="password" label="Password" type="password" autoComplete="new-password" value={form.password ?? ""} onChange={(password) => set({ password })} testId="destination-password" />
      </div>
      <FieldError name="destination-form" error={errors.form} />
      <div className="actions">
        <Button variant="primary" onClick={() => void submit()} busy={busy} data-testid="destination-create">
          Add destination
        </Button>
        <Button variant="ghost" onClick={onCancel} disabled={busy}>
          Cancel
        </Button>
      </div>
    </div>
  );
}

function NewTable({ ctx, sample, discovery, reinfer }: Omit<Props, "ctx"> & { ctx: StepCtx }) {
  const { state } = ctx;
  const d = state.destination;
  const virtuals = virtualColumns(state.kind);
  const fromSchema = state.format.format !== "JSONEachRow";
  const fields = useMemo(() => messageFields(sample, discovery.data), [sample, discovery.data]);
  // Messages the format cannot read go to the error table: not in the preview.
  const readable = useMemo(() => sample.filter((m) => !m.decodeError), [sample]);
  const [addField, setAddField] = useState(virtuals[1]?.name ?? "_key");
  // The destination's type families: only types the server has are offered.
  const serverTypes = usePoll(
    () => (d.destinationId ? call(api.GET("/v1/destinations/{id}/types", { params: { path: { id: d.destinationId } } })) : Promise.resolve(null)),
    0,
    [d.destinationId],
  );
  const families = useMemo(() => (serverTypes.data ? new Set(serverTypes.data.families) : null), [serverTypes.data]);
  const offeredTypes = COMMON_TYPES.filter((t) => serverHas(t, families));

  const setColumns = (columns: WizardColumn[], sortingKey = d.sortingKey) =>
    setDestination(ctx, { columns, sortingKey: sortingKey.filter((id) => columns.some((c) => c.id === id)) });
  const updateColumn = (id: string, patch: Partial<WizardColumn>) => {
    setColumns(d.columns.map((c) => (c.id === id ? { ...c, ...patch } : c)));
    clear(ctx, Object.keys(patch).map((k) => `column.${id}.${k}`));
  };
  const toggleKey = (id: string) => {
    const next = d.sortingKey.includes(id) ? d.sortingKey.filter((k) => k !== id) : [...d.sortingKey, id];
    setDestination(ctx, { sortingKey: next });
    clear(ctx, ["destination.sortingKey"]);
  };
  const addColumn = () => {
    const virtual = virtuals.find((v) => v.name === addField);
    const taken = new Set(d.columns.map((c) => c.name));
    if (virtual) {
      let name = defaultColumnName(virtual.name);
      if (taken.has(name)) name = virtual.name;
      setColumns([...d.columns, { id: newColumnId(), name, type: fitType(virtual.type, families), sourceField: virtual.name }]);
    } else {
      setColumns([...d.columns, { id: newColumnId(), name: "", type: "String", sourceField: "" }]);
    }
    clear(ctx, ["destination.columns"]);
  };

  const preview = useMemo(() => previewRows(readable.slice(0, 5), d.columns, sourceName(state)), [readable, d.columns, state]);
  const byId = new Map(d.columns.map((c) => [c.id, c]));

  return (
    <div className="stack">
      <div className="row">
        <TextInput ctx={ctx} name="destination.table" label="Table name" value={d.table} onChange={(table) => setDestination(ctx, { table })} testId="table-name" />
        <Field label="Engine" name="destination.engine" error={ctx.errors["destination.engine"]} hint={ENGINES.find((e) => e.value === d.engine)?.description}>
          {(p) => (
            <select {...p} value={d.engine} onChange={(e) => setDestination(ctx, { engine: e.target.value as TableEngine })} data-testid="table-engine">
              {ENGINES.map((e) => (
                <option key={e.value} value={e.value}>
                  {e.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <TextInput
          ctx={ctx}
          name="destination.partitionBy"
          label={
            <>
              Partition by <span className="optional">optional</span>
            </>
          }
          value={d.partitionBy}
          onChange={(partitionBy) => setDestination(ctx, { partitionBy })}
          placeholder="toYYYYMM(created_at)"
          testId="partition-by"
        />
      </div>

      <section className="stack">
        <div className="section-head">
          <h3 className="section-title">Columns</h3>
          <div className="actions">
            {discovery.loading && <Spinner small label={fromSchema ? "Reading the schema" : "Inferring columns"} />}
            <Button small variant="ghost" onClick={reinfer} disabled={(!fromSchema && sample.length === 0) || discovery.loading} data-testid="reinfer-columns">
              {fromSchema ? "Read the schema again" : "Infer again from the sample"}
            </Button>
          </div>
        </div>
        {discovery.error && (
          <div className="notice notice-warn" data-testid="discovery-error">
            <p>{fromSchema ? `Could not read the columns from the schema: ${discovery.error}` : `Could not infer columns: ${discovery.error}`}</p>
            {fromSchema && (
              <Button small onClick={() => ctx.goTo(2)}>
                Check the message format
              </Button>
            )}
          </div>
        )}
        {fromSchema && discovery.data?.schema && !discovery.loading && <SchemaOrigin discovery={discovery.data} />}
        {!fromSchema && sample.length === 0 && d.columns.length === 0 && (
          <p className="notice">The sample is empty, so no columns could be inferred. Add them below: name, ClickHouse type, and the JSON field (dotted path) that fills each.</p>
        )}
        <FieldError name="destination.columns" error={ctx.errors["destination.columns"]} />
        <datalist id="ch-types" data-testid="offered-types" data-server-version={serverTypes.data?.version}>
          {offeredTypes.map((t) => (
            <option key={t} value={t} />
          ))}
        </datalist>
        <datalist id="source-fields">
          {fields.map((f) => (
            <option key={f} value={f} />
          ))}
          {virtuals.map((v) => (
            <option key={v.name} value={v.name}>
              {v.description}
            </option>
          ))}
        </datalist>
        {d.columns.length > 0 && (
          <div className="table-wrap">
            <table className="table table-edit" data-testid="columns-table">
              <thead>
                <tr>
                  <th scope="col">Column</th>
                  <th scope="col">Type</th>
                  <th scope="col">Filled from</th>
                  <th scope="col">Sorting key</th>
                  <th scope="col">
                    <span className="sr-only">Remove</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.columns.map((c, i) => {
                  const nameErr = ctx.errors[`column.${c.id}.name`];
                  const typeErr = ctx.errors[`column.${c.id}.type`];
                  const srcErr = ctx.errors[`column.${c.id}.sourceField`];
                  const keyIndex = d.sortingKey.indexOf(c.id);
                  return (
                    <tr key={c.id} data-testid={`column-row-${i}`}>
                      <td data-label="Column">
                        <input aria-label={`Column ${i + 1} name`} aria-invalid={nameErr ? true : undefined} value={c.name} onChange={(e) => updateColumn(c.id, { name: e.target.value })} data-testid={`column-name-${i}`} />
                        {nameErr && <p className="field-error" role="alert" data-testid={`error-column-${i}-name`}>{nameErr}</p>}
                      </td>
                      <td data-label="Type">
                        <input aria-label={`Column ${i + 1} type`} aria-invalid={typeErr ? true : undefined} list="ch-types" value={c.type} onChange={(e) => updateColumn(c.id, { type: e.target.value })} data-testid={`column-type-${i}`} />
                        {typeErr && <p className="field-error" role="alert" data-testid={`error-column-${i}-type`}>{typeErr}</p>}
                      </td>
                      <td data-label="Filled from">
                        <input aria-label={`Column ${i + 1} source field`} aria-invalid={srcErr ? true : undefined} list="source-fields" value={c.sourceField} placeholder={c.name} onChange={(e) => updateColumn(c.id, { sourceField: e.target.value })} data-testid={`column-source-${i}`} />
                        {srcErr && <p className="field-error" role="alert">{srcErr}</p>}
                      </td>
                      <td data-label="Sorting key">
                        <button
                          type="button"
                          className={`key-toggle ${keyIndex >= 0 ? "key-on" : ""}`}
                          aria-pressed={keyIndex >= 0}
                          aria-label={`Sorting key: ${c.name || `column ${i + 1}`}`}
                          onClick={() => toggleKey(c.id)}
                          data-testid={`sort-key-${i}`}
                        >
                          {keyIndex >= 0 ? `#${keyIndex + 1}` : "—"}
                        </button>
                      </td>
                      <td>
                        <button type="button" className="icon-btn" aria-label={`Remove column ${c.name || i + 1}`} onClick={() => setColumns(d.columns.filter((x) => x.id !== c.id))} data-testid={`column-remove-${i}`}>
                          ×
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        <div className="add-column">
          <label htmlFor="add-column-field">Add a column from</label>
          <select id="add-column-field" value={addField} onChange={(e) => setAddField(e.target.value)} data-testid="add-column-field">
            {virtuals.map((v) => (
              <option key={v.name} value={v.name}>
                {v.name} — {v.description} ({v.type})
              </option>
            ))}
            <option value="">{fromSchema ? "A message field (type it in)" : "A JSON field (type it in)"}</option>
          </select>
          <Button small onClick={addColumn} data-testid="add-column">
            Add column
          </Button>
        </div>
        <div className="sorting-key" data-testid="sorting-key">
          <span className="muted">ORDER BY</span>{" "}
          <code>({d.sortingKey.map((id) => byId.get(id)?.name).filter(Boolean).join(", ")})</code>
          {d.sortingKey.some((id) => !plainKeyType(byId.get(id)?.type ?? "")) && <span className="hint-warn"> Nullable and Array columns cannot be in the sorting key by default.</span>}
          <FieldError name="destination.sortingKey" error={ctx.errors["destination.sortingKey"]} />
        </div>
      </section>

      {readable.length > 0 && d.columns.length > 0 && (
        <section className="stack">
          <h3 className="section-title">How the sample lands</h3>
          {readable.length < sample.length && (
            <p className="muted small">
              {sample.length - readable.length} of the {sample.length} sample messages cannot be read as {state.format.format} and would go to the error table; they are left out here.
            </p>
          )}
          <div className="table-wrap table-scroll">
            <table className="table table-compact" data-testid="preview-table">
              <thead>
                <tr>
                  {d.columns.map((c) => (
                    <th key={c.id} scope="col">
                      {c.name || "?"}
                      <span className="col-type">{c.type}</span>
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {preview.map((row, i) => (
                  <tr key={i}>
                    {d.columns.map((c) => (
                      <td key={c.id} className={row[c.name] === null ? "muted" : ""}>
                        <span className="cell">{row[c.name] ?? (c.type.startsWith("Nullable") ? "NULL" : "default")}</span>
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
    </div>
  );
}

/** Where the columns came from, when a schema gave them. */
function SchemaOrigin({ discovery, fields }: { discovery: SchemaDiscovery; fields?: boolean }) {
  return (
    <p className="notice" data-testid="schema-origin" data-schema-id={discovery.schemaId ?? undefined}>
      <span>
        {fields ? "Fields" : "Columns"} from {discovery.schema}
        {discovery.schemaId !== undefined && discovery.schemaId !== null && !discovery.schema?.includes(`schema id ${discovery.schemaId}`) ? ` (schema id ${discovery.schemaId})` : ""}.
        {!fields && discovery.columns.some((c) => c.sourceField.includes(".")) && " Nested records are flattened: a column parent_child is filled from parent.child."}
      </span>
    </p>
  );
}

/** Field paths for the pickers: the sample's, and a schema's (which lists fields the sample may lack). */
function messageFields(sample: SampleMessage[], discovery: SchemaDiscovery | undefined): string[] {
  return [...new Set([...sampleFields(sample), ...(discovery?.columns ?? []).map((c) => c.sourceField)])].sort();
}

function ExistingTable({ ctx, database, sample, discovery }: { ctx: StepCtx; database: string; sample: SampleMessage[]; discovery: Loadable<SchemaDiscovery> }) {
  const { state } = ctx;
  const d = state.destination;
  const tables = usePoll(
    () =>
      d.destinationId
        ? call(api.GET("/v1/destinations/{id}/databases/{database}/tables", { params: { path: { id: d.destinationId, database } } }))
        : Promise.resolve(null),
    0,
    [d.destinationId, database],
  );
  const [tableError, setTableError] = useState<string | null>(null);
  const [loadingTable, setLoadingTable] = useState(false);

  const discovered = useMemo(() => discovery.data?.columns ?? [], [discovery.data]);
  const inferred = useMemo(() => new Map(discovered.map((c) => [c.sourceField, c.type])), [discovered]);
  const virtuals = virtualColumns(state.kind);
  const fields = useMemo(() => messageFields(sample, discovery.data), [sample, discovery.data]);
  const typeOf = (field: string) => virtuals.find((v) => v.name === field)?.type ?? inferred.get(field);

  async function chooseTable(table: string) {
    setDestination(ctx, { existingTable: table, existingColumns: [], mappings: {} });
    setTableError(null);
    if (!table) return;
    setLoadingTable(true);
    try {
      const info = await call(api.GET("/v1/destinations/{id}/databases/{database}/tables/{table}", { params: { path: { id: d.destinationId, database, table } } }));
      const mappings: Record<string, string> = {};
      for (const c of info.columns) {
        if (c.defaultKind === "MATERIALIZED" || c.defaultKind === "ALIAS") continue;
        const byName = fields.find((f) => f === c.name) ?? discovered.find((x) => x.name === c.name)?.sourceField;
        mappings[c.name] = byName ?? "";
      }
      setDestination(ctx, { existingTable: table, existingColumns: info.columns, mappings });
    } catch (e) {
      setTableError(errorMessage(e));
    } finally {
      setLoadingTable(false);
    }
  }

  if (!d.destinationId) return <p className="muted">Choose a destination first.</p>;
  return (
    <div className="stack">
      <Field label="Table" name="destination.existingTable" error={ctx.errors["destination.existingTable"]} hint={tables.error ? `Cannot list tables: ${errorMessage(tables.error)}` : undefined}>
        {(p) =>
          tables.loading && !tables.data ? (
            <div className="loading-inline">
              <Spinner small /> Listing tables in {database}…
            </div>
          ) : (
            <select {...p} value={d.existingTable} onChange={(e) => void chooseTable(e.target.value)} data-testid="existing-table-select">
              <option value="">Choose a table…</option>
              {(tables.data?.tables ?? []).map((t) => (
                <option key={t.name} value={t.name}>
                  {t.name} ({t.engine})
                </option>
              ))}
            </select>
          )
        }
      </Field>
      {tables.data && tables.data.tables.length === 0 && <p className="muted">No tables in {database}. Choose “New table” to have one created.</p>}
      {state.format.format !== "JSONEachRow" && discovery.data?.schema && <SchemaOrigin discovery={discovery.data} fields />}
      {state.format.format !== "JSONEachRow" && discovery.error && <p className="notice notice-warn">Could not read the fields from the schema: {discovery.error}</p>}
      {loadingTable && <Loading label="Reading the table's columns…" />}
      {tableError && <ErrorState error={tableError} onRetry={() => void chooseTable(d.existingTable)} />}
      <FieldError name="destination.columns" error={ctx.errors["destination.columns"]} />
      {d.existingColumns.length > 0 && (
        <div className="table-wrap">
          <table className="table table-edit" data-testid="mapping-table">
            <thead>
              <tr>
                <th scope="col">Column</th>
                <th scope="col">Type</th>
                <th scope="col">Filled from</th>
                <th scope="col">Compatibility</th>
              </tr>
            </thead>
            <tbody>
              {d.existingColumns.map((c, i) => {
                const computed = c.defaultKind === "MATERIALIZED" || c.defaultKind === "ALIAS";
                const source = d.mappings[c.name] ?? "";
                const hint = source ? compatibility(typeOf(source), c.type) : null;
                const err = ctx.errors[`mapping.${c.name}`];
                return (
                  <tr key={c.name} data-testid={`mapping-row-${i}`}>
                    <td data-label="Column">
                      <code>{c.name}</code>
                    </td>
                    <td data-label="Type">
                      <code>{c.type}</code>
                      {c.defaultKind && <span className="muted small"> {c.defaultKind}</span>}
                    </td>
                    <td data-label="Filled from">
                      {computed ? (
                        <span className="muted">computed by ClickHouse</span>
                      ) : (
                        <select
                          aria-label={`Source field for ${c.name}`}
                          aria-invalid={err ? true : undefined}
                          value={source}
                          onChange={(e) => {
                            setDestination(ctx, { mappings: { ...d.mappings, [c.name]: e.target.value } });
                            clear(ctx, [`mapping.${c.name}`, "destination.columns"]);
                          }}
                          data-testid={`mapping-source-${i}`}
                        >
                          <option value="">— not filled (column default)</option>
                          <optgroup label="Message fields">
                            {fields.map((f) => (
                              <option key={f} value={f}>
                                {f}
                                {inferred.get(f) ? ` (${inferred.get(f)})` : ""}
                              </option>
                            ))}
                          </optgroup>
                          <optgroup label="Record metadata">
                            {virtuals.map((v) => (
                              <option key={v.name} value={v.name}>
                                {v.name} ({v.type})
                              </option>
                            ))}
                          </optgroup>
                          {source && !fields.includes(source) && !virtuals.some((v) => v.name === source) && <option value={source}>{source}</option>}
                        </select>
                      )}
                      {err && <p className="field-error" role="alert">{err}</p>}
                    </td>
                    <td data-label="Compatibility">
                      {hint && (
                        <span className={`compat compat-${hint.level}`} data-testid={`compat-${i}`}>
                          {hint.message}
                        </span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
