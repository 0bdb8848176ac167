// Kubernetes resource quantities ("100m", "128Mi", "1.5", "2e3"), just enough to check an annotation
// before it reaches the apiserver: a value it would refuse must not block the pod.

// apimachinery's resource.Quantity grammar (splitRE in quantity.go), anchored.
const QUANTITY = /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;
const SUFFIX: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The value as a number (approximate for huge ones), or undefined when it is no quantity. */
export function parseQuantity(text: string): number | undefined {
  const m = QUANTITY.exec(text);
  if (m === null) return undefined;
  const [, digits = '', suffix = ''] = m;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(digits)) return undefined;
  const base = Number(digits);
  if (suffix in SUFFIX) return base * (SUFFIX[suffix] ?? 1);
  const exponent = /^[eE]([-+]?\d+)$/.exec(suffix);
  return exponent === null ? undefined : base * 10 ** Number(exponent[1]);
}

export function isQuantity(text: string): boolean {
  const value = parseQuantity(text);
  return value !== undefined && value >= 0;
}
