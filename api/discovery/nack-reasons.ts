// Why a proxy refuses a discovery response (ErrorDetail.reason in discovery.proto): a closed list, so
// the controller can count NACKs by reason with a bounded label.

export const NACK_REASONS = [
  /** The table could not be decoded or indexed (a route the proxy cannot read, a duplicate host). */
  'FHIRMESH_TABLE_INVALID',
  /** A delta based on another version than the one the proxy runs. */
  'FHIRMESH_DELTA_BASE_MISMATCH',
  /** Told `current` at a version the proxy does not run. */
  'FHIRMESH_NOT_CURRENT',
] as const;

export type NackReason = (typeof NACK_REASONS)[number];

/** The label a NACK is counted under: its reason when known, `unspecified` when none was sent, else `other`. */
export function nackReasonLabel(reason: string): NackReason | 'unspecified' | 'other' {
  if (reason === '') return 'unspecified';
  return (NACK_REASONS as readonly string[]).includes(reason) ? (reason as NackReason) : 'other';
}
