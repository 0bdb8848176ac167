// Original file: api/fhirmesh/v1/discovery.proto


export interface ErrorDetail {
  'message'?: (string);
}

export interface ErrorDetail__Output {
  'message': (string);
}
