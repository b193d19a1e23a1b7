// Start / stop / delete for one pipe, each behind a confirmation dialog.
import { useState } from "react";
import { ApiError, api, call, errorMessage } from "../api/client";
import type { PipeState } from "../api/types";
import { ConfirmDialog } from "./ConfirmDialog";
import { useToast } from "./Toasts";
import { Button } from "./ui";

type Action = "start" | "stop" | "delete";

export const canStart = (s: PipeState) => s === "Stopped" || s === "Failed";
export const canStop = (s: PipeState) => s === "Provisioning" || s === "Running" || s === "Degraded" || s === "Failed";
export const canDelete = (s: PipeState) => s !== "Deleting";

interface Props {
  pipe: { id: string; name: string; state: PipeState };
  small?: boolean;
  onChanged(): void;
  onDeleted?(): void;
}

export function PipeActions({ pipe, small, onChanged, onDeleted }: Props) {
  const toast = useToast();
  const [pending, setPending] = useState<Action | null>(null);
  const [busy, setBusy] = useState(false);

  async function run(action: Action) {
    setBusy(true);
    try {
      if (action === "delete") {
        const { response } = await api.DELETE("/v1/pipes/{id}", { params: { path: { id: pipe.id } } }).then((r) => {
          if (!r.response.ok) throw toError(r.response.status, r.error);
          return r;
        });
        if (response.status === 202) {
          toast.success(`Deleting “${pipe.name}”`, "It is stopping; it disappears once its replicas are gone.");
        } else {
          toast.success(`Deleted “${pipe.name}”`);
        }
        onDeleted?.();
      } else {
        await call(
          api.PATCH("/v1/pipes/{id}/state", {
            params: { path: { id: pipe.id } },
            body: { command: action },
          }),
        );
        toast.success(action === "start" ? `Starting “${pipe.name}”` : `Stopping “${pipe.name}”`);
      }
      onChanged();
    } catch (e) {
      const verb = action === "delete" ? "delete" : action;
      const title = e instanceof ApiError && e.status === 409 ? `Cannot ${verb} “${pipe.name}” now` : `Could not ${verb} “${pipe.name}”`;
      toast.error(title, errorMessage(e));
      onChanged();
    } finally {
      setBusy(false);
      setPending(null);
    }
  }

  const s = pipe.state;
  return (
    <div className="actions">
      {canStart(s) && (
        <Button small={small} onClick={() => setPending("start")} busy={busy && pending === "start"} data-testid="pipe-start">
          Start
        </Button>
      )}
      {canStop(s) && (
        <Button small={small} onClick={() => setPending("stop")} busy={busy && pending === "stop"} data-testid="pipe-stop">
          Stop
        </Button>
      )}
      <Button
        small={small}
        variant="danger"
        onClick={() => setPending("delete")}
        disabled={!canDelete(s)}
        busy={busy && pending === "delete"}
        data-testid="pipe-delete"
      >
        Delete
      </Button>
      <ConfirmDialog
        open={pending !== null}
        busy={busy}
        danger={pending !== "start"}
        title={pending === "delete" ? `Delete “${pipe.name}”?` : pending === "stop" ? `Stop “${pipe.name}”?` : `Start “${pipe.name}”?`}
        confirmLabel={pending === "delete" ? "Delete pipe" : pending === "stop" ? "Stop pipe" : "Start pipe"}
        onConfirm={() => pending && void run(pending)}
        onCancel={() => setPending(null)}
      >
        {pending === "delete" && (
          <p>
            The pipe's definition and offsets are removed. The destination table and its rows stay.
            {s !== "Stopped" && " It is stopped first, and removed once its replicas have finished."}
          </p>
        )}
        {pending === "stop" && <p>Replicas finish their current batch and stop reading. Start it again to resume from the committed offsets.</p>}
        {pending === "start" && <p>Replicas are placed on workers and begin reading.</p>}
      </ConfirmDialog>
    </div>
  );
}

function toError(status: number, body: unknown): ApiError {
  const detail = (body as { detail?: string } | undefined)?.detail;
  return new ApiError(status, detail ?? `The API answered ${status}`, (body as ApiError["problem"]) ?? null);
}
