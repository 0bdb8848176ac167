import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Addressing as _fhirmesh_v1_Addressing, Addressing__Output as _fhirmesh_v1_Addressing__Output } from './fhirmesh/v1/Addressing';
import type { Backend as _fhirmesh_v1_Backend, Backend__Output as _fhirmesh_v1_Backend__Output } from './fhirmesh/v1/Backend';
import type { DiscoveryRequest as _fhirmesh_v1_DiscoveryRequest, DiscoveryRequest__Output as _fhirmesh_v1_DiscoveryRequest__Output } from './fhirmesh/v1/DiscoveryRequest';
import type { DiscoveryResponse as _fhirmesh_v1_DiscoveryResponse, DiscoveryResponse__Output as _fhirmesh_v1_DiscoveryResponse__Output } from './fhirmesh/v1/DiscoveryResponse';
import type { ErrorDetail as _fhirmesh_v1_ErrorDetail, ErrorDetail__Output as _fhirmesh_v1_ErrorDetail__Output } from './fhirmesh/v1/ErrorDetail';
import type { GetProxyStatusRequest as _fhirmesh_v1_GetProxyStatusRequest, GetProxyStatusRequest__Output as _fhirmesh_v1_GetProxyStatusRequest__Output } from './fhirmesh/v1/GetProxyStatusRequest';
import type { GetProxyStatusResponse as _fhirmesh_v1_GetProxyStatusResponse, GetProxyStatusResponse__Output as _fhirmesh_v1_GetProxyStatusResponse__Output } from './fhirmesh/v1/GetProxyStatusResponse';
import type { ProxyIdentity as _fhirmesh_v1_ProxyIdentity, ProxyIdentity__Output as _fhirmesh_v1_ProxyIdentity__Output } from './fhirmesh/v1/ProxyIdentity';
import type { ProxyStatus as _fhirmesh_v1_ProxyStatus, ProxyStatus__Output as _fhirmesh_v1_ProxyStatus__Output } from './fhirmesh/v1/ProxyStatus';
import type { Route as _fhirmesh_v1_Route, Route__Output as _fhirmesh_v1_Route__Output } from './fhirmesh/v1/Route';
import type { RouteDiscoveryClient as _fhirmesh_v1_RouteDiscoveryClient, RouteDiscoveryDefinition as _fhirmesh_v1_RouteDiscoveryDefinition } from './fhirmesh/v1/RouteDiscovery';
import type { RouteSource as _fhirmesh_v1_RouteSource, RouteSource__Output as _fhirmesh_v1_RouteSource__Output } from './fhirmesh/v1/RouteSource';
import type { Rule as _fhirmesh_v1_Rule, Rule__Output as _fhirmesh_v1_Rule__Output } from './fhirmesh/v1/Rule';
import type { Tls as _fhirmesh_v1_Tls, Tls__Output as _fhirmesh_v1_Tls__Output } from './fhirmesh/v1/Tls';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  fhirmesh: {
    v1: {
      Addressing: MessageTypeDefinition<_fhirmesh_v1_Addressing, _fhirmesh_v1_Addressing__Output>
      Backend: MessageTypeDefinition<_fhirmesh_v1_Backend, _fhirmesh_v1_Backend__Output>
      DiscoveryRequest: MessageTypeDefinition<_fhirmesh_v1_DiscoveryRequest, _fhirmesh_v1_DiscoveryRequest__Output>
      DiscoveryResponse: MessageTypeDefinition<_fhirmesh_v1_DiscoveryResponse, _fhirmesh_v1_DiscoveryResponse__Output>
      ErrorDetail: MessageTypeDefinition<_fhirmesh_v1_ErrorDetail, _fhirmesh_v1_ErrorDetail__Output>
      GetProxyStatusRequest: MessageTypeDefinition<_fhirmesh_v1_GetProxyStatusRequest, _fhirmesh_v1_GetProxyStatusRequest__Output>
      GetProxyStatusResponse: MessageTypeDefinition<_fhirmesh_v1_GetProxyStatusResponse, _fhirmesh_v1_GetProxyStatusResponse__Output>
      ProxyIdentity: MessageTypeDefinition<_fhirmesh_v1_ProxyIdentity, _fhirmesh_v1_ProxyIdentity__Output>
      ProxyStatus: MessageTypeDefinition<_fhirmesh_v1_ProxyStatus, _fhirmesh_v1_ProxyStatus__Output>
      Route: MessageTypeDefinition<_fhirmesh_v1_Route, _fhirmesh_v1_Route__Output>
      /**
       * RouteDiscovery streams destination tables from the controller to each proxy.
       * 
       * The stream (StreamRoutes), in the manner of xDS:
       * 
       * 1. The proxy MUST open with a DiscoveryRequest carrying `identity` and, in `version_info`,
       * the table version it already holds (from its last-known-good file), or "" if none.
       * The controller MUST NOT answer before it has read its sources once: an empty answer from a
       * controller that has not yet listed its routes would wipe every proxy's table.
       * 2. The controller MUST then answer at once: a full snapshot (`full_snapshot` = true), or, when
       * the proxy's version equals the table in force for it, a response with `current` = true and
       * that version (nothing to apply).
       * 3. After that the controller sends deltas: `upserted` routes (whole routes, replacing any with the
       * same destination id) and `removed` destination ids, on top of `base_version`, which is the
       * version the proxy last ACKed. Changes are batched over a short window. The controller MUST
       * NOT send a response whose version equals the proxy's ACKed version (never an unchanged table).
       * 4. A stream has at most one response in flight: the controller sends the next one only after the
       * proxy has ACKed or NACKed the previous, and coalesces every change made meanwhile into it.
       * This bounds what a stream holds to one response however fast routes change.
       * 5. The proxy MUST apply a response atomically (all routes or none; requests in flight finish on
       * the table they started with), then answer with a DiscoveryRequest echoing `response_nonce`:
       * - ACK: `version_info` = the version it now runs, no `error_detail`;
       * - NACK: `version_info` = the version it still runs (the previous one), and `error_detail`
       * saying why. The proxy keeps its previous table. A delta whose `base_version` is not the
       * version the proxy runs MUST be NACKed.
       * The controller records the NACK (route status, metric, GetProxyStatus) and does not resend the
       * same version; the next change produces a new response. After a NACK the next response is a
       * full snapshot.
       * 6. A proxy that does not answer a response within the controller's ACK deadline is too slow:
       * the controller closes the stream with RESOURCE_EXHAUSTED, counts it, and the proxy reconnects
       * and is resynced with a fresh snapshot.
       * 7. The proxy SHOULD reconnect with jittered exponential backoff and keeps serving its last good
       * table while disconnected (fail-static).
       * 
       * Scope: a proxy receives only the routes visible to its namespace (the route's own namespace, plus
       * those its `exportTo` lists, or all for "*"). Versions are content hashes of the scoped table, so
       * two proxies in the same scope share versions.
       */
      RouteDiscovery: SubtypeConstructor<typeof grpc.Client, _fhirmesh_v1_RouteDiscoveryClient> & { service: _fhirmesh_v1_RouteDiscoveryDefinition }
      RouteSource: MessageTypeDefinition<_fhirmesh_v1_RouteSource, _fhirmesh_v1_RouteSource__Output>
      Rule: MessageTypeDefinition<_fhirmesh_v1_Rule, _fhirmesh_v1_Rule__Output>
      Tls: MessageTypeDefinition<_fhirmesh_v1_Tls, _fhirmesh_v1_Tls__Output>
    }
  }
}

