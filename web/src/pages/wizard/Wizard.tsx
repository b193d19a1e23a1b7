// The new-pipe wizard (#/new): seven steps, each a form (Enter = Next).
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError, api, call, errorMessage } from "../../api/client";
import type { SampleMessage, SchemaDiscovery } from "../../api/types";
import { useToast } from "../../components/Toasts";
import { Button } from "../../components/ui";
import { mapFieldErrors, pointerToField, stepOfField } from "../../lib/pointer";
import { href, navigate } from "../../lib/router";
import { isBinary } from "../../lib/preview";
import { formatFields } from "../../lib/messageFormat";
import { STEPS, buildPipeSpec, buildSource, connectionSource, defaultSortingKey, initialWizardState, newColumnId, sourceName, tableNameFor, validateStep, type FieldErrors, type WizardColumn, type WizardState } from "../../lib/wizard";
import type { StepCtx } from "./common";
import { StepConnection } from "./StepConnection";
import { StepData, type Loadable, type SourceItem } from "./StepData";
import { StepDestination } from "./StepDestination";
import { StepPermissions, StepReview, StepScaling } from "./StepFinish";
import { StepSource } from "./StepSource";

const idle = <T,>(): Loadable<T> => ({ key: "", loading: false });

/** Identifies the connection (not the topic, offsets or format): lists are refetched when it changes. */
function connectionKey(state: WizardState): string {
  const s = connectionSource({ ...state, kafka: { ...state.kafka, topic: "", offsetStrategy: "from_beginning", offsetTimestamp: "" }, kinesis: { ...state.kinesis, streamName: "", iteratorType: "TRIM_HORIZON", timestamp: "" } });
  return JSON.stringify(s);
}

/** Identifies what the sample is read as: the sample (and the columns from it) follow it. */
function formatKey(state: WizardState): string {
  return JSON.stringify(formatFields(state.format));
}

function sourceError(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.fieldErrors.length) {
      const format = e.fieldErrors.some((f) => pointerToField(f.pointer).field.startsWith("format."));
      // The registry's answers (subject not found, ...) come on `/format`, which says nothing more.
      const field = (pointer: string) => (pointer.endsWith("/format") ? "" : `${pointer.split("/").pop()} `);
      return `${format ? "Check the message format (step 2)" : "Check the connection details"}: ${e.fieldErrors.map((f) => `${field(f.pointer)}${f.message}`).join("; ")}`;
    }
    if (e.kind === "source-unreachable") return `Cannot reach the source: ${e.message}`;
  }
  return errorMessage(e);
}

/**
 * The connection step's fields a sample or discovery request was refused
 * for (the registry's answers land on the format): shown there, and the
 * step is marked.
 */
function connectionFieldErrors(e: unknown): Record<string, string> {
  if (!(e instanceof ApiError) || !e.fieldErrors.length) return {};
  return Object.fromEntries(Object.entries(mapFieldErrors(e.fieldErrors).fields).filter(([k]) => stepOfField(k) === 2));
}

export function Wizard() {
  const toast = useToast();
  const [state, setState] = useState<WizardState>(initialWizardState);
  const [step, setStep] = useState(1);
  const [visited, setVisited] = useState(1);
  const [errors, setErrorsState] = useState<FieldErrors>({});
  const [creating, setCreating] = useState(false);
  const [items, setItems] = useState<Loadable<SourceItem[]>>(idle);
  const [sample, setSample] = useState<Loadable<SampleMessage[]>>(idle);
  const [discovery, setDiscovery] = useState<Loadable<SchemaDiscovery>>(idle);
  const stateRef = useRef(state);
  stateRef.current = state;
  const headingRef = useRef<HTMLHeadingElement>(null);

  const update = useCallback((fn: (s: WizardState) => WizardState) => setState((s) => fn(s)), []);
  const setErrors = useCallback((patch: Record<string, string | undefined>) => {
    setErrorsState((prev) => {
      const next = { ...prev };
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined) delete next[k];
        else next[k] = v;
      }
      return next;
    });
  }, []);

  const goTo = useCallback((n: number) => {
    setStep(n);
    setVisited((v) => Math.max(v, n));
    window.scrollTo({ top: 0 });
    window.setTimeout(() => headingRef.current?.focus(), 0);
  }, []);

  // Step 3: the topics or streams of the connection.
  const loadItems = useCallback(async () => {
    const s = stateRef.current;
    const key = connectionKey(s);
    setItems((prev) => ({ ...prev, key, loading: true, error: undefined }));
    try {
      const source = connectionSource(s);
      const list: SourceItem[] =
        s.kind === "kafka"
          ? (await call(api.POST("/v1/sources/topics", { body: { source } }))).topics.map((t) => ({ name: t.name, meta: `${t.partitions} partition${t.partitions === 1 ? "" : "s"}` }))
          : (await call(api.POST("/v1/sources/streams", { body: { source } }))).streams.map((t) => ({
              name: t.name,
              meta: [t.status, t.shards !== undefined && t.shards !== null ? `${t.shards} shard${t.shards === 1 ? "" : "s"}` : ""].filter(Boolean).join(" · "),
            }));
      setItems({ key, data: list, loading: false });
    } catch (e) {
      setItems({ key, loading: false, error: sourceError(e) });
    }
  }, []);

  const loadSample = useCallback(async () => {
    const s = stateRef.current;
    const key = sampleKeyOf(s);
    if (!sourceName(s)) return;
    setSample((prev) => ({ ...prev, key, loading: true, error: undefined, data: prev.key === key ? prev.data : undefined }));
    try {
      const result = await call(api.POST("/v1/sources/sample", { body: { source: buildSource(s), limit: 10 } }));
      setSample((prev) => (prev.key === key ? { key, data: result.messages, loading: false } : prev));
    } catch (e) {
      if (sampleKeyOf(stateRef.current) === key) setErrors(connectionFieldErrors(e));
      setSample((prev) => (prev.key === key ? { key, loading: false, error: sourceError(e) } : prev));
    }
  }, [setErrors]);

  const sampleRef = useRef(sample);
  sampleRef.current = sample;
  /** The columns last filled in by inference: replaced on re-inference until the user edits them. */
  const inferredRef = useRef<WizardColumn[] | null>(null);

  const infer = useCallback(
    async (replace: boolean) => {
      const s = stateRef.current;
      const current = sampleRef.current;
      const destinationId = s.destination.destinationId || undefined;
      const key = discoveryKey(current.key, destinationId);
      // Avro and Protobuf: the columns come from the schema, sample or not.
      const fromSchema = s.format.format !== "JSONEachRow";
      const messages = fromSchema ? [] : (current.data ?? []).filter((m) => !isBinary(m));
      if (!fromSchema && messages.length === 0) return;
      setDiscovery({ key, loading: true });
      const body = { samples: messages.map((m) => m.value), ...(fromSchema ? { source: buildSource(s) } : {}) };
      try {
        let result;
        try {
          result = await call(api.POST("/v1/schema-discovery", { body: { ...body, destinationId } }));
        } catch (e) {
          // The destination's server decides some types; without it, generic ones.
          if (!(destinationId && e instanceof ApiError && e.status === 502 && e.kind !== "source-unreachable")) throw e;
          result = await call(api.POST("/v1/schema-discovery", { body }));
        }
        setDiscovery({ key, data: result, loading: false });
        const existing = stateRef.current.destination.columns;
        if (replace || existing.length === 0 || existing === inferredRef.current) {
          const columns = result.columns.map((c) => ({ id: newColumnId(), name: c.name, type: c.type, sourceField: c.sourceField }));
          inferredRef.current = columns;
          update((st) => ({
            ...st,
            destination: {
              ...st.destination,
              columns,
              sortingKey: defaultSortingKey(columns),
              table: st.destination.table || tableNameFor(sourceName(s)),
            },
          }));
        }
        if (result.unparsed > 0) toast.info(`${result.unparsed} sample message${result.unparsed === 1 ? " was" : "s were"} not JSON objects and were left out`);
      } catch (e) {
        setErrors(connectionFieldErrors(e));
        setDiscovery({ key, loading: false, error: fromSchema ? sourceError(e) : errorMessage(e) });
      }
    },
    [toast, update, setErrors],
  );

  // Entering step 3 (or changing the connection): list topics/streams.
  const connKey = connectionKey(state);
  useEffect(() => {
    if (step === 3 && items.key !== connKey && !items.loading) void loadItems();
  }, [step, connKey, items.key, items.loading, loadItems]);

  // A topic/stream chosen: read a sample.
  const sampleKey = sampleKeyOf(state);
  useEffect(() => {
    // A newer request supersedes one in flight (answers are matched by key).
    if (step >= 3 && sourceName(state) && sample.key !== sampleKey) void loadSample();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [step, sampleKey]);

  // Step 4 with a sample: infer the columns, again when the destination
  // (whose server decides some types) or the sample changes.
  const discKey = discoveryKey(sample.key, state.destination.destinationId || undefined);
  useEffect(() => {
    const ready = state.format.format !== "JSONEachRow" ? sample.key !== "" : sample.data && sample.data.length > 0;
    if (step === 4 && ready && discovery.key !== discKey && !discovery.loading) void infer(false);
    if (step === 4 && !state.destination.table && sourceName(state)) update((s) => ({ ...s, destination: { ...s.destination, table: tableNameFor(sourceName(s)) } }));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [step, discKey, sample.data, discovery.loading]);

  const ctx: StepCtx = { state, update, errors, setErrors, goTo };

  async function create() {
    const { spec, owners } = buildPipeSpec(state);
    setCreating(true);
    setErrorsState({});
    try {
      const pipe = await call(api.POST("/v1/pipes", { body: spec }));
      if (state.startNow) {
        try {
          await call(api.PATCH("/v1/pipes/{id}/state", { params: { path: { id: pipe.id } }, body: { command: "start" } }));
          toast.success(`Pipe “${pipe.name}” created and starting`);
        } catch (e) {
          toast.error(`Pipe “${pipe.name}” was created but could not be started`, errorMessage(e));
        }
      } else {
        toast.success(`Pipe “${pipe.name}” created`, "It is stopped; start it when you are ready.");
      }
      navigate(href.pipe(pipe.id));
    } catch (e) {
      if (e instanceof ApiError && e.fieldErrors.length) {
        const mapped = mapFieldErrors(e.fieldErrors, owners, state.destination.mode);
        setErrorsState(mapped.fields);
        const target = mapped.firstStep ?? 7;
        toast.error("The pipe was not created", target === 7 ? e.message : `Fix the highlighted fields (step ${target}: ${STEPS[target - 1].title}).`);
        goTo(target);
        focusFirstInvalid();
      } else {
        setErrorsState({ form: errorMessage(e) });
        toast.error("The pipe was not created", errorMessage(e));
      }
    } finally {
      setCreating(false);
    }
  }

  function next(e: FormEvent) {
    e.preventDefault();
    if (step === STEPS.length) {
      void create();
      return;
    }
    const local = validateStep(step, state);
    if (Object.keys(local).length) {
      setErrorsState((prev) => ({ ...prev, ...local }));
      focusFirstInvalid();
      return;
    }
    goTo(step + 1);
  }

  const title = STEPS[step - 1].title;
  const errorSteps = new Set(Object.keys(errors).map(stepOfField));
  return (
    <div className="page wizard">
      <div className="page-header">
        <div>
          <h1>New pipe</h1>
          <p className="muted">Stream a Kafka topic or Kinesis stream into a ClickHouse table.</p>
        </div>
        <a className="btn btn-ghost" href={href.pipes}>
          Cancel
        </a>
      </div>
      <nav aria-label="Wizard steps">
        <ol className="steps">
          {STEPS.map((s) => {
            const hasError = errorSteps.has(s.n);
            return (
              <li key={s.n} className={`step ${s.n === step ? "step-current" : ""} ${s.n < step ? "step-done" : ""} ${hasError ? "step-error" : ""}`}>
                <button type="button" onClick={() => goTo(s.n)} disabled={s.n > visited} aria-current={s.n === step ? "step" : undefined} data-testid={`step-indicator-${s.n}`}>
                  <span className="step-number">{s.n < step && !hasError ? "✓" : s.n}</span>
                  <span className="step-title">{s.title}</span>
                </button>
              </li>
            );
          })}
        </ol>
      </nav>
      <form className="card wizard-card" onSubmit={next} noValidate data-testid={`wizard-step-${step}`}>
        <h2 ref={headingRef} tabIndex={-1} className="wizard-title">
          {step}. {stepHeading(step, state.kind, title)}
        </h2>
        {step === 1 && <StepSource ctx={ctx} />}
        {step === 2 && <StepConnection ctx={ctx} />}
        {step === 3 && <StepData ctx={ctx} items={items} sample={sample} reloadItems={() => void loadItems()} reloadSample={() => void loadSample()} />}
        {step === 4 && <StepDestination ctx={ctx} sample={sample.data ?? []} discovery={discovery} reinfer={() => void infer(true)} />}
        {step === 5 && <StepPermissions ctx={ctx} />}
        {step === 6 && <StepScaling ctx={ctx} />}
        {step === 7 && <StepReview ctx={ctx} />}
        <div className="wizard-footer">
          <Button onClick={() => goTo(step - 1)} disabled={step === 1 || creating} data-testid="wizard-back">
            Back
          </Button>
          {step < STEPS.length ? (
            <Button type="submit" variant="primary" data-testid="wizard-next">
              Next: {STEPS[step].title}
            </Button>
          ) : (
            <Button type="submit" variant="primary" busy={creating} data-testid="wizard-create">
              {creating ? "Creating…" : state.startNow ? "Create and start" : "Create pipe"}
            </Button>
          )}
        </div>
      </form>
    </div>
  );
}

function sampleKeyOf(state: WizardState): string {
  return `${connectionKey(state)}|${formatKey(state)}|${sourceName(state)}`;
}

function discoveryKey(sampleKey: string, destinationId: string | undefined): string {
  return `${sampleKey}|${destinationId ?? ""}`;
}

function stepHeading(step: number, kind: "kafka" | "kinesis", title: string): string {
  switch (step) {
    case 1:
      return "Choose the source";
    case 2:
      return kind === "kafka" ? "Connect to Kafka" : "Connect to Kinesis";
    case 3:
      return kind === "kafka" ? "Choose the topic" : "Choose the stream";
    case 4:
      return "Choose where rows land";
    case 5:
      return "Permissions";
    case 6:
      return "Scaling";
    default:
      return title;
  }
}

function focusFirstInvalid() {
  window.setTimeout(() => {
    const el = document.querySelector<HTMLElement>('[aria-invalid="true"], .field-error');
    el?.scrollIntoView({ block: "center" });
    if (el && "focus" in el && el.matches("input,select,textarea")) el.focus();
  }, 50);
}
