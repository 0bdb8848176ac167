// Original file: api/fhirmesh/v1/discovery.proto


export interface Addressing {
  'header'?: (boolean);
  'pathSegment'?: (boolean);
  /**
   * Lower-case, no port.
   */
  'hosts'?: (string)[];
  'queryParameter'?: (boolean);
}

export interface Addressing__Output {
  'header': (boolean);
  'pathSegment': (boolean);
  /**
   * Lower-case, no port.
   */
  'hosts': (string)[];
  'queryParameter': (boolean);
}
