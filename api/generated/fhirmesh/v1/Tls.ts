// Original file: api/fhirmesh/v1/discovery.proto


export interface Tls {
  'serverName'?: (string);
  'caPem'?: (string);
  'certPem'?: (string);
  'keyPem'?: (string);
}

export interface Tls__Output {
  'serverName': (string);
  'caPem': (string);
  'certPem': (string);
  'keyPem': (string);
}
