// Original file: api/fhirmesh/v1/discovery.proto

import type { ProxyIdentity as _fhirmesh_v1_ProxyIdentity, ProxyIdentity__Output as _fhirmesh_v1_ProxyIdentity__Output } from '../../fhirmesh/v1/ProxyIdentity';
import type { ErrorDetail as _fhirmesh_v1_ErrorDetail, ErrorDetail__Output as _fhirmesh_v1_ErrorDetail__Output } from '../../fhirmesh/v1/ErrorDetail';

export interface DiscoveryRequest {
  /**
   * First message only.
   */
  'identity'?: (_fhirmesh_v1_ProxyIdentity | null);
  /**
   * First message: the version held from disk, or "". ACK: the version applied. NACK: the version
   * still running.
   */
  'versionInfo'?: (string);
  /**
   * The nonce of the response this ACKs or NACKs; "" on the first message.
   */
  'responseNonce'?: (string);
  /**
   * Set on a NACK only.
   */
  'errorDetail'?: (_fhirmesh_v1_ErrorDetail | null);
}

export interface DiscoveryRequest__Output {
  /**
   * First message only.
   */
  'identity': (_fhirmesh_v1_ProxyIdentity__Output | null);
  /**
   * First message: the version held from disk, or "". ACK: the version applied. NACK: the version
   * still running.
   */
  'versionInfo': (string);
  /**
   * The nonce of the response this ACKs or NACKs; "" on the first message.
   */
  'responseNonce': (string);
  /**
   * Set on a NACK only.
   */
  'errorDetail': (_fhirmesh_v1_ErrorDetail__Output | null);
}
