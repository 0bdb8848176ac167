// Original file: api/fhirmesh/v1/discovery.proto

import type { RouteSource as _fhirmesh_v1_RouteSource, RouteSource__Output as _fhirmesh_v1_RouteSource__Output } from '../../fhirmesh/v1/RouteSource';
import type { Addressing as _fhirmesh_v1_Addressing, Addressing__Output as _fhirmesh_v1_Addressing__Output } from '../../fhirmesh/v1/Addressing';
import type { Backend as _fhirmesh_v1_Backend, Backend__Output as _fhirmesh_v1_Backend__Output } from '../../fhirmesh/v1/Backend';
import type { Rule as _fhirmesh_v1_Rule, Rule__Output as _fhirmesh_v1_Rule__Output } from '../../fhirmesh/v1/Rule';
import type { Long } from '@grpc/proto-loader';

/**
 * One compiled FhirRoute: what api/fhirroute/types.ts calls CompiledRoute.
 */
export interface Route {
  'source'?: (_fhirmesh_v1_RouteSource | null);
  'destinationId'?: (string);
  'addressing'?: (_fhirmesh_v1_Addressing | null);
  'publicBaseUrl'?: (string);
  'backend'?: (_fhirmesh_v1_Backend | null);
  'rules'?: (_fhirmesh_v1_Rule)[];
  'allowedMethods'?: (string)[];
  'maxRequestBodyBytes'?: (number | string | Long);
  'connectTimeoutMs'?: (number);
  'firstByteTimeoutMs'?: (number);
  'idleTimeoutMs'?: (number);
  'retryAttempts'?: (number);
  'retryOn'?: (string)[];
  'rewriteResponseUrls'?: (boolean);
  'exportTo'?: (string)[];
  /**
   * allow.encodedPathSeparators: forward %2F / %5C inside a path segment.
   */
  'allowEncodedPathSeparators'?: (boolean);
}

/**
 * One compiled FhirRoute: what api/fhirroute/types.ts calls CompiledRoute.
 */
export interface Route__Output {
  'source': (_fhirmesh_v1_RouteSource__Output | null);
  'destinationId': (string);
  'addressing': (_fhirmesh_v1_Addressing__Output | null);
  'publicBaseUrl': (string);
  'backend': (_fhirmesh_v1_Backend__Output | null);
  'rules': (_fhirmesh_v1_Rule__Output)[];
  'allowedMethods': (string)[];
  'maxRequestBodyBytes': (number);
  'connectTimeoutMs': (number);
  'firstByteTimeoutMs': (number);
  'idleTimeoutMs': (number);
  'retryAttempts': (number);
  'retryOn': (string)[];
  'rewriteResponseUrls': (boolean);
  'exportTo': (string)[];
  /**
   * allow.encodedPathSeparators: forward %2F / %5C inside a path segment.
   */
  'allowEncodedPathSeparators': (boolean);
}
