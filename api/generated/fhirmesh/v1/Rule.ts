// Original file: api/fhirmesh/v1/discovery.proto

import type { Backend as _fhirmesh_v1_Backend, Backend__Output as _fhirmesh_v1_Backend__Output } from '../../fhirmesh/v1/Backend';

export interface Rule {
  'name'?: (string);
  /**
   * Empty list: the criterion is not used.
   */
  'resourceTypes'?: (string)[];
  'interactions'?: (string)[];
  'operations'?: (string)[];
  'methods'?: (string)[];
  'backend'?: (_fhirmesh_v1_Backend | null);
}

export interface Rule__Output {
  'name': (string);
  /**
   * Empty list: the criterion is not used.
   */
  'resourceTypes': (string)[];
  'interactions': (string)[];
  'operations': (string)[];
  'methods': (string)[];
  'backend': (_fhirmesh_v1_Backend__Output | null);
}
