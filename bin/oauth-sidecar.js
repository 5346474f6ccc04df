#!/usr/bin/env node
// Thin runner so `npm ci` + `oauth-sidecar` works: the TypeScript is compiled to dist/ by `prepare`.
import { main } from '../dist/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (error) => {
    console.error(`oauth-sidecar: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
