/**
 * `${VAR}` and `${VAR:-default}` substitution in every string of the parsed YAML (never in the raw text,
 * so a variable's value cannot inject YAML). `$${` writes a literal `${`.
 */

const reference = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, problems: string[], path: string[] = []): unknown {
  if (typeof value === 'string') return interpolateString(value, env, problems, path);
  if (Array.isArray(value)) return value.map((item, index) => interpolateEnv(item, env, problems, [...path, String(index)]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = interpolateEnv(item, env, problems, [...path, key]);
    return out;
  }
  return value;
}

function interpolateString(text: string, env: NodeJS.ProcessEnv, problems: string[], path: string[]): string {
  return text.replace(reference, (match, name: string | undefined, fallback: string | undefined) => {
    if (name === undefined) return '${'; // the $${ escape
    const found = env[name];
    if (found !== undefined && found !== '') return found;
    if (fallback !== undefined) return fallback;
    if (found === '') return '';
    problems.push(`${path.join('.')}: environment variable ${name} is not set (write \${${name}:-} to make it optional)`);
    return match;
  });
}
