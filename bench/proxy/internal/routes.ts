// Route tables of any size for the sweep: FhirRoute manifests for fhirmesh (one YAML file,
// used as the routes file and as the controller's routes directory), and the same destinations
// as nginx map entries and HAProxy map lines. Every destination forwards to the one upstream.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DESTINATION } from './fixtures.ts';

/** `acme` (what the load asks for) and count - 1 more. */
export function destinationNames(count: number): string[] {
  const names = [DESTINATION];
  for (let i = 1; i < count; i += 1) names.push(`dest-${String(i).padStart(6, '0')}`);
  return names;
}

// Bodies of up to 4 GiB: the 1 GiB streaming probe must not meet the 10 MiB default (413).
const MAX_BODY_BYTES = 4 * 1024 * 1024 * 1024;

function fhirRoute(destination: string, upstreamPort: number): string {
  return `apiVersion: fhirmesh.io/v1alpha1
kind: FhirRoute
metadata: { name: ${destination}, namespace: default }
spec:
  destination: ${destination}
  addressing: { header: true }
  backend: { url: "http://127.0.0.1:${upstreamPort}" }
  allow: { maxRequestBodyBytes: ${MAX_BODY_BYTES} }
`;
}

export interface RoutesOnDisk {
  readonly count: number;
  /** The routes file (--routes). */
  readonly file: string;
  /** A directory holding only that file (the controller's --routes-dir). */
  readonly directory: string;
  readonly bytes: number;
}

const written = new Map<string, RoutesOnDisk>();

/** Writes the manifests once per directory and size; later calls reuse them. */
export function writeRoutes(baseDirectory: string, count: number, upstreamPort: number): RoutesOnDisk {
  const key = `${baseDirectory}:${count}:${upstreamPort}`;
  const earlier = written.get(key);
  if (earlier !== undefined) return earlier;
  const directory = join(baseDirectory, `routes-${count}`);
  mkdirSync(directory, { recursive: true });
  const file = join(directory, 'routes.yaml');
  const text = destinationNames(count)
    .map((destination) => fhirRoute(destination, upstreamPort))
    .join('---\n');
  writeFileSync(file, text);
  const routes = { count, file, directory, bytes: Buffer.byteLength(text) };
  written.set(key, routes);
  return routes;
}
