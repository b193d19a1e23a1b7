import { api, call, errorMessage } from "../api/client";
import type { ActivityEntry, Pipe } from "../api/types";
import { PipeActions } from "../components/PipeActions";
import { Button, EmptyState, ErrorState, Loading, Spinner, StateBadge } from "../components/ui";
import { formatLag, formatNumber } from "../lib/format";
import { usePoll } from "../lib/hooks";
import { href } from "../lib/router";
import { useSession } from "../lib/session";

export const POLL_MS = 5000;

/** Every pipe, following the pagination cursor. */
export async function listAllPipes(): Promise<Pipe[]> {
  const all: Pipe[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 50; page += 1) {
    const result = await call(api.GET("/v1/pipes", { params: { query: { limit: 100, cursor } } }));
    all.push(...result.data);
    if (!result.nextCursor) break;
    cursor = result.nextCursor;
  }
  return all;
}

async function loadActivity(): Promise<Map<string, ActivityEntry>> {
  try {
    const activity = await call(api.GET("/v1/pipes/activity"));
    return new Map(activity.data.map((a) => [a.pipeId, a]));
  } catch {
    return new Map(); // activity is decoration; the list works without it
  }
}

export function sourceLabel(pipe: Pick<Pipe, "source">): { kind: string; name: string } {
  if ("kafka" in pipe.source) return { kind: "Kafka", name: pipe.source.kafka.topics.join(", ") };
  return { kind: "Kinesis", name: pipe.source.kinesis.streamName };
}

export function destinationLabel(pipe: Pick<Pipe, "destination">): string {
  const d = pipe.destination;
  return d.database ? `${d.database}.${d.table}` : d.table;
}

export function PipesList() {
  const { canEdit } = useSession();
  const pipes = usePoll(listAllPipes, POLL_MS, []);
  const activity = usePoll(loadActivity, POLL_MS, []);
  const reload = () => {
    void pipes.reload();
    void activity.reload();
  };

  return (
    <div className="page">
      <div className="page-header">
        <div>
          <h1>Pipes</h1>
          <p className="muted">Kafka and Kinesis streams flowing into ClickHouse. Refreshes every 5 seconds.</p>
        </div>
        <div className="page-actions">
          {pipes.loading && pipes.data && <Spinner small label="Refreshing" />}
          {canEdit && (
            <a className="btn btn-primary" href={href.newPipe} data-testid="new-pipe">
              New pipe
            </a>
          )}
        </div>
      </div>

      {pipes.error && !pipes.data ? (
        <ErrorState error={`Could not load the pipes: ${errorMessage(pipes.error)}`} onRetry={reload} />
      ) : !pipes.data ? (
        <Loading label="Loading pipes…" />
      ) : pipes.data.length === 0 ? (
        <EmptyState
          title="No pipes yet — create one"
          action={
            canEdit ? (
              <a className="btn btn-primary" href={href.newPipe} data-testid="empty-new-pipe">
                Create your first pipe
              </a>
            ) : undefined
          }
        >
          {canEdit
            ? "A pipe reads a Kafka topic or a Kinesis stream and inserts its messages into a ClickHouse table."
            : "Your key is read-only; a developer or admin can create pipes."}
        </EmptyState>
      ) : (
        <>
          {pipes.error != null && <p className="notice notice-warn">Refresh failed: {errorMessage(pipes.error)} (showing the last data)</p>}
          <div className="table-wrap">
            <table className="table table-responsive" data-testid="pipes-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Source</th>
                  <th scope="col">Destination</th>
                  <th scope="col">State</th>
                  <th scope="col" className="num">Rows/s</th>
                  <th scope="col" className="num">Lag</th>
                  <th scope="col" className="num">Errors (1 h)</th>
                  {canEdit && <th scope="col"><span className="sr-only">Actions</span></th>}
                </tr>
              </thead>
              <tbody>
                {pipes.data.map((pipe) => {
                  const a = activity.data?.get(pipe.id);
                  const src = sourceLabel(pipe);
                  return (
                    <tr key={pipe.id} data-testid="pipe-row" data-pipe-id={pipe.id} data-pipe-name={pipe.name}>
                      <td data-label="Name">
                        <a href={href.pipe(pipe.id)} className="pipe-link">
                          {pipe.name}
                        </a>
                        {pipe.description && <div className="muted small truncate">{pipe.description}</div>}
                      </td>
                      <td data-label="Source">
                        <span className="tag">{src.kind}</span> {src.name}
                      </td>
                      <td data-label="Destination">
                        <code>{destinationLabel(pipe)}</code>
                      </td>
                      <td data-label="State">
                        <StateBadge state={pipe.state} />
                      </td>
                      <td data-label="Rows/s" className="num" data-testid="pipe-rows-per-second">
                        {a ? formatNumber(a.rowsPerSecond) : "0"}
                      </td>
                      <td data-label="Lag" className="num">
                        {a ? formatLag(a.lagMessages, a.lagMillis) : "—"}
                      </td>
                      <td data-label="Errors (1 h)" className={`num ${a && a.errorsLastHour > 0 ? "text-bad" : ""}`}>
                        {a ? formatNumber(a.errorsLastHour) : "0"}
                      </td>
                      {canEdit && (
                        <td data-label="Actions" className="actions-cell">
                          <PipeActions pipe={pipe} small onChanged={reload} />
                        </td>
                      )}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <div className="list-footer muted small">
            {pipes.data.length} pipe{pipes.data.length === 1 ? "" : "s"}
            <Button small variant="ghost" onClick={reload}>
              Refresh now
            </Button>
          </div>
        </>
      )}
    </div>
  );
}
