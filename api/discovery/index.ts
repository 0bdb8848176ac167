// The route-discovery contract shared by controller and proxy: the loaded proto, the generated
// message types, and the codec between compiled routes and their wire form.

export { discoveryProto, DISCOVERY_PROTO_PATH } from './proto.ts';
export { encodeSharedResponse, preEncodedRouteDiscoveryService, withNonce } from './encoded-response.ts';
export { decodeRoute, encodeRoute, Interner, RouteDecodeError } from './route-codec.ts';
export { NACK_REASONS, nackReasonLabel, type NackReason } from './nack-reasons.ts';
export type { ProtoGrpcType } from '../generated/discovery.ts';
export type { DiscoveryRequest, DiscoveryRequest__Output } from '../generated/fhirmesh/v1/DiscoveryRequest.ts';
export type { DiscoveryResponse, DiscoveryResponse__Output } from '../generated/fhirmesh/v1/DiscoveryResponse.ts';
export type { ProxyIdentity, ProxyIdentity__Output } from '../generated/fhirmesh/v1/ProxyIdentity.ts';
export type { ProxyStatus, ProxyStatus__Output } from '../generated/fhirmesh/v1/ProxyStatus.ts';
export type { GetProxyStatusResponse, GetProxyStatusResponse__Output } from '../generated/fhirmesh/v1/GetProxyStatusResponse.ts';
export type { Route, Route__Output } from '../generated/fhirmesh/v1/Route.ts';
export type { RouteDiscoveryClient, RouteDiscoveryHandlers } from '../generated/fhirmesh/v1/RouteDiscovery.ts';
