// Original file: api/fhirmesh/v1/discovery.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { DiscoveryRequest as _fhirmesh_v1_DiscoveryRequest, DiscoveryRequest__Output as _fhirmesh_v1_DiscoveryRequest__Output } from '../../fhirmesh/v1/DiscoveryRequest';
import type { DiscoveryResponse as _fhirmesh_v1_DiscoveryResponse, DiscoveryResponse__Output as _fhirmesh_v1_DiscoveryResponse__Output } from '../../fhirmesh/v1/DiscoveryResponse';
import type { GetProxyStatusRequest as _fhirmesh_v1_GetProxyStatusRequest, GetProxyStatusRequest__Output as _fhirmesh_v1_GetProxyStatusRequest__Output } from '../../fhirmesh/v1/GetProxyStatusRequest';
import type { GetProxyStatusResponse as _fhirmesh_v1_GetProxyStatusResponse, GetProxyStatusResponse__Output as _fhirmesh_v1_GetProxyStatusResponse__Output } from '../../fhirmesh/v1/GetProxyStatusResponse';

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
export interface RouteDiscoveryClient extends grpc.Client {
  /**
   * One-shot view of the connected proxies, for `fhirmesh status`.
   */
  GetProxyStatus(argument: _fhirmesh_v1_GetProxyStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fhirmesh_v1_GetProxyStatusResponse__Output>): grpc.ClientUnaryCall;
  GetProxyStatus(argument: _fhirmesh_v1_GetProxyStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fhirmesh_v1_GetProxyStatusResponse__Output>): grpc.ClientUnaryCall;
  GetProxyStatus(argument: _fhirmesh_v1_GetProxyStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fhirmesh_v1_GetProxyStatusResponse__Output>): grpc.ClientUnaryCall;
  GetProxyStatus(argument: _fhirmesh_v1_GetProxyStatusRequest, callback: grpc.requestCallback<_fhirmesh_v1_GetProxyStatusResponse__Output>): grpc.ClientUnaryCall;
  /**
   * One-shot view of the connected proxies, for `fhirmesh status`.
   */
  getProxyStatus(argument: _fhirmesh_v1_GetProxyStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fhirmesh_v1_GetProxyStatusResponse__Output>): grpc.ClientUnaryCall;
  getProxyStatus(argument: _fhirmesh_v1_GetProxyStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fhirmesh_v1_GetProxyStatusResponse__Output>): grpc.ClientUnaryCall;
  getProxyStatus(argument: _fhirmesh_v1_GetProxyStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fhirmesh_v1_GetProxyStatusResponse__Output>): grpc.ClientUnaryCall;
  getProxyStatus(argument: _fhirmesh_v1_GetProxyStatusRequest, callback: grpc.requestCallback<_fhirmesh_v1_GetProxyStatusResponse__Output>): grpc.ClientUnaryCall;
  
  StreamRoutes(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_fhirmesh_v1_DiscoveryRequest, _fhirmesh_v1_DiscoveryResponse__Output>;
  StreamRoutes(options?: grpc.CallOptions): grpc.ClientDuplexStream<_fhirmesh_v1_DiscoveryRequest, _fhirmesh_v1_DiscoveryResponse__Output>;
  streamRoutes(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_fhirmesh_v1_DiscoveryRequest, _fhirmesh_v1_DiscoveryResponse__Output>;
  streamRoutes(options?: grpc.CallOptions): grpc.ClientDuplexStream<_fhirmesh_v1_DiscoveryRequest, _fhirmesh_v1_DiscoveryResponse__Output>;
  
}

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
export interface RouteDiscoveryHandlers extends grpc.UntypedServiceImplementation {
  /**
   * One-shot view of the connected proxies, for `fhirmesh status`.
   */
  GetProxyStatus: grpc.handleUnaryCall<_fhirmesh_v1_GetProxyStatusRequest__Output, _fhirmesh_v1_GetProxyStatusResponse>;
  
  StreamRoutes: grpc.handleBidiStreamingCall<_fhirmesh_v1_DiscoveryRequest__Output, _fhirmesh_v1_DiscoveryResponse>;
  
}

export interface RouteDiscoveryDefinition extends grpc.ServiceDefinition {
  GetProxyStatus: MethodDefinition<_fhirmesh_v1_GetProxyStatusRequest, _fhirmesh_v1_GetProxyStatusResponse, _fhirmesh_v1_GetProxyStatusRequest__Output, _fhirmesh_v1_GetProxyStatusResponse__Output>
  StreamRoutes: MethodDefinition<_fhirmesh_v1_DiscoveryRequest, _fhirmesh_v1_DiscoveryResponse, _fhirmesh_v1_DiscoveryRequest__Output, _fhirmesh_v1_DiscoveryResponse__Output>
}
