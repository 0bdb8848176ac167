// Refuses to run the checks on anything but the pinned Node major: the `node` devDependency
// puts Node 24 first on PATH for every npm script, so another version here means a broken install.
const major = Number(process.versions.node.split('.')[0]);
if (major !== 24) {
  console.error(`fhirmesh needs Node 24 (found ${process.version}); run npm ci so the pinned 'node' package is installed.`);
  process.exit(1);
}
