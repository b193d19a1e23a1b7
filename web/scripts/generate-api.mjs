// Generates src/api/schema.d.ts from ../openapi/openapi.json with
// openapi-typescript's Node API. `npm run generate` writes the file; the
// schema-drift unit test imports `generateSchemaTypes` and compares.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";

export const OPENAPI_PATH = fileURLToPath(new URL("../../openapi/openapi.json", import.meta.url));
export const SCHEMA_TYPES_PATH = fileURLToPath(new URL("../src/api/schema.d.ts", import.meta.url));

/** The text `schema.d.ts` must have for the current openapi.json. */
export async function generateSchemaTypes(openapiPath = OPENAPI_PATH) {
  // Parse first so a broken file fails with a clear message.
  const document = JSON.parse(readFileSync(openapiPath, "utf8"));
  const ast = await openapiTS(document, { silent: true });
  return `${COMMENT_HEADER}${astToString(ast)}`;
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const text = await generateSchemaTypes();
  writeFileSync(SCHEMA_TYPES_PATH, text, "utf8");
  console.log(`wrote ${SCHEMA_TYPES_PATH} from ${OPENAPI_PATH}`);
}
