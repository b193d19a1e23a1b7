export const OPENAPI_PATH: string;
export const SCHEMA_TYPES_PATH: string;
export function generateSchemaTypes(openapiPath?: string): Promise<string>;
