#!/usr/bin/env node
// pos-terminal-ui: the terminal with its UI in a browser (the browser shell). Runs the TypeScript
// sources through tsx's API (not --import, so execArgv stays clean for the attestation).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/browser-shell/main.ts');
process.exitCode = await main(process.argv.slice(2));
