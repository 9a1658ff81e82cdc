#!/usr/bin/env node
// `npm start`: set-up, then run the whole system on its embedded defaults.
// The system's parts are still being built; until the terminal exists (the terminal-core issue), this
// says plainly which parts exist and how to use them.
import { checkNode, ensureNpmDeps, root } from './bootstrap.mjs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

checkNode();
ensureNpmDeps();

const parts = [
  {
    dir: 'shared',
    entry: 'src/pinblock/index.ts',
    name: 'shared',
    what: 'payment crypto: ISO 9564-1 PIN blocks (formats 0-4), AES and TDES DUKPT, AES-CMAC, error codes',
  },
  {
    dir: 'tools',
    entry: 'src/cli/main.ts',
    name: 'pos-tools',
    what: 'developer CLI: `npx pos-tools --help`; benchmarks: `npm run bench -- crypto`',
  },
  {
    dir: 'device-sim',
    entry: 'bin/pos-reader-sim.js',
    name: 'reader simulator',
    what: 'the secure card reader on a pseudo-terminal: `npx pos-reader-sim --demo`, then press i',
  },
  {
    dir: 'backend',
    entry: 'bin/pos-backend.js',
    name: 'A&M back-end',
    what: 'attestation & monitoring service: `npx pos-backend` (fleet control and dashboard: not yet)',
  },
  {
    dir: 'desktop',
    entry: 'src/core/index.ts',
    name: 'terminal',
    what: 'the merchant terminal, its core and Electron shell (issues: terminal core, terminal app)',
  },
];

console.log('\nPIN on COTS with continuous attestation: what exists today\n');
for (const p of parts) {
  const built = existsSync(join(root, p.dir, p.entry));
  console.log(`  ${built ? 'built  ' : 'not yet'}  ${p.name.padEnd(17)} ${p.what}`);
}
console.log(
  '\nThe terminal is not built yet, so the whole system (back-end + reader + terminal) cannot run as one.',
);
console.log('Try the parts that exist:');
console.log(
  '  npx pos-tools pinblock encode --format 4 --pin 1234 --pan 4111111111111111 --key AF8CB133A78F8DC2D1359F18527593FB',
);
console.log(
  '  npx pos-tools dukpt derive --bdk FEDCBA9876543210F1F1F1F1F1F1F1F1 --ksn 123456789012345600000001 --usage pin-encryption',
);
console.log('  npx pos-reader-sim --demo      # a reader and a development terminal: press i for a PIN sale');
console.log(
  '  npx pos-backend --dev          # the A&M service on ./.data/backend, development policy (admin token in .data/backend/admin-token)',
);
console.log('  npm test                       # every check and test');
console.log('  npm run bench -- crypto        # also: reader, attest\n');
