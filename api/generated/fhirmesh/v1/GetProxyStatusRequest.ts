// Original file: api/fhirmesh/v1/discovery.proto


export interface GetProxyStatusRequest {
}

export interface GetProxyStatusRequest__Output {
}
