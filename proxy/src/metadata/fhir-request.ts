// Derives the FHIR interaction, resource type and operation of a request from method + path
// alone (never the body), for `rules` matching and for PHI-free telemetry labels and log routes.

import type { RequestInteraction } from '../../../api/index.ts';
import { FHIR_R4_RESOURCE_TYPES } from '../telemetry/fhir-resource-types.ts';

export interface FhirRequestInfo {
  interaction: RequestInteraction;
  /** The resource type named in the path, whatever it is: routing treats every type alike. */
  resourceType: string | undefined;
  /** Operation name with its `$`, e.g. `$export`. */
  operation: string | undefined;
  /**
   * The path with ids replaced, safe to log: `Patient/{id}/_history/{vid}`. A type outside the R4 list
   * shows as `{type}`: anything in that position of the path (a name sent by mistake) stays out of telemetry.
   */
  routeTemplate: string;
}

const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;
const OPERATION = /^\$[A-Za-z][A-Za-z0-9-]{0,63}$/;

function isResourceType(segment: string): boolean {
  return RESOURCE_TYPE.test(segment);
}

/** The type as it may appear in telemetry. */
function t(type: string): string {
  return FHIR_R4_RESOURCE_TYPES.has(type) ? type : '{type}';
}

function isOperation(segment: string): boolean {
  return OPERATION.test(segment);
}

/** What a request that is not a FHIR interaction (or not yet classified) is labelled as. */
export const UNCLASSIFIED: FhirRequestInfo = { interaction: 'other', resourceType: undefined, operation: undefined, routeTemplate: '{other}' };

function info(
  interaction: RequestInteraction,
  routeTemplate: string,
  resourceType?: string,
  operation?: string,
): FhirRequestInfo {
  return { interaction, resourceType, operation, routeTemplate };
}

/**
 * `segments` are the path segments relative to the destination's FHIR base (routing segment
 * already removed), raw as received.
 */
export function classifyFhirRequest(method: string, segments: readonly string[]): FhirRequestInfo {
  // The switch is on the length, so the segments it reads exist; '' only pads the destructuring.
  const [s0 = '', s1 = '', s2 = '', s3 = ''] = segments;
  switch (segments.length) {
    case 0:
      if (method === 'POST') return info('batch', '');
      if (method === 'GET' || method === 'HEAD') return info('search-system', '');
      return UNCLASSIFIED;
    case 1:
      if (s0 === 'metadata') return info('capabilities', 'metadata');
      if (s0 === '_history') return info('history-system', '_history');
      if (s0 === '_search') return info('search-system', '_search');
      if (isOperation(s0)) return info('operation', s0, undefined, s0);
      if (isResourceType(s0)) {
        switch (method) {
          case 'GET':
          case 'HEAD':
            return info('search-type', t(s0), s0);
          case 'POST':
            return info('create', t(s0), s0);
          // Conditional update / patch / delete address the type with search parameters.
          case 'PUT':
            return info('update', t(s0), s0);
          case 'PATCH':
            return info('patch', t(s0), s0);
          case 'DELETE':
            return info('delete', t(s0), s0);
        }
      }
      return UNCLASSIFIED;
    case 2:
      if (!isResourceType(s0)) return UNCLASSIFIED;
      if (s1 === '_search') return info('search-type', `${t(s0)}/_search`, s0);
      if (s1 === '_history') return info('history-type', `${t(s0)}/_history`, s0);
      if (isOperation(s1)) return info('operation', `${t(s0)}/${s1}`, s0, s1);
      switch (method) {
        case 'GET':
        case 'HEAD':
          return info('read', `${t(s0)}/{id}`, s0);
        case 'PUT':
          return info('update', `${t(s0)}/{id}`, s0);
        case 'PATCH':
          return info('patch', `${t(s0)}/{id}`, s0);
        case 'DELETE':
          return info('delete', `${t(s0)}/{id}`, s0);
      }
      return UNCLASSIFIED;
    case 3:
      if (!isResourceType(s0)) return UNCLASSIFIED;
      if (s2 === '_history') return info('history-instance', `${t(s0)}/{id}/_history`, s0);
      if (isOperation(s2)) return info('operation', `${t(s0)}/{id}/${s2}`, s0, s2);
      // Compartment search: Patient/123/Observation.
      if (isResourceType(s2)) return info('search-type', `${t(s0)}/{id}/${t(s2)}`, s2);
      return UNCLASSIFIED;
    case 4:
      if (!isResourceType(s0)) return UNCLASSIFIED;
      if (s2 === '_history') return info('vread', `${t(s0)}/{id}/_history/{vid}`, s0);
      if (isResourceType(s2) && s3 === '_search') return info('search-type', `${t(s0)}/{id}/${t(s2)}/_search`, s2);
      return UNCLASSIFIED;
    default:
      return UNCLASSIFIED;
  }
}
