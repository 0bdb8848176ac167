// Original file: api/fhirmesh/v1/discovery.proto

import type { ProxyStatus as _fhirmesh_v1_ProxyStatus, ProxyStatus__Output as _fhirmesh_v1_ProxyStatus__Output } from '../../fhirmesh/v1/ProxyStatus';

export interface GetProxyStatusResponse {
  'proxies'?: (_fhirmesh_v1_ProxyStatus)[];
  'controllerId'?: (string);
}

export interface GetProxyStatusResponse__Output {
  'proxies': (_fhirmesh_v1_ProxyStatus__Output)[];
  'controllerId': (string);
}
