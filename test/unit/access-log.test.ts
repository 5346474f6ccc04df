import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createAccessLog, type AccessEntry } from '../../src/proxy/access-log.js';

function capture(level = 'info') {
  const lines: string[] = [];
  const logger = createLogger({ level, destination: { write: (line: string) => void lines.push(line) } });
  return { logger, lines };
}

const entry: AccessEntry = {
  reqId: '3f6c1a0e-8f0b-4d0e-9a59-2b1f3c4d5e6f',
  upstream: 'apiax',
  method: 'POST',
  path: '/apiax/api/v1/rules',
  status: 201,
  durationMs: 12.34,
  replayed: true,
  generation: 7,
  error: undefined,
  aborted: false,
};

describe('the hand-built access line', () => {
  it('is the line pino would write for the same fields, in the same order', () => {
    const { logger, lines } = capture();
    const { error, aborted, ...fields } = entry;
    expect(error).toBeUndefined();
    expect(aborted).toBe(false);
    logger.info(fields, 'request');
    createAccessLog(logger)(entry);
    expect(lines).toHaveLength(2);
    const [fromPino, fromAccessLog] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const withoutTime = (record: Record<string, unknown> | undefined) => Object.entries(record ?? {}).filter(([key]) => key !== 'time');
    expect(withoutTime(fromAccessLog)).toEqual(withoutTime(fromPino));
    expect(Object.keys(fromAccessLog ?? {})).toEqual(Object.keys(fromPino ?? {}));
    expect(Number.isNaN(Date.parse(String(fromAccessLog?.time)))).toBe(false);
    expect(lines[1]?.endsWith('}\n')).toBe(true);
  });

  it("carries a child logger's bindings, an error code and an aborted response; leaves out what is unknown", () => {
    const { logger, lines } = capture();
    createAccessLog(logger.child({ replica: 'r1' }))({
      ...entry,
      upstream: undefined,
      generation: undefined,
      error: 'ROUTE_NOT_FOUND',
      status: 404,
      aborted: true,
    });
    const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(line).toMatchObject({
      service: 'oauth-sidecar',
      replica: 'r1',
      error: 'ROUTE_NOT_FOUND',
      status: 404,
      aborted: true,
      msg: 'request',
    });
    expect(line).not.toHaveProperty('upstream');
    expect(line).not.toHaveProperty('generation');
  });

  it('keeps a hostile path inside its field, on one line', () => {
    const { logger, lines } = capture();
    const path = '/x","status":200,"msg":"forged"}\n{"level":"error\\\u0000\u2028';
    createAccessLog(logger)({ ...entry, path });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.split('\n')).toHaveLength(2); // the line and the empty rest after its newline
    expect((JSON.parse(lines[0] ?? '') as { path: string; status: number }).path).toBe(path);
    expect((JSON.parse(lines[0] ?? '') as { status: number }).status).toBe(201);
  });

  it('writes nothing when the log level is above info', () => {
    const { logger, lines } = capture('warn');
    createAccessLog(logger)(entry);
    expect(lines).toEqual([]);
  });
});

describe('an access log on a logger made elsewhere', () => {
  it('writes the same fields through pino itself', async () => {
    const { pino } = await import('pino');
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    createAccessLog(logger)(entry);
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      msg: 'request',
      reqId: entry.reqId,
      upstream: 'apiax',
      status: 201,
      replayed: true,
      generation: 7,
    });
  });
});
