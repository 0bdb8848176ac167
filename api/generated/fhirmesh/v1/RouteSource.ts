// Original file: api/fhirmesh/v1/discovery.proto

import type { Long } from '@grpc/proto-loader';

export interface RouteSource {
  'namespace'?: (string);
  'name'?: (string);
  'generation'?: (number | string | Long);
}

export interface RouteSource__Output {
  'namespace': (string);
  'name': (string);
  'generation': (number);
}
