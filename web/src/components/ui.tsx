// Small building blocks: buttons with progress, fields with errors,
// spinners, badges, empty and error states.
import { useId, type ButtonHTMLAttributes, type ReactNode } from "react";
import type { PipeState } from "../api/types";

export function Spinner({ label = "Loading", small }: { label?: string; small?: boolean }) {
  return <span className={small ? "spinner spinner-small" : "spinner"} role="status" aria-label={label} />;
}

type ButtonProps = ButtonHTMLAttributes<HTMLButtonElement> & {
  variant?: "primary" | "secondary" | "danger" | "ghost";
  busy?: boolean;
  small?: boolean;
};

export function Button({ variant = "secondary", busy, small, className, children, disabled, type, ...rest }: ButtonProps) {
  return (
    <button
      type={type ?? "button"}
      className={["btn", `btn-${variant}`, small ? "btn-small" : "", className ?? ""].join(" ").trim()}
      disabled={disabled || busy}
      aria-busy={busy || undefined}
      {...rest}
    >
      {busy && <Spinner small label="Working" />}
      {children}
    </button>
  );
}

interface FieldProps {
  label: ReactNode;
  /** Wizard field key; the error element gets `data-testid="error-<key>"`. */
  name?: string;
  hint?: ReactNode;
  error?: string;
  children: (props: { id: string; "aria-invalid"?: boolean; "aria-describedby"?: string }) => ReactNode;
  className?: string;
}

/** A labelled control with its hint and error message below it. */
export function Field({ label, name, hint, error, children, className }: FieldProps) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = [hint ? hintId : "", error ? errorId : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div className={`field ${error ? "field-invalid" : ""} ${className ?? ""}`.trim()}>
      <label htmlFor={id}>{label}</label>
      {children({ id, "aria-invalid": error ? true : undefined, "aria-describedby": describedBy })}
      {hint && !error && (
        <p className="field-hint" id={hintId}>
          {hint}
        </p>
      )}
      {error && (
        <p className="field-error" id={errorId} role="alert" data-testid={name ? `error-${name}` : undefined}>
          {error}
        </p>
      )}
    </div>
  );
}

/** An error message for a group of controls (no single input). */
export function FieldError({ name, error }: { name: string; error?: string }) {
  if (!error) return null;
  return (
    <p className="field-error" role="alert" data-testid={`error-${name}`}>
      {error}
    </p>
  );
}

const STATE_TONE: Record<string, string> = {
  Running: "ok",
  Provisioning: "progress",
  Stopping: "progress",
  Deleting: "progress",
  Degraded: "warn",
  Failed: "bad",
  Stopped: "muted",
};

export function StateBadge({ state }: { state: PipeState | string }) {
  const tone = STATE_TONE[state] ?? "muted";
  return (
    <span className={`badge badge-${tone}`} data-testid="state-badge" data-state={state}>
      <span className="badge-dot" aria-hidden="true" />
      {state}
    </span>
  );
}

export function EmptyState({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className="empty-state" data-testid="empty-state">
      <h3>{title}</h3>
      {children && <div className="empty-body">{children}</div>}
      {action && <div className="empty-action">{action}</div>}
    </div>
  );
}

export function ErrorState({ error, onRetry, busy }: { error: string; onRetry?: () => void; busy?: boolean }) {
  return (
    <div className="error-state" role="alert">
      <p>{error}</p>
      {onRetry && (
        <Button small onClick={onRetry} busy={busy}>
          Try again
        </Button>
      )}
    </div>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="loading">
      <Spinner /> <span>{label}</span>
    </div>
  );
}

/** A read-only key/value list. */
export function Facts({ items }: { items: [ReactNode, ReactNode][] }) {
  return (
    <dl className="facts">
      {items.map(([k, v], i) => (
        <div key={i} className="fact">
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Card({ title, actions, children, className, testId }: { title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string; testId?: string }) {
  return (
    <section className={`card ${className ?? ""}`.trim()} data-testid={testId}>
      {(title || actions) && (
        <header className="card-header">
          {title && <h2>{title}</h2>}
          {actions && <div className="card-actions">{actions}</div>}
        </header>
      )}
      {children}
    </section>
  );
}
