// Hints for mapping a source field of one (inferred) type to a column of
// another, following the conversion rules of crates/formats/src/convert.rs.

export type Compat = { level: "ok" | "info" | "warn" | "error"; message: string };

/** Strips Nullable(…) and LowCardinality(…) wrappers. */
export function baseType(type: string): string {
  let t = type.trim();
  for (;;) {
    const m = /^(Nullable|LowCardinality)\((.*)\)$/.exec(t);
    if (!m) return t;
    t = m[2].trim();
  }
}

const isNullable = (t: string) => /^(LowCardinality\()?Nullable\(/.test(t.trim());

type Family = "string" | "int" | "uint" | "float" | "decimal" | "bool" | "datetime" | "date" | "array" | "map" | "json" | "other";

export function family(type: string): Family {
  const t = baseType(type);
  if (/^(String|FixedString|UUID|Enum8|Enum16|IPv4|IPv6)\b/.test(t)) return "string";
  if (/^Int(8|16|32|64|128|256)$/.test(t)) return "int";
  if (/^UInt(8|16|32|64|128|256)$/.test(t)) return "uint";
  if (/^(Float32|Float64|BFloat16)$/.test(t)) return "float";
  if (/^Decimal/.test(t)) return "decimal";
  if (/^(Bool|Boolean)$/.test(t)) return "bool";
  if (/^DateTime/.test(t)) return "datetime";
  if (/^Date(32)?$/.test(t)) return "date";
  if (/^Array\(/.test(t)) return "array";
  if (/^(Map|Tuple)\(/.test(t)) return "map";
  if (/^(JSON|Object)/.test(t)) return "json";
  return "other";
}

/** How well values of `sourceType` land in a column of `columnType`. */
export function compatibility(sourceType: string | undefined, columnType: string): Compat {
  if (!sourceType) return { level: "info", message: "Source type unknown; values are converted when they arrive." };
  const s = family(sourceType);
  const c = family(columnType);
  const from = baseType(sourceType);
  const to = baseType(columnType);
  const nullNote = isNullable(sourceType) && !isNullable(columnType) ? " Nulls become the column's zero value." : "";
  const ok = (message = "Compatible."): Compat => ({ level: nullNote ? "info" : "ok", message: message + nullNote });
  const warn = (message: string): Compat => ({ level: "warn", message: `${from} → ${to}: ${message}` });

  if (from === to) return ok();
  if (c === "string") return ok(s === "string" ? "Compatible." : "Stored as its JSON text.");
  if (c === "json") return ok("Stored as JSON.");
  if (s === "array" || c === "array") {
    if (s === "array" && c === "array") {
      const inner = (t: string) => baseType(t).replace(/^Array\((.*)\)$/, "$1");
      const nested = compatibility(inner(sourceType), inner(columnType));
      return nested.level === "warn" || nested.level === "error"
        ? { level: nested.level, message: `${from} → ${to}: element ${nested.message}` }
        : ok();
    }
    return { level: "error", message: `${from} → ${to}: ${s === "array" ? "an array cannot fill a scalar column" : "the column takes an array"}; every row would go to the error table.` };
  }
  switch (c) {
    case "int":
    case "uint": {
      if (s === "string") return warn("only strings holding whole numbers convert; others go to the error table.");
      if (s === "float" || s === "decimal") return warn("values with a fraction go to the error table.");
      if (s === "datetime" || s === "date") return warn("date strings do not convert to numbers.");
      if (s === "int" && c === "uint") return warn("negative values go to the error table.");
      if (s === "int" || s === "uint") {
        const bits = (t: string) => Number(/(\d+)$/.exec(baseType(t))?.[1] ?? 64);
        return bits(columnType) < bits(sourceType) ? warn("values out of range go to the error table.") : ok();
      }
      return ok();
    }
    case "float":
    case "decimal":
      if (s === "string") return warn("only numeric strings convert; others go to the error table.");
      if (s === "datetime" || s === "date") return warn("date strings do not convert to numbers.");
      return ok();
    case "bool":
      return s === "bool" || s === "int" || s === "uint" ? ok() : warn("only true/false values convert.");
    case "datetime":
    case "date":
      if (s === "datetime" || s === "date") return ok();
      if (s === "int" || s === "uint" || s === "float") return ok("Numbers are read as epoch seconds/milliseconds by magnitude.");
      if (s === "string") return warn("only ISO-8601 date strings convert; others go to the error table.");
      return warn("these values do not convert to dates.");
    case "map":
      return s === "json" || s === "map" ? ok() : warn("the column takes an object.");
    default:
      return { level: "info", message: `${from} → ${to}: check that the values convert.` };
  }
}

/** The type families a ClickHouse type is built from (`Nullable(DateTime64(3))` → Nullable, DateTime64), as `system.data_type_families` names them. */
export function typeFamilies(type: string): string[] {
  const withoutLiterals = type.replace(/'(?:[^'\\]|\\.)*'/g, "");
  const names = withoutLiterals.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? [];
  return [...new Set(names)];
}

/** Whether a server with these type families can hold the type (unknown families: assume yes). */
export function serverHas(type: string, families: ReadonlySet<string> | null): boolean {
  if (!families) return true;
  return typeFamilies(type).every((f) => families.has(f));
}

/** The nearest type the server has, for types Sluice offers by default (DateTime64 on servers before 20.1). */
export function fitType(type: string, families: ReadonlySet<string> | null): string {
  if (serverHas(type, families)) return type;
  const fitted = type.replace(/DateTime64\(\d+(?:,\s*('[^']*'))?\)/g, (_m, zone) => (zone ? `DateTime(${zone})` : "DateTime")).replace(/\bBool\b/g, "UInt8");
  return serverHas(fitted, families) ? fitted : type;
}
