// Compiles the FhirRoute CRD's own OpenAPI schema (crds/fhirroutes.fhirmesh.io.yaml) with ajv, so a
// routes file gets the apiserver's structural checks from the same text, never from a second copy.
import { readFileSync } from 'node:fs';
import { packageFile } from '../package-file.ts';
import { Ajv, type AnySchemaObject, type ErrorObject, type SchemaValidateFunction, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { API_VERSION, KIND } from './types.ts';

export const FHIRROUTE_CRD_PATH = packageFile('crds/fhirroutes.fhirmesh.io.yaml');
const SERVED_VERSION = 'v1alpha1';
// Kubernetes object naming rules for metadata, which the CRD itself may not constrain.
const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

/** One `x-kubernetes-validations` entry (transition rules, with oldSelf, are not used by this CRD). */
export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
}

/** The subset of a structural schema the CRD uses. */
export interface CrdSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, CrdSchema>;
  items?: CrdSchema;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

interface CrdDocument {
  spec?: { versions?: { name: string; schema?: { openAPIV3Schema?: CrdSchema } }[] };
}

let crdSchema: CrdSchema | undefined;
let validator: ValidateFunction | undefined;

/** The v1alpha1 openAPIV3Schema exactly as the CRD file states it (read once). */
export function fhirRouteCrdSchema(): CrdSchema {
  if (crdSchema === undefined) {
    const crd = parse(readFileSync(FHIRROUTE_CRD_PATH, 'utf8')) as CrdDocument;
    const version = crd.spec?.versions?.find((v) => v.name === SERVED_VERSION);
    const schema = version?.schema?.openAPIV3Schema;
    // A broken CRD file is a defect of this package, not of a user's route: fail loudly.
    if (schema === undefined) throw new Error(`${FHIRROUTE_CRD_PATH} has no ${SERVED_VERSION} openAPIV3Schema`);
    crdSchema = schema;
  }
  return crdSchema;
}

/** Structural errors of a whole FhirRoute object (manifest form); empty when it fits the schema. */
export function fhirRouteSchemaErrors(obj: unknown): ErrorObject[] {
  validator ??= compileValidator();
  return validator(obj) ? [] : [...(validator.errors ?? [])];
}

function compileValidator(): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
  // CEL rules are evaluated by cel-rules.ts from this same schema; ajv only has to accept them.
  ajv.addKeyword({ keyword: 'x-kubernetes-validations', schemaType: 'array' });
  ajv.addKeyword({ keyword: 'x-kubernetes-list-map-keys', schemaType: 'array' });
  ajv.addKeyword({ keyword: 'x-kubernetes-preserve-unknown-fields', schemaType: 'boolean' });
  ajv.addKeyword({
    keyword: 'x-kubernetes-list-type',
    type: 'array',
    schemaType: 'string',
    errors: true,
    validate: checkListType,
  });
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/);
  return ajv.compile(manifestSchema(fhirRouteCrdSchema()));
}

/**
 * The CRD schema as ajv must see it to judge a manifest the way `kubectl apply` does: the apiserver
 * checks apiVersion, kind and metadata itself, and strict field validation refuses unknown fields.
 */
function manifestSchema(schema: CrdSchema): AnySchemaObject {
  const closed = closeObjects(schema);
  const properties = (closed.properties ?? {}) as Record<string, AnySchemaObject>;
  return {
    ...closed,
    required: ['apiVersion', 'kind', 'metadata', ...(schema.required ?? [])],
    properties: {
      ...properties,
      apiVersion: { type: 'string', const: API_VERSION },
      kind: { type: 'string', const: KIND },
      metadata: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string', maxLength: 253, pattern: DNS_SUBDOMAIN },
          namespace: { type: 'string', maxLength: 63, pattern: DNS_LABEL },
        },
      },
    },
  };
}

function closeObjects(schema: CrdSchema): AnySchemaObject {
  const copy: AnySchemaObject = { ...schema };
  if (schema.items !== undefined) copy.items = closeObjects(schema.items);
  if (schema.properties !== undefined) {
    copy.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([name, property]) => [name, closeObjects(property)]),
    );
    if (schema['x-kubernetes-preserve-unknown-fields'] !== true) copy.additionalProperties = false;
  }
  return copy;
}

/** `set`: no value twice; `map`: no two items with the same keys (the apiserver's list-type rules). */
const checkListType: SchemaValidateFunction = (listType: string, data: unknown[], parentSchema?: AnySchemaObject) => {
  if (listType !== 'set' && listType !== 'map') return true;
  const mapKeys = (parentSchema?.['x-kubernetes-list-map-keys'] ?? []) as string[];
  const identity = (item: unknown): string =>
    listType === 'set'
      ? JSON.stringify(item)
      : JSON.stringify(mapKeys.map((key) => (item as Record<string, unknown> | null)?.[key]));
  const seen = new Set<string>();
  const errors: Partial<ErrorObject>[] = [];
  data.forEach((item, index) => {
    const id = identity(item);
    if (seen.has(id)) {
      errors.push({
        keyword: 'x-kubernetes-list-type',
        message: 'duplicate',
        params: { listType, index, duplicate: listType === 'set' ? item : mapKeys.join(',') },
      });
    }
    seen.add(id);
  });
  checkListType.errors = errors;
  return errors.length === 0;
};
