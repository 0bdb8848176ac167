// Finds a file shipped with the package (the CRD, the .proto) from wherever this module runs: the
// sources under node 24's type stripping, or the compiled copy in dist/ that images ship.

import fs from 'node:fs';
import path from 'node:path';

export function packageFile(relativePath: string): string {
  for (let dir = import.meta.dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, relativePath);
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`fhirmesh: ${relativePath} is missing from the installation (looked above ${import.meta.dirname})`);
  }
}
