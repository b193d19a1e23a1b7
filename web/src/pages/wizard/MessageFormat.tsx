// Step 2's message format section: the format, and where its schemas come
// from (a schema registry, a pasted Avro schema, .proto files).
import { useMemo, useState, type ChangeEvent, type ReactNode } from "react";
import type { Format, RegistryAuthentication } from "../../api/types";
import { Button, Field, FieldError } from "../../components/ui";
import {
  mergeProtoFiles,
  protoFileKey,
  protoMessageTypes,
  readProtoFiles,
  registryUrlForms,
  registryUrlMeaning,
  usesProtoFiles,
  usesRegistry,
  type ProtoFile,
} from "../../lib/messageFormat";
import { RadioCards, TextInput, setFormat, type StepCtx } from "./common";

const FORMATS: { value: Format; label: string; description: string }[] = [
  { value: "JSONEachRow", label: "JSONEachRow", description: "One JSON object per message" },
  { value: "AvroConfluent", label: "AvroConfluent", description: "Avro in Confluent's framing: each message names its schema in a schema registry" },
  { value: "Avro", label: "Avro", description: "Plain Avro, every message written with one schema" },
  { value: "Protobuf", label: "Protobuf", description: "Through a schema registry, or plain messages of a type from .proto files" },
];

const REGISTRY_AUTH: { value: RegistryAuthentication; label: string }[] = [
  { value: "NONE", label: "None" },
  { value: "PLAIN", label: "Username and password (HTTP basic)" },
];

export function MessageFormat({ ctx }: { ctx: StepCtx }) {
  const f = ctx.state.format;
  return (
    <section className="stack" aria-labelledby="format-title" data-testid="message-format">
      <h3 id="format-title" className="section-title">
        Message format
      </h3>
      <RadioCards
        name="format.format"
        legend="How messages are encoded"
        value={f.format}
        options={FORMATS}
        onChange={(format) => setFormat(ctx, { format })}
        testIdPrefix="format"
        columns={2}
        error={ctx.errors["format.format"]}
      />
      {f.format === "Avro" && (
        <RadioCards
          name="format.avroSource"
          legend="Writer schema"
          value={f.avroSource}
          options={[
            { value: "registry", label: "From a schema registry", description: "A URL that pins a subject, a subject version or a schema id" },
            { value: "inline", label: "Paste the schema", description: "The Avro schema (JSON, an .avsc file)" },
          ]}
          onChange={(avroSource) => setFormat(ctx, { avroSource })}
          testIdPrefix="avro-source"
          columns={2}
        />
      )}
      {f.format === "Protobuf" && (
        <RadioCards
          name="format.protobufSource"
          legend="Schemas"
          value={f.protobufSource}
          options={[
            { value: "registry", label: "Schema registry", description: "Messages in Confluent's framing name their schema and type" },
            { value: "files", label: "Upload .proto files", description: "Plain messages, all of one message type" },
          ]}
          onChange={(protobufSource) => setFormat(ctx, { protobufSource })}
          testIdPrefix="protobuf-source"
          columns={2}
        />
      )}
      {usesRegistry(f) && <RegistryFields ctx={ctx} />}
      {f.format === "Avro" && f.avroSource === "inline" && (
        <SchemaText
          ctx={ctx}
          field="avroSchema"
          label="Avro schema (JSON)"
          hint="The writer schema every message was written with."
        />
      )}
      {f.format === "AvroConfluent" && (
        <details className="advanced" open={!!f.readerSchema || !!ctx.errors["format.avroSchema"]}>
          <summary>Advanced: reader schema</summary>
          <SchemaText
            ctx={ctx}
            field="readerSchema"
            label={
              <>
                Reader schema (Avro JSON) <span className="optional">optional</span>
              </>
            }
            hint="Each message is resolved against it instead of being read as written, e.g. to keep the columns of one schema version. Or pin it with a subject URL above, not both."
          />
        </details>
      )}
      {usesProtoFiles(f) && <ProtoFiles ctx={ctx} />}
    </section>
  );
}

function RegistryFields({ ctx }: { ctx: StepCtx }) {
  const f = ctx.state.format;
  const meaning = registryUrlMeaning(f.format, f.registryUrl);
  // The API puts "Avro needs a pinned schema" on avroSchema, which is hidden while the schema comes from the registry.
  const pinError = f.format === "Avro" ? ctx.errors["format.avroSchema"] : undefined;
  return (
    <div className="stack" data-testid="registry-fields">
      <TextInput
        ctx={ctx}
        name="format.registryUrl"
        label="Schema registry URL"
        value={f.registryUrl}
        onChange={(registryUrl) => setFormat(ctx, { registryUrl })}
        placeholder={f.format === "Avro" ? "https://registry.example.com:8081/subjects/orders-value/versions/3" : "https://registry.example.com:8081"}
        error={ctx.errors["format.registryUrl"] ?? pinError}
        hint={
          <>
            {meaning && (
              <span className="hint-strong" data-testid="registry-url-meaning">
                {meaning}{" "}
              </span>
            )}
            {registryUrlForms(f.format)}
          </>
        }
        testId="registry-url"
      />
      <Field label="Registry authentication" name="format.registryAuthentication" error={ctx.errors["format.registryAuthentication"]}>
        {(p) => (
          <select
            {...p}
            value={f.registryAuthentication}
            onChange={(e) => setFormat(ctx, { registryAuthentication: e.target.value as RegistryAuthentication })}
            data-testid="registry-authentication"
          >
            {REGISTRY_AUTH.map((a) => (
              <option key={a.value} value={a.value}>
                {a.label}
              </option>
            ))}
          </select>
        )}
      </Field>
      {f.registryAuthentication === "PLAIN" && (
        <div className="row">
          <TextInput
            ctx={ctx}
            name="format.registryUsername"
            label="Registry username"
            value={f.registryUsername}
            onChange={(registryUsername) => setFormat(ctx, { registryUsername })}
            hint="Confluent Cloud: the Schema Registry API key."
            testId="registry-username"
          />
          <TextInput
            ctx={ctx}
            name="format.registryPassword"
            label="Registry password"
            type="password"
            autoComplete="new-password"
            value={f.registryPassword}
            onChange={(registryPassword) => setFormat(ctx, { registryPassword })}
            hint="Confluent Cloud: the API secret."
            testId="registry-password"
          />
        </div>
      )}
      <details className="advanced" open={!!f.registryCaCertificate || !!ctx.errors["format.registryCaCertificate"]}>
        <summary>Advanced: registry CA certificate</summary>
        <TextInput
          ctx={ctx}
          name="format.registryCaCertificate"
          label={
            <>
              CA certificate (PEM) <span className="optional">optional</span>
            </>
          }
          multiline
          value={f.registryCaCertificate}
          onChange={(registryCaCertificate) => setFormat(ctx, { registryCaCertificate })}
          placeholder="-----BEGIN CERTIFICATE-----"
          hint="Only for a registry whose TLS certificate is signed by a private CA; the public roots are trusted anyway."
          testId="registry-ca"
        />
      </details>
    </div>
  );
}

/** An Avro schema text: Avro's writer schema or AvroConfluent's reader schema, both the API's `avroSchema`. */
function SchemaText({ ctx, field, label, hint }: { ctx: StepCtx; field: "avroSchema" | "readerSchema"; label: ReactNode; hint: string }) {
  const f = ctx.state.format;
  const [readError, setReadError] = useState<string | null>(null);
  async function load(e: ChangeEvent<HTMLInputElement>) {
    const file = e.target.files?.[0];
    e.target.value = "";
    if (!file) return;
    try {
      setFormat(ctx, { [field]: await file.text() });
      setReadError(null);
    } catch (err) {
      setReadError(`Could not read ${file.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return (
    <div className="stack">
      <TextInput
        ctx={ctx}
        name="format.avroSchema"
        label={label}
        multiline
        rows={8}
        value={f[field]}
        onChange={(text) => setFormat(ctx, { [field]: text })}
        placeholder={'{"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]}'}
        hint={hint}
        testId={field === "avroSchema" ? "avro-schema" : "avro-reader-schema"}
      />
      <label className="file-pick">
        <span>Or load it from a file</span>
        <input type="file" accept=".avsc,.json,application/json" onChange={(e) => void load(e)} data-testid="avro-schema-file" />
      </label>
      {readError && <FieldError name="format.avroSchemaFile" error={readError} />}
    </div>
  );
}

function ProtoFiles({ ctx }: { ctx: StepCtx }) {
  const f = ctx.state.format;
  const [readError, setReadError] = useState<string | null>(null);
  const messages = useMemo(() => protoMessageTypes(f.protobufFiles), [f.protobufFiles]);
  const setFiles = (protobufFiles: ProtoFile[], messageType = f.messageType) => setFormat(ctx, { protobufFiles, messageType });

  async function upload(e: ChangeEvent<HTMLInputElement>) {
    const chosen = e.target.files ? Array.from(e.target.files) : [];
    // The same file chosen again (after editing it on disk) must fire change again.
    e.target.value = "";
    if (chosen.length === 0) return;
    try {
      const files = mergeProtoFiles(f.protobufFiles, await readProtoFiles(chosen));
      setReadError(null);
      // One top-level message in all the files: that is the type.
      const top = protoMessageTypes(files).filter((m) => m.topLevel);
      setFiles(files, f.messageType.trim() || top.length !== 1 ? f.messageType : top[0].name);
    } catch (err) {
      setReadError(`Could not read the files: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const update = (i: number, patch: Partial<ProtoFile>) => setFiles(f.protobufFiles.map((file, j) => (j === i ? { ...file, ...patch } : file)));
  return (
    <div className="stack" data-testid="proto-files-section">
      <fieldset className="fieldset">
        <legend>.proto files</legend>
        <div className="file-actions">
          <label className="file-pick">
            <span>Upload .proto files</span>
            <input type="file" multiple accept=".proto" onChange={(e) => void upload(e)} data-testid="proto-files" />
          </label>
          <Button small variant="ghost" onClick={() => setFiles([...f.protobufFiles, { name: "", text: "" }])} data-testid="proto-file-add">
            Paste a file instead
          </Button>
        </div>
        <p className="field-hint">Name each file as the imports name it (shop/orders.proto): an upload takes the file's own name, so rename one imported from a directory. The google/protobuf well-known types are built in.</p>
        {readError && <FieldError name="format.protobufFiles" error={readError} />}
        <FieldError name="format.protobufSchema" error={ctx.errors["format.protobufSchema"]} />
        {f.protobufFiles.map((file, i) => (
          <div key={i} className="proto-file" data-testid={`proto-file-${i}`}>
            <div className="proto-file-head">
              <TextInput
                ctx={ctx}
                name={protoFileKey(file.name)}
                label={`File ${i + 1} name`}
                value={file.name}
                onChange={(name) => update(i, { name })}
                placeholder="shop/orders.proto"
                testId={`proto-file-name-${i}`}
              />
              <Button small variant="ghost" onClick={() => setFiles(f.protobufFiles.filter((_, j) => j !== i))} aria-label={`Remove ${file.name || `file ${i + 1}`}`} data-testid={`proto-file-remove-${i}`}>
                Remove
              </Button>
            </div>
            <Field label={`${file.name || `File ${i + 1}`} text`} className="proto-file-text">
              {(p) => (
                <textarea
                  {...p}
                  rows={6}
                  value={file.text}
                  spellCheck={false}
                  placeholder={'syntax = "proto3";\npackage shop;\nmessage Order { int64 id = 1; }'}
                  onChange={(e) => update(i, { text: e.target.value })}
                  data-testid={`proto-file-text-${i}`}
                />
              )}
            </Field>
          </div>
        ))}
      </fieldset>
      <TextInput
        ctx={ctx}
        name="format.messageType"
        label="Message type"
        value={f.messageType}
        onChange={(messageType) => setFormat(ctx, { messageType })}
        placeholder="shop.Order"
        list="proto-message-types"
        hint={messages.length ? `The fully qualified type of every message; the files define ${messages.slice(0, 4).map((m) => m.name).join(", ")}${messages.length > 4 ? ", …" : ""}.` : "The fully qualified type of every message: package and message name."}
        testId="message-type"
      />
      <datalist id="proto-message-types">
        {messages.map((m) => (
          <option key={m.name} value={m.name} />
        ))}
      </datalist>
    </div>
  );
}
