// Builds GET /metadata from the routes the FhirRouter actually holds, so the statement cannot claim an
// interaction the server does not route. fhir-router has no capabilities interaction of its own.

import { getResourceTypes } from '@medplum/core';
import type { FhirRouter } from '@medplum/fhir-router';
import type {
  CapabilityStatement,
  CapabilityStatementRestInteraction,
  CapabilityStatementRestResource,
  CapabilityStatementRestResourceInteraction,
  CapabilityStatementRestResourceOperation,
} from '@medplum/fhirtypes';

type SystemCode = CapabilityStatementRestInteraction['code'];
type ResourceCode = CapabilityStatementRestResourceInteraction['code'];

const systemCodes: ReadonlySet<string> = new Set<SystemCode>(['transaction', 'batch', 'search-system', 'history-system']);
const resourceCodes: ReadonlySet<string> = new Set<ResourceCode>([
  'read',
  'vread',
  'update',
  'patch',
  'delete',
  'history-instance',
  'history-type',
  'create',
  'search-type',
]);

/** An operation served outside the router (the asynchronous $export family). */
export interface ExtraOperation {
  name: string;
  /** Undefined for a system-level operation. */
  resourceType?: string;
}

export interface CapabilityInfo {
  serverName: string;
  publicBaseUrl: string;
  /** Canonical OperationDefinition URLs, keyed '$name' or 'Type/$name'. */
  operationDefinitions: Readonly<Record<string, string>>;
  /** Same keys; says which operations are the sample's own. */
  operationDocumentation: Readonly<Record<string, string>>;
  extraOperations: readonly ExtraOperation[];
}

export function buildCapabilityStatement(router: FhirRouter, info: CapabilityInfo): CapabilityStatement {
  const system = new Set<SystemCode>();
  const perResource = new Set<ResourceCode>();
  const systemOperations = new Set<string>();
  const allTypeOperations = new Set<string>();
  const typeOperations = new Map<string, Set<string>>();
  const addTypeOperation = (resourceType: string, name: string): void => {
    const names = typeOperations.get(resourceType) ?? new Set<string>();
    names.add(name);
    typeOperations.set(resourceType, names);
  };

  for (const route of router.router.routes) {
    const interaction = route.data?.interaction;
    const [first] = route.path;
    const last = route.path.at(-1);
    const operationName = last && !last.param && last.value.startsWith('$') ? last.value.slice(1) : undefined;
    if (operationName) {
      if (!first || first === last) {
        systemOperations.add(operationName);
      } else if (first.param) {
        allTypeOperations.add(operationName);
      } else {
        addTypeOperation(first.value, operationName);
      }
    } else if (interaction && first?.param && resourceCodes.has(interaction)) {
      perResource.add(interaction as ResourceCode);
    } else if (interaction && systemCodes.has(interaction)) {
      system.add(interaction as SystemCode);
      if (interaction === 'batch') {
        // One route serves both Bundle types; transactions run with rollback (journaled-repository.ts).
        system.add('transaction');
      }
    }
  }
  for (const extra of info.extraOperations) {
    if (extra.resourceType) {
      addTypeOperation(extra.resourceType, extra.name);
    } else {
      systemOperations.add(extra.name);
    }
  }

  // Definitions and documentation are keyed '$name' or, when a type has its own, 'Type/$name'.
  const operation = (name: string, resourceType?: string): CapabilityStatementRestResourceOperation => {
    const specific = resourceType ? `${resourceType}/$${name}` : undefined;
    const definition =
      (specific && info.operationDefinitions[specific]) ??
      info.operationDefinitions[`$${name}`] ??
      `urn:fhirmesh:sample-fhir-server:OperationDefinition/${name}`;
    const documentation = (specific && info.operationDocumentation[specific]) ?? info.operationDocumentation[`$${name}`];
    return { name, definition, ...(documentation ? { documentation } : {}) };
  };
  const interactionList = [...perResource].map((code) => ({ code }));

  const resource = getResourceTypes()
    .sort()
    .map((type): CapabilityStatementRestResource => {
      const names = [...allTypeOperations, ...(typeOperations.get(type) ?? [])];
      return {
        type,
        interaction: interactionList,
        versioning: 'versioned',
        readHistory: true,
        updateCreate: true,
        conditionalCreate: true,
        conditionalRead: 'full-support',
        conditionalUpdate: true,
        conditionalDelete: 'single',
        ...(names.length > 0 ? { operation: names.map((name) => operation(name, type)) } : {}),
      };
    });

  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['json'],
    patchFormat: ['application/json-patch+json'],
    software: { name: 'fhirmesh sample FHIR server (Medplum FhirRouter + MemoryRepository)' },
    implementation: { description: `fhirmesh sample destination '${info.serverName}'`, url: info.publicBaseUrl },
    rest: [
      {
        mode: 'server',
        interaction: [...system].map((code) => ({ code })),
        operation: [...systemOperations].sort().map((name) => operation(name)),
        resource,
      },
    ],
  };
}
