import { PRESETS, applyPreset } from "../../lib/presets";
import type { StepCtx } from "./common";

export function StepSource({ ctx }: { ctx: StepCtx }) {
  const kafkaPresets = PRESETS.filter((p) => p.kind === "kafka");
  const kinesis = PRESETS.filter((p) => p.kind === "kinesis");
  const choose = (id: (typeof PRESETS)[number]["id"]) => ctx.update((s) => applyPreset(s, id));
  const group = (title: string, presets: typeof PRESETS) => (
    <fieldset className="fieldset">
      <legend>{title}</legend>
      <div className="choice-grid choice-grid-3">
        {presets.map((p) => (
          <label key={p.id} className={`choice choice-large ${ctx.state.preset === p.id ? "choice-selected" : ""}`}>
            <input
              type="radio"
              name="preset"
              value={p.id}
              checked={ctx.state.preset === p.id}
              onChange={() => choose(p.id)}
              data-testid={`preset-${p.id}`}
            />
            <span className={`logo logo-${p.id}`} aria-hidden="true">
              {p.label
                .split(" ")
                .map((w) => w[0])
                .join("")
                .slice(0, 2)}
            </span>
            <span className="choice-title">{p.label}</span>
            <span className="choice-sub">{p.blurb}</span>
          </label>
        ))}
      </div>
    </fieldset>
  );
  return (
    <div className="stack">
      <p className="muted">Where do the messages come from? A preset fills in the authentication and port its service uses.</p>
      {group("Kafka", kafkaPresets)}
      {group("Amazon Kinesis", kinesis)}
    </div>
  );
}
