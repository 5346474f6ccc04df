/**
 * Reads one counter out of Prometheus text exposition: the sum over all its label sets. A counter
 * that was never incremented may be missing entirely (prom-client omits label sets it never saw),
 * which reads as 0.
 */

/** Label block with quoted values that may themselves contain "}" or escaped quotes. */
const labels = String.raw`(?:\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?`;

export function sumCounter(text, name) {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const line = new RegExp(`^${escaped}${labels}\\s+(\\S+)`, 'gm');
  let sum = 0;
  for (const match of text.matchAll(line)) {
    const value = Number(match[1]);
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}
