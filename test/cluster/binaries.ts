// Finds the kube-apiserver and etcd binaries the cluster tests run: explicit paths from the environment,
// else the cache that build/build-control-plane.sh fills for the release pinned in build/versions.env.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const VERSIONS_FILE = new URL('./build/versions.env', import.meta.url);
const BUILD_COMMAND = 'bash test/cluster/build/build-control-plane.sh';

export interface PinnedVersions {
  kubeVersion: string;
  etcdVersion: string;
}

export interface ControlPlaneBinaries {
  kubeApiserver: string;
  etcd: string;
  /** The release the binaries were looked up for; the running apiserver's /version is the authority. */
  kubeVersion: string;
}

/** The versions in build/versions.env, which the build script also reads. */
export function pinnedVersions(): PinnedVersions {
  const text = fs.readFileSync(VERSIONS_FILE, 'utf8');
  const read = (name: string): string => {
    const match = new RegExp(`^${name}=(\\S+)$`, 'm').exec(text);
    if (!match?.[1]) throw new Error(`${VERSIONS_FILE.pathname} has no ${name}= line`);
    return match[1];
  };
  return { kubeVersion: read('PINNED_KUBE_VERSION'), etcdVersion: read('PINNED_ETCD_VERSION') };
}

/** Where the build script puts the binaries for one Kubernetes release. */
export function cacheDir(kubeVersion: string): string {
  const root = process.env['FHIRMESH_CACHE'] || path.join(os.homedir(), '.cache', 'fhirmesh');
  return path.join(root, 'k8s', kubeVersion);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * FHIRMESH_KUBE_APISERVER / FHIRMESH_ETCD when set, else the cache for KUBE_VERSION or the pinned release.
 * Throws with the command that builds them when one is missing.
 */
export function locateBinaries(): ControlPlaneBinaries {
  const kubeVersion = process.env['KUBE_VERSION'] || pinnedVersions().kubeVersion;
  const dir = cacheDir(kubeVersion);
  const find = (envName: string, file: string): string => {
    const fromEnv = process.env[envName];
    if (fromEnv) {
      if (!isExecutable(fromEnv)) throw new Error(`${envName}=${fromEnv} is not an executable file: fix or unset it`);
      return fromEnv;
    }
    const cached = path.join(dir, file);
    if (!isExecutable(cached)) {
      throw new Error(
        `no ${file} for Kubernetes ${kubeVersion} at ${cached}: run \`${BUILD_COMMAND}\` ` +
          `(about 10 minutes the first time, then cached), or set ${envName} to a ${file} binary`,
      );
    }
    return cached;
  };
  return { kubeApiserver: find('FHIRMESH_KUBE_APISERVER', 'kube-apiserver'), etcd: find('FHIRMESH_ETCD', 'etcd'), kubeVersion };
}
