import { useEffect, useMemo, useState, type FormEvent } from "react";
import { ApiError, api, call, errorMessage } from "../api/client";
import type { Pipe, PipeMetrics, PipeRows, PipeSettings, PipeStatus } from "../api/types";
import { PipeActions } from "../components/PipeActions";
import { ScalingFields, type ScalingValue } from "../components/ScalingFields";
import { TimeSeriesChart } from "../components/TimeSeriesChart";
import { useToast } from "../components/Toasts";
import { Button, Card, EmptyState, ErrorState, Facts, Field, Loading, Spinner, StateBadge } from "../components/ui";
import { formatBytes, formatDuration, formatLag, formatNumber, formatTime, relativeTime } from "../lib/format";
import { usePoll } from "../lib/hooks";
import { fillHistory, seriesSummary } from "../lib/metrics";
import { displayValue } from "../lib/preview";
import { href, navigate } from "../lib/router";
import { useSession } from "../lib/session";
import { POLL_MS, destinationLabel, sourceLabel } from "./PipesList";

const WINDOWS = [
  { minutes: 15, label: "15 min" },
  { minutes: 60, label: "1 hour" },
  { minutes: 360, label: "6 hours" },
];

export function PipeDetail({ id }: { id: string }) {
  const { canEdit } = useSession();
  const path = { params: { path: { id } } };
  const pipe = usePoll(() => call(api.GET("/v1/pipes/{id}", path)), POLL_MS, [id]);
  const status = usePoll(() => call(api.GET("/v1/pipes/{id}/status", path)), POLL_MS, [id]);
  const metrics = usePoll(() => call(api.GET("/v1/pipes/{id}/metrics", path)), POLL_MS, [id]);

  const gone = pipe.error instanceof ApiError && pipe.error.status === 404;
  const reloadAll = () => {
    void pipe.reload();
    void status.reload();
    void metrics.reload();
  };

  if (gone) {
    return (
      <div className="page">
        <EmptyState title="This pipe no longer exists" action={<a className="btn btn-primary" href={href.pipes}>Back to pipes</a>}>
          It may have been deleted.
        </EmptyState>
      </div>
    );
  }
  if (!pipe.data) {
    return (
      <div className="page">
        {pipe.error ? <ErrorState error={`Could not load the pipe: ${errorMessage(pipe.error)}`} onRetry={() => void pipe.reload()} /> : <Loading label="Loading the pipe…" />}
      </div>
    );
  }

  const p = pipe.data;
  const state = status.data?.state ?? p.state;
  const src = sourceLabel(p);
  return (
    <div className="page" data-testid="pipe-detail" data-pipe-id={p.id}>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <a href={href.pipes}>Pipes</a> <span aria-hidden="true">/</span> <span>{p.name}</span>
      </nav>
      <div className="page-header">
        <div>
          <h1 className="with-badge">
            <span data-testid="pipe-name">{p.name}</span> <StateBadge state={state} />
          </h1>
          <p className="muted">
            {p.description || (
              <>
                {src.kind} <strong>{src.name}</strong> → <code>{destinationLabel(p)}</code>
              </>
            )}
          </p>
        </div>
        <div className="page-actions">
          {(pipe.loading || status.loading) && <Spinner small label="Refreshing" />}
          {canEdit && <PipeActions pipe={{ ...p, state }} onChanged={reloadAll} onDeleted={() => navigate(href.pipes)} />}
        </div>
      </div>

      <div className="grid grid-2">
        <StatusCard pipe={p} status={status.data} error={status.error} />
        <TotalsCard pipe={p} metrics={metrics.data} />
      </div>

      <Charts pipe={p} />

      <div className="grid grid-2">
        <PlacementsCard status={status.data} metrics={metrics.data} />
        <EventsCard id={id} />
      </div>

      <NewestRows id={id} />
      <RecentErrors id={id} />

      <div className="grid grid-2">
        <SettingsEditor id={id} canEdit={canEdit} />
        <ScalingEditor pipe={p} canEdit={canEdit} onSaved={reloadAll} />
      </div>
    </div>
  );
}

function StatusCard({ pipe, status, error }: { pipe: Pipe; status?: PipeStatus; error: unknown }) {
  const source =
    "kafka" in pipe.source
      ? [["Brokers", <code key="b">{pipe.source.kafka.brokers}</code>], ["Topic", pipe.source.kafka.topics.join(", ")]]
      : [["Stream", pipe.source.kinesis.streamName], ["Region", pipe.source.kinesis.region]];
  return (
    <Card title="Status" testId="status-card">
      {error != null && !status && <p className="notice notice-warn">Status unavailable: {errorMessage(error)}</p>}
      <Facts
        items={[
          ["State", <StateBadge key="s" state={status?.state ?? pipe.state} />],
          ["Desired state", <span key="d" data-testid="desired-state">{status?.desiredState ?? "—"}</span>],
          [
            "Replicas ready / desired",
            <span key="r" data-testid="replicas">
              {status ? `${status.replicas.ready} / ${status.replicas.desired}` : "—"}
            </span>,
          ],
          ["State since", status ? `${formatTime(status.stateChangedAt)} (${relativeTime(status.stateChangedAt)})` : "—"],
          ["Generation", String(status?.generation ?? pipe.generation)],
          ...(source as [string, React.ReactNode][]),
          ["Destination", <code key="t">{destinationLabel(pipe)}</code>],
          ["Table", pipe.destination.managedTable ? "Created by Sluice" : "Existing table"],
        ]}
      />
      {status?.lastError && (
        <div className="last-error" role="alert" data-testid="last-error">
          <strong>Last error</strong> <span className="muted small">{formatTime(status.lastError.at)}</span>
          <pre>{status.lastError.message}</pre>
        </div>
      )}
      {status?.lastSchedulingDecision && (
        <p className="muted small">
          Scheduler: {status.lastSchedulingDecision.message} ({relativeTime(status.lastSchedulingDecision.at)})
        </p>
      )}
    </Card>
  );
}

function TotalsCard({ pipe, metrics }: { pipe: Pipe; metrics?: PipeMetrics }) {
  const kinesis = "kinesis" in pipe.source;
  return (
    <Card title="Since creation" testId="totals-card">
      {!metrics ? (
        <Loading />
      ) : (
        <div className="stats">
          <div className="stat">
            <span className="stat-label">Rows sent</span>
            <span className="stat-value" data-testid="total-sent-rows" data-value={metrics.sentRows}>
              {formatNumber(metrics.sentRows)}
            </span>
          </div>
          <div className="stat">
            <span className="stat-label">Bytes sent</span>
            <span className="stat-value">{formatBytes(metrics.sentBytes)}</span>
          </div>
          <div className="stat">
            <span className="stat-label">Messages fetched</span>
            <span className="stat-value">{formatNumber(metrics.fetchedEvents)}</span>
          </div>
          <div className="stat">
            <span className="stat-label">Errors</span>
            <span className={`stat-value ${metrics.errors > 0 ? "text-bad" : ""}`} data-testid="total-errors">
              {formatNumber(metrics.errors)}
            </span>
          </div>
          <div className="stat">
            <span className="stat-label">Lag</span>
            <span className="stat-value">{kinesis ? formatLag(null, metrics.lagMillis) : formatLag(metrics.lagMessages, null)}</span>
          </div>
          <div className="stat">
            <span className="stat-label">Updated</span>
            <span className="stat-value small">{relativeTime(metrics.updatedAt)}</span>
          </div>
        </div>
      )}
    </Card>
  );
}

function Charts({ pipe }: { pipe: Pipe }) {
  const [minutes, setMinutes] = useState(60);
  const history = usePoll(
    () => call(api.GET("/v1/pipes/{id}/metrics/history", { params: { path: { id: pipe.id }, query: { minutes } } })),
    POLL_MS,
    [pipe.id, minutes],
  );
  const kind = "kafka" in pipe.source ? "kafka" : "kinesis";
  const series = useMemo(
    () => (history.data ? fillHistory(history.data, { minutes, now: Date.now(), source: kind }) : null),
    [history.data, kind, minutes],
  );
  const summary = series ? seriesSummary(series) : null;
  const label = WINDOWS.find((w) => w.minutes === minutes)?.label ?? `${minutes} min`;
  return (
    <Card
      title={`Last ${label}`}
      testId="charts"
      actions={
        <>
          {history.loading && <Spinner small label="Loading metrics" />}
          <div className="segmented" role="group" aria-label="Time window">
            {WINDOWS.map((w) => (
              <button key={w.minutes} type="button" aria-pressed={minutes === w.minutes} onClick={() => setMinutes(w.minutes)} data-testid={`window-${w.minutes}`}>
                {w.label}
              </button>
            ))}
          </div>
        </>
      }
    >
      {history.error != null && !history.data ? (
        <ErrorState error={`Metrics history unavailable: ${errorMessage(history.error)}`} onRetry={() => void history.reload()} />
      ) : !series || !summary ? (
        <Loading label="Loading metrics…" />
      ) : (
        <div className="charts">
          <TimeSeriesChart
            title="Rows / s"
            testId="chart-rows"
            x={series.x}
            y={series.rowsPerSecond}
            color="#1f5fbf"
            format={(v) => formatNumber(v)}
            headline={`${formatNumber(summary.rows)} rows`}
          />
          <TimeSeriesChart
            title="Bytes / s"
            testId="chart-bytes"
            x={series.x}
            y={series.bytesPerSecond}
            color="#0f8a6c"
            format={(v) => formatBytes(v)}
            headline={formatBytes(summary.bytes)}
          />
          <TimeSeriesChart
            title={series.lagUnit === "ms" ? "Lag (behind latest)" : "Lag (messages)"}
            testId="chart-lag"
            x={series.x}
            y={series.lag}
            color="#b7791f"
            format={(v) => (series.lagUnit === "ms" ? formatDuration(v) : formatNumber(v))}
            headline={summary.lastLag === null ? "unknown" : series.lagUnit === "ms" ? formatDuration(summary.lastLag) : formatNumber(summary.lastLag)}
          />
          <TimeSeriesChart
            title={`Errors / ${series.bucketSeconds} s`}
            testId="chart-errors"
            x={series.x}
            y={series.errors}
            color="#c53030"
            format={(v) => formatNumber(v)}
            headline={`${formatNumber(summary.errors)} in ${label}`}
          />
        </div>
      )}
    </Card>
  );
}

function PlacementsCard({ status, metrics }: { status?: PipeStatus; metrics?: PipeMetrics }) {
  const placements = status?.placements ?? [];
  return (
    <Card title="Replicas" testId="placements">
      {!status ? (
        <Loading />
      ) : placements.length === 0 ? (
        <p className="muted">No replica is running.</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Replica</th>
                <th scope="col">Worker</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">CPU s</th>
                <th scope="col" className="num">Memory</th>
              </tr>
            </thead>
            <tbody>
              {placements.map((pl) => {
                const m = metrics?.replicas.find((r) => r.replica === pl.replica && r.workerId === pl.workerId);
                return (
                  <tr key={`${pl.replica}-${pl.workerId}`} data-testid="placement-row">
                    <td>#{pl.replica}</td>
                    <td>
                      <code title={pl.workerId}>{pl.workerId}</code>
                    </td>
                    <td>{pl.status}</td>
                    <td className="num">{m ? m.cpuSeconds.toFixed(1) : "—"}</td>
                    <td className="num">{m ? formatBytes(m.memoryBytes) : "—"}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

function EventsCard({ id }: { id: string }) {
  const events = usePoll(() => call(api.GET("/v1/pipes/{id}/events", { params: { path: { id }, query: { limit: 20 } } })), POLL_MS, [id]);
  return (
    <Card title="Recent events" testId="events">
      {events.error != null && !events.data ? (
        <ErrorState error={errorMessage(events.error)} onRetry={() => void events.reload()} />
      ) : !events.data ? (
        <Loading />
      ) : events.data.data.length === 0 ? (
        <p className="muted">No events yet.</p>
      ) : (
        <ol className="events">
          {events.data.data.map((e) => (
            <li key={e.id} className={`event event-${e.level}`}>
              <span className="event-time" title={formatTime(e.at)}>
                {relativeTime(e.at)}
              </span>
              <span className="tag">{e.kind}</span>
              <span className="event-message">{e.message}</span>
            </li>
          ))}
        </ol>
      )}
    </Card>
  );
}

function NewestRows({ id }: { id: string }) {
  const rows = usePoll(() => call(api.GET("/v1/pipes/{id}/rows", { params: { path: { id }, query: { limit: 10 } } })) as Promise<PipeRows>, POLL_MS, [id]);
  return (
    <Card title="Newest rows in the table" testId="newest-rows" actions={rows.loading && <Spinner small label="Loading rows" />}>
      {rows.error != null && !rows.data ? (
        <ErrorState error={`Cannot read the table: ${errorMessage(rows.error)}`} onRetry={() => void rows.reload()} />
      ) : !rows.data ? (
        <Loading />
      ) : rows.data.rows.length === 0 ? (
        <p className="muted" data-testid="newest-rows-empty">
          No rows yet. They appear here once the first batch is inserted.
        </p>
      ) : (
        <div className="table-wrap table-scroll">
          <table className="table table-compact" data-testid="newest-rows-table">
            <thead>
              <tr>
                {rows.data.columns.map((c) => (
                  <th key={c.name} scope="col" title={c.type}>
                    {c.name}
                    <span className="col-type">{c.type}</span>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.data.rows.map((r, i) => (
                <tr key={i} data-testid="newest-row">
                  {rows.data!.columns.map((c) => {
                    const v = displayValue(r[c.name]);
                    return (
                      <td key={c.name} className={v === null ? "muted" : ""}>
                        <span className="cell">{v ?? "NULL"}</span>
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

function RecentErrors({ id }: { id: string }) {
  const errors = usePoll(() => call(api.GET("/v1/pipes/{id}/errors", { params: { path: { id }, query: { limit: 20 } } })), POLL_MS, [id]);
  return (
    <Card title="Recent errors" testId="recent-errors">
      {errors.error != null && !errors.data ? (
        <ErrorState error={`Cannot read the error table: ${errorMessage(errors.error)}`} onRetry={() => void errors.reload()} />
      ) : !errors.data ? (
        <Loading />
      ) : errors.data.errors.length === 0 ? (
        <p className="muted">No errors. Messages that cannot be parsed or converted would be listed here with their raw text.</p>
      ) : (
        <div className="table-wrap table-scroll">
          <table className="table table-compact">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Code</th>
                <th scope="col">Error</th>
                <th scope="col">Where</th>
                <th scope="col">Raw message</th>
              </tr>
            </thead>
            <tbody>
              {errors.data.errors.map((e, i) => (
                <tr key={i} data-testid="error-row">
                  <td className="nowrap">{formatTime(e.at)}</td>
                  <td>
                    <span className="tag tag-bad">{e.errorCode}</span>
                  </td>
                  <td>{e.error}</td>
                  <td className="nowrap small">
                    {e.source} {e.partition >= 0 && `p${e.partition}`} @{e.offset}
                    {e.key && <div className="muted">key {e.key}</div>}
                  </td>
                  <td>
                    <details>
                      <summary>{e.rawMessage.length > 60 ? `${e.rawMessage.slice(0, 60)}…` : e.rawMessage || "(empty)"}</summary>
                      <pre className="raw">{e.rawMessage}</pre>
                      {e.rawTruncated && <p className="muted small">Truncated to 64 KiB.</p>}
                    </details>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

const SETTINGS_FIELDS: { key: keyof PipeSettings; label: string; min: number; max: number; hint: string }[] = [
  {
    key: "streaming_max_insert_wait_ms",
    label: "Max insert wait (ms)",
    min: 500,
    max: 60000,
    hint: "Longest a batch stays open before it is inserted (500–60,000).",
  },
  { key: "max_insert_rows", label: "Max insert rows", min: 1000, max: 1000000, hint: "Rows that close a batch (1,000–1,000,000)." },
  {
    key: "clickhouse_timeout_seconds",
    label: "ClickHouse timeout (s)",
    min: 1,
    max: 3600,
    hint: "Longest one request to ClickHouse may take; a timed-out insert is sent again (1–3,600).",
  },
];

function SettingsEditor({ id, canEdit }: { id: string; canEdit: boolean }) {
  const toast = useToast();
  const settings = usePoll(() => call(api.GET("/v1/pipes/{id}/settings", { params: { path: { id } } })), 0, [id]);
  const [form, setForm] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (settings.data) setForm(Object.fromEntries(SETTINGS_FIELDS.map((f) => [f.key, String(settings.data![f.key])])));
  }, [settings.data]);

  async function save(e: FormEvent) {
    e.preventDefault();
    const body: Partial<PipeSettings> = {};
    const local: Record<string, string> = {};
    for (const f of SETTINGS_FIELDS) {
      const n = Number(form[f.key]);
      if (!Number.isInteger(n) || n < f.min || n > f.max) local[f.key] = `Between ${f.min.toLocaleString("en-US")} and ${f.max.toLocaleString("en-US")}.`;
      else body[f.key] = n;
    }
    setErrors(local);
    if (Object.keys(local).length) return;
    setBusy(true);
    try {
      await call(api.PUT("/v1/pipes/{id}/settings", { params: { path: { id } }, body: body as PipeSettings }));
      toast.success("Settings saved", "Running replicas restart on the new settings.");
      await settings.reload();
    } catch (err) {
      if (err instanceof ApiError && err.fieldErrors.length) {
        setErrors(Object.fromEntries(err.fieldErrors.map((fe) => [fe.pointer.replace(/^\//, ""), fe.message])));
      }
      toast.error("Could not save the settings", errorMessage(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title="Settings" testId="settings-editor">
      {settings.error != null && !settings.data ? (
        <ErrorState error={errorMessage(settings.error)} onRetry={() => void settings.reload()} />
      ) : !settings.data ? (
        <Loading />
      ) : !canEdit ? (
        <Facts items={SETTINGS_FIELDS.map((f) => [f.label, formatNumber(settings.data![f.key])])} />
      ) : (
        <form onSubmit={save} className="stack" noValidate>
          {SETTINGS_FIELDS.map((f) => (
            <Field key={f.key} label={f.label} name={`settings.${f.key}`} hint={f.hint} error={errors[f.key]}>
              {(p) => (
                <input
                  {...p}
                  type="number"
                  inputMode="numeric"
                  min={f.min}
                  max={f.max}
                  value={form[f.key] ?? ""}
                  onChange={(e) => setForm({ ...form, [f.key]: e.target.value })}
                  data-testid={`settings-${f.key}`}
                />
              )}
            </Field>
          ))}
          <div>
            <Button type="submit" variant="primary" busy={busy} data-testid="settings-save">
              Save settings
            </Button>
          </div>
        </form>
      )}
    </Card>
  );
}

function scalingFromPipe(pipe: Pipe): ScalingValue {
  const s = pipe.scaling;
  return {
    replicaSize: s?.replicaSize ?? "XS",
    replicas: s?.replicas ?? 1,
    autoscaling: !!s?.autoscaling,
    minReplicas: s?.autoscaling?.minReplicas ?? 1,
    maxReplicas: s?.autoscaling?.maxReplicas ?? Math.max(3, s?.replicas ?? 1),
  };
}

function ScalingEditor({ pipe, canEdit, onSaved }: { pipe: Pipe; canEdit: boolean; onSaved(): void }) {
  const toast = useToast();
  const saved = scalingFromPipe(pipe);
  const [draft, setDraft] = useState<ScalingValue | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const value = draft ?? saved;

  async function save(e: FormEvent) {
    e.preventDefault();
    const local: Record<string, string> = {};
    if (value.autoscaling && value.maxReplicas < value.minReplicas) local["scaling.maxReplicas"] = "Must not be less than the minimum.";
    setErrors(local);
    if (Object.keys(local).length) return;
    const replicas = value.autoscaling ? Math.min(Math.max(value.replicas, value.minReplicas), value.maxReplicas) : value.replicas;
    setBusy(true);
    try {
      await call(
        api.PATCH("/v1/pipes/{id}/scaling", {
          params: { path: { id: pipe.id } },
          headers: { "Content-Type": "application/merge-patch+json" },
          body: {
            replicas,
            replicaSize: value.replicaSize,
            autoscaling: value.autoscaling ? { minReplicas: value.minReplicas, maxReplicas: value.maxReplicas } : null,
          },
        }),
      );
      toast.success("Scaling saved");
      setDraft(null);
      onSaved();
    } catch (err) {
      if (err instanceof ApiError && err.fieldErrors.length) {
        const mapped: Record<string, string> = {};
        for (const fe of err.fieldErrors) {
          const last = fe.pointer.split("/").pop() ?? "";
          const key = last === "maxReplicas" ? "scaling.maxReplicas" : last === "minReplicas" || last === "autoscaling" ? "scaling.minReplicas" : last === "replicaSize" ? "scaling.replicaSize" : "scaling.replicas";
          mapped[key] = fe.message;
        }
        setErrors(mapped);
      }
      toast.error("Could not change the scaling", errorMessage(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title="Scaling" testId="scaling-editor">
      {!canEdit ? (
        <Facts
          items={[
            ["Replica size", saved.replicaSize],
            ["Replicas", String(saved.replicas)],
            ["Autoscaling", saved.autoscaling ? `${saved.minReplicas}–${saved.maxReplicas} replicas` : "off"],
          ]}
        />
      ) : (
        <form onSubmit={save} className="stack" noValidate>
          <ScalingFields value={value} onChange={setDraft} errors={errors} idPrefix="edit-scaling" compact />
          <div className="actions">
            <Button type="submit" variant="primary" busy={busy} disabled={!draft} data-testid="scaling-save">
              Save scaling
            </Button>
            {draft && (
              <Button variant="ghost" onClick={() => { setDraft(null); setErrors({}); }}>
                Reset
              </Button>
            )}
          </div>
        </form>
      )}
    </Card>
  );
}
