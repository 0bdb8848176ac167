// DiscoveryResponses serialised once and shared by every stream that sends the same table: the
// encoding of every field but `nonce`, with each stream's nonce appended as its own field.

import type { ServiceDefinition } from '@grpc/grpc-js';
import type { DiscoveryResponse } from '../generated/fhirmesh/v1/DiscoveryResponse.ts';
import { discoveryProto } from './proto.ts';

/** field 2 (nonce), wire type 2 (length-delimited): (2 << 3) | 2. */
const NONCE_TAG = 0x12;

/**
 * The wire form of a response without its nonce. Protobuf parsers take the last occurrence of a
 * scalar field, so these bytes followed by an encoding of `nonce` alone (withNonce) are a valid
 * DiscoveryResponse carrying that nonce; with none appended, nonce reads as "".
 */
export function encodeSharedResponse(response: Omit<DiscoveryResponse, 'nonce'>): Buffer {
  // The loaded service's own serializer, so the bytes are what grpc-js would have written.
  return discoveryProto().fhirmesh.v1.RouteDiscovery.service.StreamRoutes.responseSerialize({ ...response });
}

/** One stream's message: the shared bytes, then its nonce. The shared bytes are only read. */
export function withNonce(shared: Buffer, nonce: string): Buffer {
  const nonceBytes = Buffer.byteLength(nonce);
  const length = varintLength(nonceBytes);
  const out = Buffer.allocUnsafe(shared.length + 1 + length + nonceBytes);
  shared.copy(out, 0);
  let at = shared.length;
  out[at++] = NONCE_TAG;
  for (let value = nonceBytes; ; value >>>= 7) {
    if (value < 0x80) {
      out[at++] = value;
      break;
    }
    out[at++] = (value & 0x7f) | 0x80;
  }
  out.write(nonce, at, 'utf8');
  return out;
}

/**
 * The RouteDiscovery service definition for a server that writes pre-encoded responses: a Buffer
 * written to a StreamRoutes call goes out as it is; any other value is serialised as usual.
 */
export function preEncodedRouteDiscoveryService(): ServiceDefinition {
  const service = discoveryProto().fhirmesh.v1.RouteDiscovery.service;
  const serialize = service.StreamRoutes.responseSerialize;
  return {
    ...service,
    StreamRoutes: {
      ...service.StreamRoutes,
      responseSerialize: (value: DiscoveryResponse | Buffer): Buffer => (Buffer.isBuffer(value) ? value : serialize(value)),
    },
  };
}

function varintLength(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value >>>= 7;
    bytes++;
  }
  return bytes;
}
