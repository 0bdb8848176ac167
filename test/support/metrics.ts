// Reads a process's Prometheus text from its admin server: what a test counts when the feature it
// pins leaves no other trace (a reload, a refusal, an aborted response, requests in flight).

/**
 * The sum of the samples of `name` whose labels include every one of `labels` (all samples when
 * none are given); undefined when no sample matches, so a renamed metric cannot pass as 0.
 */
export async function metricValue(adminUrl: string, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  let sum: number | undefined;
  for (const row of text.split('\n')) {
    const match = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(row);
    if (match?.[1] !== name) continue;
    const set = match[2] ?? '';
    if (Object.entries(labels).every(([key, value]) => set.includes(`${key}="${value}"`))) sum = (sum ?? 0) + Number(match[3]);
  }
  return sum;
}
