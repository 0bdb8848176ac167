// The one place a controller failure becomes a gRPC status: by stable code; anything without one is
// INTERNAL, with a message that does not leak internals.

import { status, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { isControllerError, type ControllerErrorCode } from '../errors.ts';

const STATUS_OF: Record<ControllerErrorCode, status> = {
  FHIRMESH_IDENTITY_INVALID: status.INVALID_ARGUMENT,
  FHIRMESH_PROTOCOL_VIOLATION: status.INVALID_ARGUMENT,
  FHIRMESH_UNAUTHENTICATED: status.UNAUTHENTICATED,
  FHIRMESH_AUTHENTICATION_UNAVAILABLE: status.UNAVAILABLE,
  FHIRMESH_PERMISSION_DENIED: status.PERMISSION_DENIED,
  FHIRMESH_SLOW_CONSUMER: status.RESOURCE_EXHAUSTED,
  FHIRMESH_STREAM_SUPERSEDED: status.ABORTED,
  FHIRMESH_SHUTTING_DOWN: status.UNAVAILABLE,
  FHIRMESH_SOURCE_UNREADABLE: status.UNAVAILABLE,
  // A start-up failure; never a stream's status, but every code has one.
  FHIRMESH_TLS_UNUSABLE: status.INTERNAL,
  FHIRMESH_INTERNAL: status.INTERNAL,
};

/** The error code travels in the `fhirmesh-error-code` trailer, so a client can match on it too. */
export function toServiceError(err: unknown): ServiceError {
  const code: ControllerErrorCode = isControllerError(err) ? err.code : 'FHIRMESH_INTERNAL';
  const details = isControllerError(err) ? err.message : 'internal error in the controller; see its log';
  const metadata = new Metadata();
  metadata.set('fhirmesh-error-code', code);
  return Object.assign(new Error(details), { code: STATUS_OF[code], details, metadata });
}
