// Kubernetes time formats: metav1.MicroTime (Lease renewTime/acquireTime) must carry exactly six
// fractional digits, or the apiserver refuses the object; metav1.Time has whole seconds.

/** 2026-03-01T12:00:00.123000Z */
export function microTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Milliseconds since the epoch of a MicroTime or Time string; undefined when it does not parse. */
export function parseKubeTime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}
