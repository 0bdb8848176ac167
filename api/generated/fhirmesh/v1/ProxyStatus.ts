// Original file: api/fhirmesh/v1/discovery.proto

import type { ProxyIdentity as _fhirmesh_v1_ProxyIdentity, ProxyIdentity__Output as _fhirmesh_v1_ProxyIdentity__Output } from '../../fhirmesh/v1/ProxyIdentity';
import type { Long } from '@grpc/proto-loader';

export interface ProxyStatus {
  'identity'?: (_fhirmesh_v1_ProxyIdentity | null);
  /**
   * The version the proxy last ACKed ("" if none yet).
   */
  'ackedVersion'?: (string);
  /**
   * The version it should run (the table in force for its scope).
   */
  'targetVersion'?: (string);
  /**
   * Set when its last answer was a NACK.
   */
  'nackedVersion'?: (string);
  'nackMessage'?: (string);
  /**
   * SYNCED (acked == target), STALE (behind, no NACK), NACKED (last answer a NACK).
   */
  'syncState'?: (string);
  'connectedAtUnixMs'?: (number | string | Long);
}

export interface ProxyStatus__Output {
  'identity': (_fhirmesh_v1_ProxyIdentity__Output | null);
  /**
   * The version the proxy last ACKed ("" if none yet).
   */
  'ackedVersion': (string);
  /**
   * The version it should run (the table in force for its scope).
   */
  'targetVersion': (string);
  /**
   * Set when its last answer was a NACK.
   */
  'nackedVersion': (string);
  'nackMessage': (string);
  /**
   * SYNCED (acked == target), STALE (behind, no NACK), NACKED (last answer a NACK).
   */
  'syncState': (string);
  'connectedAtUnixMs': (number);
}
