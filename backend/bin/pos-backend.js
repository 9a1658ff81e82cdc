#!/usr/bin/env node
// pos-backend: runs the TypeScript sources through tsx, so `npx pos-backend` works without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv.slice(2));
