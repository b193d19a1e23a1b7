import { useMemo, useState } from "react";
import type { Format, IteratorType, OffsetStrategy, SampleMessage } from "../../api/types";
import { Button, ErrorState, Field, Loading } from "../../components/ui";
import { formatTime } from "../../lib/format";
import { decodeSummary, sampleFormatHint } from "../../lib/messageFormat";
import { isBinary, parseMessage } from "../../lib/preview";
import { RadioCards, TextInput, setKafka, setKinesis, type StepCtx } from "./common";

export interface Loadable<T> {
  key: string;
  data?: T;
  error?: string;
  loading: boolean;
}

export interface SourceItem {
  name: string;
  meta: string;
}

interface Props {
  ctx: StepCtx;
  items: Loadable<SourceItem[]>;
  sample: Loadable<SampleMessage[]>;
  reloadItems(): void;
  reloadSample(): void;
}

export function StepData({ ctx, items, sample, reloadItems, reloadSample }: Props) {
  const { state } = ctx;
  const kafka = state.kind === "kafka";
  const selected = kafka ? state.kafka.topic : state.kinesis.streamName;
  const noun = kafka ? "topic" : "stream";
  const [filter, setFilter] = useState("");
  const visible = useMemo(
    () => (items.data ?? []).filter((t) => t.name.toLowerCase().includes(filter.trim().toLowerCase())),
    [items.data, filter],
  );
  const select = (name: string) => (kafka ? setKafka(ctx, { topic: name }) : setKinesis(ctx, { streamName: name }));
  const fieldKey = kafka ? "kafka.topic" : "kinesis.streamName";
  const hint = useMemo(() => sampleFormatHint(sample.data ?? [], state.format.format), [sample.data, state.format.format]);

  return (
    <div className="stack">
      <div className="grid grid-2 grid-top">
        <fieldset className="fieldset">
          <legend>{kafka ? "Topic" : "Stream"}</legend>
          {items.loading && !items.data ? (
            <Loading label={`Listing ${noun}s…`} />
          ) : items.error && !items.data ? (
            <ErrorState error={items.error} onRetry={reloadItems} busy={items.loading} />
          ) : (
            <>
              <div className="picker-tools">
                <input
                  type="search"
                  aria-label={`Filter ${noun}s`}
                  placeholder={`Filter ${noun}s`}
                  value={filter}
                  onChange={(e) => setFilter(e.target.value)}
                  data-testid="source-filter"
                />
                <Button small variant="ghost" onClick={reloadItems} busy={items.loading} data-testid="source-reload">
                  Reload
                </Button>
              </div>
              {items.data && items.data.length === 0 ? (
                <p className="muted">No {noun}s found. Create one and reload.</p>
              ) : (
                <div className="picker" role="radiogroup" aria-label={kafka ? "Topic" : "Stream"} data-testid="source-list">
                  {visible.map((t) => (
                    <label key={t.name} className={`picker-item ${selected === t.name ? "picker-selected" : ""}`}>
                      <input type="radio" name="source-item" value={t.name} checked={selected === t.name} onChange={() => select(t.name)} data-testid={`source-option-${t.name}`} />
                      <span className="picker-name">{t.name}</span>
                      <span className="picker-meta">{t.meta}</span>
                    </label>
                  ))}
                  {visible.length === 0 && <p className="muted small">Nothing matches “{filter}”.</p>}
                </div>
              )}
            </>
          )}
          {ctx.errors[fieldKey] && (
            <p className="field-error" role="alert" data-testid={`error-${fieldKey}`}>
              {ctx.errors[fieldKey]}
            </p>
          )}
        </fieldset>

        <div className="stack">
          {kafka ? <KafkaOffset ctx={ctx} /> : <KinesisStart ctx={ctx} />}
        </div>
      </div>

      <section className="sample" aria-labelledby="sample-title" data-testid="sample">
        <div className="section-head">
          <h3 id="sample-title" className="section-title">
            {kafka ? "Newest messages" : "Sample records"} {selected && <span className="muted">from {selected}</span>}
            {state.format.format !== "JSONEachRow" && <span className="muted"> read as {state.format.format}</span>}
          </h3>
          <Button small onClick={reloadSample} busy={sample.loading} disabled={!selected} data-testid="sample-refresh">
            Refresh
          </Button>
        </div>
        {!selected ? (
          <p className="muted">{kafka ? "Choose a topic to see its newest messages." : "Choose a stream to see its first records (Kinesis reads from the oldest)."}</p>
        ) : sample.loading && !sample.data ? (
          <Loading label={kafka ? "Reading the newest messages…" : "Reading records…"} />
        ) : sample.error ? (
          <div className="stack" data-testid="sample-error">
            <ErrorState error={sample.error} onRetry={reloadSample} busy={sample.loading} />
            {state.format.format !== "JSONEachRow" && (
              <div>
                <Button small onClick={() => ctx.goTo(2)} data-testid="sample-change-format">
                  Check the message format
                </Button>
              </div>
            )}
          </div>
        ) : sample.data && sample.data.length === 0 ? (
          <p className="muted" data-testid="sample-empty">
            No messages yet in this {noun}. You can still go on:{" "}
            {state.format.format === "JSONEachRow" ? "add the columns by hand in the next step, or refresh once data arrives." : "the next step reads the columns from the schema."}
          </p>
        ) : (
          <>
            {hint && (
              <div className="notice notice-warn" data-testid="sample-format-hint">
                <p>{hint}</p>
                <Button small onClick={() => ctx.goTo(2)} data-testid="sample-change-format">
                  Change the message format
                </Button>
              </div>
            )}
            <SampleList messages={sample.data ?? []} format={state.format.format} />
          </>
        )}
      </section>
    </div>
  );
}

export function SampleList({ messages, format }: { messages: SampleMessage[]; format: Format }) {
  const [view, setView] = useState<"decoded" | "raw">("decoded");
  const summary = decodeSummary(messages);
  const decoding = format !== "JSONEachRow";
  return (
    <div className="stack">
      {decoding && (
        <div className="section-head">
          <p className={summary.failed ? "text-warn" : "muted"} data-testid="sample-summary" data-decoded={summary.decoded} data-failed={summary.failed}>
            {summary.failed === 0
              ? `All ${messages.length} read as ${format}`
              : `${summary.decoded} of ${messages.length} read as ${format}; ${summary.failed} cannot be read and would go to the error table`}
            {summary.schemaIds.length > 0 && ` (schema id${summary.schemaIds.length === 1 ? "" : "s"} ${summary.schemaIds.join(", ")})`}.
          </p>
          {summary.decoded > 0 && (
            <div className="segmented" role="group" aria-label="Show messages">
              <button type="button" aria-pressed={view === "decoded"} onClick={() => setView("decoded")} data-testid="sample-view-decoded">
                Decoded
              </button>
              <button type="button" aria-pressed={view === "raw"} onClick={() => setView("raw")} data-testid="sample-view-raw">
                Raw
              </button>
            </div>
          )}
        </div>
      )}
      <ol className="sample-list" data-testid="sample-messages">
        {messages.map((m, i) => {
          const binary = isBinary(m);
          const decoded = m.decoded !== undefined && m.decoded !== null && view === "decoded";
          const parsed = decoded || binary || decoding ? undefined : parseMessage(m.value);
          return (
            <li
              key={`${m.partition ?? m.shardId}-${m.offset ?? m.sequenceNumber}-${i}`}
              className="sample-item"
              data-testid="sample-message"
              data-decoded={decoded ? "true" : undefined}
              data-decode-error={m.decodeError ? "true" : undefined}
            >
              <div className="sample-meta">
                {m.partition !== undefined && m.partition !== null && <span>partition {m.partition}</span>}
                {m.offset !== undefined && m.offset !== null && <span>offset {m.offset}</span>}
                {m.shardId && <span>{m.shardId}</span>}
                {m.sequenceNumber && <span title={m.sequenceNumber}>seq …{m.sequenceNumber.slice(-8)}</span>}
                {m.key && <span>key {m.key}</span>}
                {m.timestamp && <span>{formatTime(m.timestamp)}</span>}
                {m.schemaId !== undefined && m.schemaId !== null && (
                  <span className="tag" data-testid="sample-schema-id" data-schema-id={m.schemaId}>
                    schema id {m.schemaId}
                  </span>
                )}
                {decoded ? null : binary ? <span className="text-warn">binary (base64)</span> : !decoding && parsed === undefined && <span className="text-warn">not JSON</span>}
              </div>
              {m.decodeError && (
                <p className="sample-error" data-testid="sample-decode-error">
                  Cannot be read as {format}: {m.decodeError}. The pipe would put this message in the error table.
                </p>
              )}
              <pre className="sample-value" data-testid={decoded ? "sample-decoded" : "sample-raw"}>
                {decoded ? JSON.stringify(m.decoded, null, 2) : parsed !== undefined ? JSON.stringify(parsed, null, 2) : m.value}
              </pre>
            </li>
          );
        })}
      </ol>
    </div>
  );
}

const KAFKA_OFFSETS: { value: OffsetStrategy; label: string; description: string }[] = [
  { value: "from_beginning", label: "From the beginning", description: "Everything still in the topic" },
  { value: "from_latest", label: "From now", description: "Only messages produced from now on" },
  { value: "from_timestamp", label: "From a time", description: "Messages since a moment" },
];

function KafkaOffset({ ctx }: { ctx: StepCtx }) {
  const k = ctx.state.kafka;
  return (
    <>
      <RadioCards
        name="kafka.offset"
        legend="Start reading"
        value={k.offsetStrategy}
        options={KAFKA_OFFSETS}
        onChange={(offsetStrategy) => setKafka(ctx, { offsetStrategy })}
        testIdPrefix="offset"
        columns={1}
        error={ctx.errors["kafka.offset"]}
      />
      {k.offsetStrategy === "from_timestamp" && (
        <TextInput ctx={ctx} name="kafka.offsetTimestamp" label="Start time (your local time)" type="datetime-local" value={k.offsetTimestamp} onChange={(offsetTimestamp) => setKafka(ctx, { offsetTimestamp })} testId="offset-timestamp" />
      )}
      <label className="switch">
        <input type="checkbox" checked={k.readCommitted} onChange={(e) => setKafka(ctx, { readCommitted: e.target.checked })} data-testid="read-committed" />
        <span>Read committed only (skip aborted transactional messages)</span>
      </label>
    </>
  );
}

const ITERATORS: { value: IteratorType; label: string; description: string }[] = [
  { value: "TRIM_HORIZON", label: "Oldest (TRIM_HORIZON)", description: "Everything still in the stream" },
  { value: "LATEST", label: "Newest (LATEST)", description: "Only records put from now on" },
  { value: "AT_TIMESTAMP", label: "At a time (AT_TIMESTAMP)", description: "Records since a moment" },
];

function KinesisStart({ ctx }: { ctx: StepCtx }) {
  const k = ctx.state.kinesis;
  return (
    <>
      <RadioCards
        name="kinesis.iteratorType"
        legend="Start reading"
        value={k.iteratorType}
        options={ITERATORS}
        onChange={(iteratorType) => setKinesis(ctx, { iteratorType })}
        testIdPrefix="iterator"
        columns={1}
        error={ctx.errors["kinesis.iteratorType"]}
      />
      {k.iteratorType === "AT_TIMESTAMP" && (
        <TextInput ctx={ctx} name="kinesis.timestamp" label="Start time (your local time)" type="datetime-local" value={k.timestamp} onChange={(timestamp) => setKinesis(ctx, { timestamp })} testId="iterator-timestamp" />
      )}
      <Field label="Enhanced fan-out" name="kinesis.useEnhancedFanOut" error={ctx.errors["kinesis.useEnhancedFanOut"]} hint="A dedicated 2 MB/s per shard through a registered stream consumer (extra AWS cost); otherwise shared polling.">
        {(p) => (
          <label className="switch">
            <input {...p} type="checkbox" role="switch" checked={k.useEnhancedFanOut} onChange={(e) => setKinesis(ctx, { useEnhancedFanOut: e.target.checked })} data-testid="enhanced-fan-out" />
            <span>{k.useEnhancedFanOut ? "On" : "Off"}</span>
          </label>
        )}
      </Field>
    </>
  );
}
