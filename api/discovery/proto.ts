// Loads fhirmesh/v1/discovery.proto for @grpc/grpc-js with the same options the committed types in
// api/generated were made with (npm run gen:proto), so runtime objects match those types.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../generated/discovery.ts';
import { packageFile } from '../package-file.ts';

export const DISCOVERY_PROTO_PATH = packageFile('api/fhirmesh/v1/discovery.proto');

/** Must match the gen:proto flags: --longs=Number --enums=String --defaults --oneofs. */
const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true };

let loaded: ProtoGrpcType | undefined;

export function discoveryProto(): ProtoGrpcType {
  loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(DISCOVERY_PROTO_PATH, LOADER_OPTIONS)) as unknown as ProtoGrpcType;
  return loaded;
}
