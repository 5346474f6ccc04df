/**
 * The error registry stays honest: every code the source raises or answers with is registered, every
 * registered code is raised somewhere, and every error class carries a code (extends SidecarError).
 * The source is read as text, so a code written anywhere in src/ is seen, whatever module it is in.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorRegistry } from '../../src/errors.js';

const srcDir = path.join(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

const sources = sourceFiles(srcDir).map((file) => ({ file: path.relative(srcDir, file), text: readFileSync(file, 'utf8') }));

/**
 * The ways a code is raised or answered with: as the first argument of an error's constructor or of
 * super() in one, as an object's `code:`, or set as a request's errorCode (an access-log field).
 */
const CODE_USES = [
  /\bnew\s+[A-Z]\w*Error\(\s*'([A-Z][A-Z0-9_]+)'/g,
  /\bsuper\(\s*'([A-Z][A-Z0-9_]+)'/g,
  /\bcode:\s*'([A-Z][A-Z0-9_]+)'/g,
  /\berrorCode\s*=\s*'([A-Z][A-Z0-9_]+)'/g,
];

function codesUsed(): Map<string, string[]> {
  const used = new Map<string, string[]>();
  for (const { file, text } of sources) {
    for (const pattern of CODE_USES) {
      for (const match of text.matchAll(pattern)) {
        const code = match[1]!;
        used.set(code, [...(used.get(code) ?? []), file]);
      }
    }
  }
  return used;
}

/** Error classes not yet on the registry, each with the file it is in; this list only shrinks. */
const PENDING_CLASSES: Record<string, string> = {};

describe('error registry', () => {
  it('registers every code the source raises or answers with', () => {
    const used = codesUsed();
    const unregistered = [...used].filter(([code]) => !(code in ErrorRegistry)).map(([code, files]) => `${code} (${files.join(', ')})`);
    expect(unregistered).toEqual([]);
  });

  it('registers no code that the source never raises', () => {
    const used = codesUsed();
    expect(Object.keys(ErrorRegistry).filter((code) => !used.has(code))).toEqual([]);
  });

  it('gives every HTTP code a status and every code a one-line meaning', () => {
    for (const [code, entry] of Object.entries(ErrorRegistry)) {
      expect(code, code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(entry.meaning, code).toMatch(/^[^\n]{10,140}$/);
      if ('status' in entry) expect(entry.status, code).toBeGreaterThanOrEqual(400);
    }
  });

  it('every error class carries a registered code: none extends Error directly but the base', () => {
    const direct = sources.flatMap(({ file, text }) =>
      [...text.matchAll(/\bclass\s+(\w+)\s+extends\s+(?:Error|TypeError|RangeError)\b/g)].map((match) => ({ name: match[1]!, file })),
    );
    const unexpected = direct.filter(
      ({ name, file }) => !(file === 'errors.ts' && name === 'SidecarError') && PENDING_CLASSES[name] !== file,
    );
    expect(unexpected).toEqual([]);
    // A class that has been moved onto the registry leaves the pending list.
    const stale = Object.entries(PENDING_CLASSES).filter(
      ([name, file]) => !direct.some((found) => found.name === name && found.file === file),
    );
    expect(stale).toEqual([]);
  });
});
