/**
 * Issue 5, "Seeing it": the Grafana dashboard (deploy/grafana/oauth-sidecar.json) queries only metrics,
 * and labels of those metrics, that a real running proxy exports on /metrics. The proxy is driven through
 * a request, a token rejection (refresh + replay) and a failed store write so every series the dashboard
 * reads exists. The checker is also fed mutated copies of the dashboard, to show it does catch a renamed
 * metric or label and a hard-coded datasource uid.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../helpers/fake-provider.js';
import { createOutageStore } from '../helpers/outage-store.js';
import { configYaml, eventually, startProxy, type RunningProxy } from '../helpers/start-proxy.js';
import { sample, upstreamYaml } from './token-fixtures.js';

const DASHBOARD_PATH = new URL('../../deploy/grafana/oauth-sidecar.json', import.meta.url);

const REQUIRED_PANELS = [
  'Request rate by upstream and status',
  'Upstream latency p50 / p99',
  'Replays by outcome',
  'Refreshes by outcome',
  'Token refresh latency p99',
  'Time to token expiry',
  'Dead credentials',
  'Store write failures',
];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function loadDashboard(): JsonObject {
  const parsed = JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8')) as Json;
  if (!isObject(parsed)) throw new Error('dashboard is not a JSON object');
  return parsed;
}

// ---------------------------------------------------------------------------------------------------
// What the dashboard queries

interface Query {
  /** Where it sits, for messages: a panel title and refId, or a template variable. */
  where: string;
  expr: string;
  /** Labels named in the legend ({{label}}), which must exist on the metrics queried. */
  legendLabels: string[];
}

interface Panel {
  title: string;
  type: string;
  raw: JsonObject;
}

/** Every panel, including those nested in rows. */
function panelsOf(dashboard: JsonObject): Panel[] {
  const out: Panel[] = [];
  const walk = (list: Json | undefined) => {
    if (!Array.isArray(list)) return;
    for (const panel of list) {
      if (!isObject(panel)) continue;
      out.push({ title: String(panel.title ?? ''), type: String(panel.type ?? ''), raw: panel });
      walk(panel.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

function queriesOf(dashboard: JsonObject): Query[] {
  const queries: Query[] = [];
  for (const panel of panelsOf(dashboard)) {
    const targets = panel.raw.targets;
    if (!Array.isArray(targets)) continue;
    for (const target of targets) {
      if (!isObject(target) || typeof target.expr !== 'string') continue;
      const legend = typeof target.legendFormat === 'string' ? target.legendFormat : '';
      queries.push({
        where: `panel "${panel.title}" target ${String(target.refId ?? '?')}`,
        expr: target.expr,
        legendLabels: [...legend.matchAll(/\{\{\s*([A-Za-z_]\w*)\s*\}\}/g)].map((m) => m[1] ?? ''),
      });
    }
  }
  const templating = dashboard.templating;
  const variables = isObject(templating) && Array.isArray(templating.list) ? templating.list : [];
  for (const variable of variables) {
    if (!isObject(variable) || variable.type !== 'query') continue;
    const query = isObject(variable.query) ? variable.query.query : variable.query;
    for (const expr of [query, variable.definition]) {
      if (typeof expr === 'string' && expr) queries.push({ where: `variable "${String(variable.name)}"`, expr, legendLabels: [] });
    }
  }
  return queries;
}

const METRIC = /\boauth_sidecar_[a-z0-9_]*[a-z0-9]/g;

function metricsIn(text: string): string[] {
  return [...new Set(text.match(METRIC) ?? [])];
}

/** Index of the parenthesis matching the one at `open` (forwards or backwards), or -1. */
function matchingParen(text: string, open: number): number {
  const forward = text[open] === '(';
  let depth = 0;
  for (let i = open; forward ? i < text.length : i >= 0; i += forward ? 1 : -1) {
    const ch = text[i];
    if (ch === '(' || ch === ')') depth += (ch === '(') === forward ? 1 : -1;
    if (depth === 0) return i;
  }
  return -1;
}

interface LabelUse {
  label: string;
  /** The series names (as written in the query) the label must exist on. */
  metrics: string[];
  how: string;
}

/**
 * Labels a PromQL expression relies on: `{label=…}` matchers (on the selector's metric), `by (…)` of an
 * aggregation (on the metrics inside the aggregated expression), and Grafana's label_values(metric, label).
 */
function labelUses(expr: string): LabelUse[] {
  const uses: LabelUse[] = [];
  for (const m of expr.matchAll(/\b(oauth_sidecar_[a-z0-9_]*[a-z0-9])\s*\{([^}]*)\}/g)) {
    const metric = m[1] ?? '';
    for (const matcher of (m[2] ?? '').matchAll(/([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*"/g))
      uses.push({ label: matcher[1] ?? '', metrics: [metric], how: 'matcher' });
  }
  for (const m of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
    const start = m.index;
    const end = start + m[0].length;
    // `sum by (x) (expr)` or `sum (expr) by (x)`.
    let argument = '';
    const after = expr.slice(end).search(/\S/);
    if (after >= 0 && expr[end + after] === '(') {
      const close = matchingParen(expr, end + after);
      if (close > 0) argument = expr.slice(end + after, close + 1);
    } else {
      const before = expr.slice(0, start).trimEnd();
      if (before.endsWith(')')) {
        const open = matchingParen(expr, before.length - 1);
        if (open >= 0) argument = expr.slice(open, before.length);
      }
    }
    const metrics = metricsIn(argument || expr);
    for (const label of (m[1] ?? '')
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean))
      uses.push({ label, metrics, how: 'by (…)' });
  }
  for (const m of expr.matchAll(/\blabel_values\s*\(\s*(oauth_sidecar_[a-z0-9_]*[a-z0-9])\s*(?:\{[^}]*\})?\s*,\s*([A-Za-z_]\w*)\s*\)/g)) {
    uses.push({ label: m[2] ?? '', metrics: [m[1] ?? ''], how: 'label_values' });
  }
  return uses;
}

// ---------------------------------------------------------------------------------------------------
// What the proxy exports

interface Exposition {
  /** Metric family (as in `# TYPE <name> <type>`) to its type. */
  types: Map<string, string>;
  /** Sample name (e.g. x_bucket) to every label name seen on its lines. */
  labels: Map<string, Set<string>>;
}

function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const labels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1] ?? '', type[2] ?? '');
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const series = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? \S+/.exec(line);
    if (!series) continue;
    const name = series[1] ?? '';
    const set = labels.get(name) ?? new Set<string>();
    for (const label of (series[2] ?? '').matchAll(/([A-Za-z_]\w*)="(?:[^"\\]|\\.)*"/g)) set.add(label[1] ?? '');
    labels.set(name, set);
  }
  return { types, labels };
}

const SUFFIXES: Record<string, string[]> = { _bucket: ['histogram'], _sum: ['histogram', 'summary'], _count: ['histogram', 'summary'] };

/** Problems with one series name as queried; none when it is one the proxy exports. */
function checkSeriesName(name: string, exposition: Exposition): string[] {
  const type = exposition.types.get(name);
  if (type === 'histogram' || type === 'summary') return [`${name} is a ${type}: query ${name}_bucket, _sum or _count`];
  if (type) return [];
  for (const [suffix, allowed] of Object.entries(SUFFIXES)) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const baseType = exposition.types.get(base);
    if (!baseType) return [`${base} (queried as ${name}) is not exported: no "# TYPE ${base}"`];
    if (!allowed.includes(baseType)) return [`${base} is a ${baseType}, it has no ${suffix} series (queried as ${name})`];
    return [];
  }
  return [`${name} is not exported: no "# TYPE ${name}"`];
}

/** Every problem with the dashboard's queries against the exposition; empty when it all matches. */
function checkDashboardAgainstMetrics(dashboard: JsonObject, metricsText: string): string[] {
  const exposition = parseExposition(metricsText);
  const problems: string[] = [];
  const queries = queriesOf(dashboard);
  if (queries.length === 0) problems.push('the dashboard has no queries');
  for (const query of queries) {
    const names = metricsIn(query.expr);
    if (names.length === 0) problems.push(`${query.where}: queries no oauth_sidecar_ metric: ${query.expr}`);
    const badNames = new Set<string>();
    for (const name of names) {
      const found = checkSeriesName(name, exposition);
      if (found.length > 0) badNames.add(name);
      for (const problem of found) problems.push(`${query.where}: ${problem}`);
    }
    const uses = [...labelUses(query.expr), ...query.legendLabels.map((label) => ({ label, metrics: names, how: 'legend' }))];
    // metric -> label -> how it is used
    const byMetric = new Map<string, Map<string, Set<string>>>();
    for (const use of uses) {
      for (const metric of use.metrics) {
        if (badNames.has(metric)) continue; // already reported
        const labels = byMetric.get(metric) ?? new Map<string, Set<string>>();
        labels.set(use.label, (labels.get(use.label) ?? new Set<string>()).add(use.how));
        byMetric.set(metric, labels);
      }
    }
    for (const [metric, labels] of byMetric) {
      const present = exposition.labels.get(metric);
      if (!present) {
        problems.push(
          `${query.where}: ${metric} has no series on /metrics, so its labels (${[...labels.keys()].join(', ')}) cannot be checked`,
        );
        continue;
      }
      for (const [label, hows] of labels) {
        if (!present.has(label))
          problems.push(
            `${query.where}: label "${label}" (${[...hows].join(', ')}) is not on ${metric} (it has ${[...present].sort().join(', ') || 'no labels'})`,
          );
      }
    }
  }
  return problems;
}

/** Datasource references that are not template variables (a hard-coded uid or name). */
function hardCodedDatasources(dashboard: JsonObject): string[] {
  const found: string[] = [];
  const isVariable = (value: string) => /^\$(\{\w+\}|\w+)$/.test(value);
  const walk = (value: Json | undefined, path: string) => {
    if (Array.isArray(value)) value.forEach((item, i) => walk(item, `${path}[${i}]`));
    if (!isObject(value)) return;
    for (const [key, child] of Object.entries(value)) {
      if (key === 'datasource') {
        if (typeof child === 'string' && !isVariable(child)) found.push(`${path}.datasource = ${child}`);
        if (isObject(child) && typeof child.uid === 'string' && child.type !== 'grafana' && !isVariable(child.uid))
          found.push(`${path}.datasource.uid = ${child.uid}`);
      }
      walk(child, `${path}.${key}`);
    }
  };
  walk(dashboard, '$');
  return found;
}

// ---------------------------------------------------------------------------------------------------

describe('Grafana dashboard against a running proxy', () => {
  let fake: FakeProvider | undefined;
  let proxy: RunningProxy | undefined;
  let metrics = '';

  beforeAll(async () => {
    fake = await startFakeProvider({ kind: 'apiax' });
    const store = createOutageStore();
    proxy = await startProxy(configYaml(upstreamYaml(fake, { seed: fake.issueRefreshToken(), auth: 'refreshWithoutLock: true' })), {
      store,
      manualStop: true,
    });
    const call = (path: string) => fetch(`${proxy?.url ?? ''}/apiax${path}`);
    expect((await call('/first')).status).toBe(200);
    // The upstream rejects the token while the store is down: a refresh (reason rejected), a replay, and a
    // failed write of the new token record.
    store.down = true;
    fake.expireAccessTokens();
    expect((await call('/second')).status).toBe(200);
    const running = proxy;
    await eventually(
      async () => (sample(await (await fetch(`${running.adminUrl}/metrics`)).text(), 'oauth_sidecar_store_write_failures_total') ?? 0) > 0,
      5000,
      'a store write failure',
    );
    store.down = false;
    metrics = await (await fetch(`${running.adminUrl}/metrics`)).text();
  });

  afterAll(async () => {
    await proxy?.stop();
    await fake?.close();
  });

  it('the proxy has the series the dashboard needs (so the checks below are not vacuous)', () => {
    expect(sample(metrics, 'oauth_sidecar_requests_total', { upstream: 'apiax', status: '200' })).toBe(2);
    expect(sample(metrics, 'oauth_sidecar_replays_total', { upstream: 'apiax', outcome: 'accepted' })).toBe(1);
    expect(sample(metrics, 'oauth_sidecar_token_refreshes_total', { upstream: 'apiax', outcome: 'success', reason: 'rejected' })).toBe(1);
    expect(sample(metrics, 'oauth_sidecar_token_refresh_duration_seconds_count', { upstream: 'apiax' })).toBeGreaterThanOrEqual(2);
    expect(sample(metrics, 'oauth_sidecar_upstream_duration_seconds_bucket', { upstream: 'apiax', le: '+Inf' })).toBe(3); // 2 requests + 1 replay
    expect(sample(metrics, 'oauth_sidecar_token_expires_in_seconds', { upstream: 'apiax' })).toBeGreaterThan(0);
    expect(sample(metrics, 'oauth_sidecar_credential_dead', { upstream: 'apiax' })).toBe(0);
    expect(sample(metrics, 'oauth_sidecar_store_write_failures_total', { upstream: 'apiax' })).toBeGreaterThan(0);
  });

  it('every metric and label the dashboard queries is exported by the proxy', () => {
    const dashboard = loadDashboard();
    const queried = new Set(queriesOf(dashboard).flatMap((query) => metricsIn(query.expr)));
    // Every metric docs/operations.md lists is on the dashboard (histograms through _bucket).
    expect([...queried].sort()).toEqual([
      'oauth_sidecar_credential_dead',
      'oauth_sidecar_replays_total',
      'oauth_sidecar_requests_total',
      'oauth_sidecar_store_write_failures_total',
      'oauth_sidecar_token_expires_in_seconds',
      'oauth_sidecar_token_refresh_duration_seconds_bucket',
      'oauth_sidecar_token_refreshes_total',
      'oauth_sidecar_upstream_duration_seconds_bucket',
    ]);
    expect(checkDashboardAgainstMetrics(dashboard, metrics)).toEqual([]);
  });

  it('the checker reports a renamed metric, a renamed label and a histogram queried without _bucket', () => {
    const dashboard = loadDashboard();
    const mutated = JSON.parse(
      JSON.stringify(dashboard)
        .replaceAll('oauth_sidecar_replays_total', 'oauth_sidecar_replay_total')
        .replaceAll('oauth_sidecar_upstream_duration_seconds_bucket', 'oauth_sidecar_upstream_latency_seconds_bucket')
        .replaceAll('oauth_sidecar_token_refresh_duration_seconds_bucket', 'oauth_sidecar_token_refresh_duration_seconds')
        .replace(
          'sum by (upstream, outcome) (increase(oauth_sidecar_token_refreshes_total',
          'sum by (upstream, result) (increase(oauth_sidecar_token_refreshes_total',
        )
        .replaceAll('label_values(oauth_sidecar_requests_total, upstream)', 'label_values(oauth_sidecar_requests_total, upstreams)'),
    ) as JsonObject;
    expect(JSON.stringify(mutated)).not.toBe(JSON.stringify(dashboard));
    const problems = checkDashboardAgainstMetrics(mutated, metrics);
    const about = (text: string) => problems.filter((problem) => problem.includes(text));
    expect(about('oauth_sidecar_replay_total is not exported')).toHaveLength(1);
    expect(
      about('oauth_sidecar_upstream_latency_seconds (queried as oauth_sidecar_upstream_latency_seconds_bucket) is not exported'),
    ).toHaveLength(2); // p50 and p99
    expect(
      about('oauth_sidecar_token_refresh_duration_seconds is a histogram: query oauth_sidecar_token_refresh_duration_seconds_bucket'),
    ).toHaveLength(1);
    expect(about('label "result" (by (…)) is not on oauth_sidecar_token_refreshes_total')).toHaveLength(1);
    expect(about('label "upstreams" (label_values) is not on oauth_sidecar_requests_total')).toHaveLength(2); // definition and query
    expect(problems).toHaveLength(7);

    // A label matcher and a legend label on a metric that lacks them.
    const matcher = structuredClone(dashboard);
    const panel = panelsOf(matcher).find((p) => p.title === 'Dead credentials');
    const target = panel && Array.isArray(panel.raw.targets) ? panel.raw.targets[0] : undefined;
    if (!isObject(target)) throw new Error('no target on the Dead credentials panel');
    target.expr = 'max by (upstream) (oauth_sidecar_credential_dead{status="200"})';
    target.legendFormat = '{{outcome}}';
    expect(checkDashboardAgainstMetrics(matcher, metrics)).toEqual([
      'panel "Dead credentials" target A: label "status" (matcher) is not on oauth_sidecar_credential_dead (it has upstream)',
      'panel "Dead credentials" target A: label "outcome" (legend) is not on oauth_sidecar_credential_dead (it has upstream)',
    ]);

    // A metric that exists but has no series cannot have its labels checked, and is reported.
    const withoutStoreFailures = metrics
      .split('\n')
      .filter((line) => !line.startsWith('oauth_sidecar_store_write_failures_total{'))
      .join('\n');
    expect(checkDashboardAgainstMetrics(dashboard, withoutStoreFailures)).toEqual([
      'panel "Store write failures" target A: oauth_sidecar_store_write_failures_total has no series on /metrics, so its labels (upstream) cannot be checked',
    ]);
  });
});

describe('Grafana dashboard file', () => {
  it('is a Grafana dashboard with the panels docs/operations.md names, units, and the upstream variable', () => {
    const dashboard = loadDashboard();
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const panels = panelsOf(dashboard);
    const titles = panels.map((panel) => panel.title);
    for (const title of REQUIRED_PANELS) expect(titles, `panel "${title}"`).toContain(title);

    const unitOf = (title: string) => {
      const fieldConfig = panels.find((panel) => panel.title === title)?.raw.fieldConfig;
      return isObject(fieldConfig) && isObject(fieldConfig.defaults) ? fieldConfig.defaults.unit : undefined;
    };
    expect(unitOf('Request rate by upstream and status')).toBe('reqps');
    for (const title of ['Upstream latency p50 / p99', 'Token refresh latency p99', 'Time to token expiry'])
      expect(unitOf(title), title).toBe('s');

    const latencyExprs = queriesOf(dashboard)
      .filter((query) => query.where.startsWith('panel "Upstream latency'))
      .map((query) => query.expr);
    expect(latencyExprs.some((expr) => expr.startsWith('histogram_quantile(0.5,'))).toBe(true);
    expect(latencyExprs.some((expr) => expr.startsWith('histogram_quantile(0.99,'))).toBe(true);

    // Dead credentials: a stat panel that turns red at 1.
    const dead = panels.find((panel) => panel.title === 'Dead credentials');
    expect(dead?.type).toBe('stat');
    const deadDefaults = isObject(dead?.raw.fieldConfig) && isObject(dead.raw.fieldConfig.defaults) ? dead.raw.fieldConfig.defaults : {};
    const steps = isObject(deadDefaults.thresholds) ? deadDefaults.thresholds.steps : undefined;
    expect(steps).toEqual(expect.arrayContaining([{ color: 'red', value: 1 }]));

    const templating =
      isObject(dashboard.templating) && Array.isArray(dashboard.templating.list) ? dashboard.templating.list.filter(isObject) : [];
    expect(templating.find((variable) => variable.type === 'datasource')).toMatchObject({ name: 'DS_PROMETHEUS', query: 'prometheus' });
    expect(templating.find((variable) => variable.name === 'upstream')).toMatchObject({
      type: 'query',
      definition: 'label_values(oauth_sidecar_requests_total, upstream)',
    });
    for (const query of queriesOf(dashboard).filter((q) => q.where.startsWith('panel')))
      expect(query.expr, query.where).toContain('upstream=~"$upstream"');
  });

  it('hard-codes no datasource uid (every panel and target uses the datasource variable)', () => {
    const dashboard = loadDashboard();
    expect(hardCodedDatasources(dashboard)).toEqual([]);
    const panels = panelsOf(dashboard).filter((panel) => Array.isArray(panel.raw.targets));
    expect(panels.length).toBeGreaterThanOrEqual(REQUIRED_PANELS.length);
    for (const panel of panels) expect(panel.raw.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });

    const mutated = structuredClone(dashboard);
    const first = panelsOf(mutated)[0];
    if (!first) throw new Error('no panel');
    first.raw.datasource = { type: 'prometheus', uid: 'P1809F7CD0C75ACF3' };
    expect(hardCodedDatasources(mutated)).toEqual(['$.panels[0].datasource.uid = P1809F7CD0C75ACF3']);
  });
});
