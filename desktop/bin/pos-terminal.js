#!/usr/bin/env node
// pos-terminal: runs the TypeScript sources through tsx, so `npx pos-terminal` works without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
