#!/usr/bin/env node
// pos-reader-sim: runs the TypeScript sources through tsx, so `npx pos-reader-sim` works without a build step.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/main.ts');
const { processIo } = await import('../src/cli/io.ts');
process.exitCode = await runCli(process.argv.slice(2), processIo());
