// Original file: api/fhirmesh/v1/discovery.proto


export interface ErrorDetail {
  'message'?: (string);
  /**
   * A stable code for why the table was refused, one of NACK_REASONS in api/discovery/nack-reasons.ts
   * (FHIRMESH_TABLE_INVALID, FHIRMESH_DELTA_BASE_MISMATCH, FHIRMESH_NOT_CURRENT). The controller counts
   * NACKs by it; a proxy that sends none (older versions) or an unknown one is counted as such.
   */
  'reason'?: (string);
}

export interface ErrorDetail__Output {
  'message': (string);
  /**
   * A stable code for why the table was refused, one of NACK_REASONS in api/discovery/nack-reasons.ts
   * (FHIRMESH_TABLE_INVALID, FHIRMESH_DELTA_BASE_MISMATCH, FHIRMESH_NOT_CURRENT). The controller counts
   * NACKs by it; a proxy that sends none (older versions) or an unknown one is counted as such.
   */
  'reason': (string);
}
