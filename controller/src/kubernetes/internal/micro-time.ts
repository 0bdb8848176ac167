// Kubernetes time formats: metav1.MicroTime (Lease renewTime/acquireTime) must carry exactly six
// fractional digits, or the apiserver refuses the object.

/** 2026-03-01T12:00:00.123000Z */
export function microTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
