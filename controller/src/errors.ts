// Every failure the controller reports, by stable code. Callers match on the code, never the message;
// discovery/grpc-errors.ts is the one place that maps a code to a gRPC status.

export const CONTROLLER_ERROR_CODES = [
  /** The first message's identity is missing or malformed (node id, namespace). */
  'FHIRMESH_IDENTITY_INVALID',
  /** The proxy broke a stream rule of discovery.proto (e.g. an ACK naming another version). */
  'FHIRMESH_PROTOCOL_VIOLATION',
  /** The authenticate hook could not establish who the proxy is. */
  'FHIRMESH_UNAUTHENTICATED',
  /** The proxy's token could not be checked right now (TokenReview failed): not the proxy's fault, it retries. */
  'FHIRMESH_AUTHENTICATION_UNAVAILABLE',
  /** The proxy's credentials do not allow what it claims (another namespace). */
  'FHIRMESH_PERMISSION_DENIED',
  /** No ACK/NACK within the ACK deadline: the proxy is dropped and resyncs on reconnect. */
  'FHIRMESH_SLOW_CONSUMER',
  /** A newer stream from the same proxy replaced this one. */
  'FHIRMESH_STREAM_SUPERSEDED',
  /** The controller is stopping; the proxy should reconnect (to another replica). */
  'FHIRMESH_SHUTTING_DOWN',
  /** The route source cannot be read at start-up (missing directory, no cluster access). */
  'FHIRMESH_SOURCE_UNREADABLE',
  /** The gRPC serving certificate or key (--grpc-tls-cert/--grpc-tls-key) cannot be read or do not match. */
  'FHIRMESH_TLS_UNUSABLE',
  'FHIRMESH_INTERNAL',
] as const;

export type ControllerErrorCode = (typeof CONTROLLER_ERROR_CODES)[number];

export class ControllerError extends Error {
  readonly code: ControllerErrorCode;
  constructor(code: ControllerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'ControllerError';
  }
}

export function isControllerError(err: unknown): err is ControllerError {
  return err instanceof ControllerError;
}
