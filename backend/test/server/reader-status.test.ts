/**
 * Through the API with a real reader identity (the simulator's development manufacturer CA) and the
 * default reader-status verifier: the reader's signed status decides whether PIN entry is possible.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CA_CERT_FILE, CA_DIR, createIdentity, type ReaderIdentity } from '@pos/device-sim/state/identity';
import { runCli } from '../../src/cli/main';
import {
  makeHarness,
  realReaderStatus,
  seedReferenceValues,
  signReaderStatus,
  SimTerminal,
  useRealReader,
  type Harness,
} from '../helpers';

let dir: string;
let identity: ReaderIdentity;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pos-api-reader-'));
  const made = await createIdentity(join(dir, 'reader'));
  if (!made.ok) throw new Error(made.code);
  identity = made.identity;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let h: Harness;
beforeEach(async () => {
  h = await makeHarness({}, { readerCaRoots: [identity.caCertificateDer] });
  // The simulator's certificates are valid from a minute before the real time they were made; the
  // harness's fixed clock would put every check before that once the real date passes it.
  h.clock.t = Date.now();
  await seedReferenceValues(h);
});
afterEach(async () => {
  await h.close();
});

interface AttestOut {
  verdict: { tier: string; reasons: { code: string }[] };
  ticket?: { use: string };
  halted: boolean;
}

describe('reader status through the API', () => {
  it('a genuine, untampered reader earns an affirming verdict and a PIN-entry ticket', async () => {
    const t = new SimTerminal(h);
    useRealReader(t, identity);
    expect((await t.enroll()).statusCode).toBe(201);
    const nonce = 'cmVhZGVyLW5vbmNlLTAwMDI';
    const out = (await t.attest('pre-pin', { nonce }, { nonce })).json<AttestOut>();
    expect(out.verdict.tier).toBe('affirming');
    expect(out.ticket?.use).toBe('pin-entry');
  });

  it('a tampered reader halts the terminal', async () => {
    const t = new SimTerminal(h);
    useRealReader(t, identity);
    await t.enroll();
    useRealReader(t, identity, { tamper: true });
    const out = (await t.attest()).json<AttestOut>();
    expect(out.verdict.tier).toBe('contraindicated');
    expect(out.halted).toBe(true);
    expect(out.ticket).toBeUndefined();
  });

  it('a status signed by another reader than the paired one is refused', async () => {
    const t = new SimTerminal(h);
    useRealReader(t, identity);
    await t.enroll();
    const other = await createIdentity(join(dir, 'other'));
    if (!other.ok) throw new Error(other.code);
    const report = signReaderStatus(
      realReaderStatus(other.identity, h.clock.now(), 1, {
        fwHash: new Uint8Array(32),
        ksnCounter: 1,
        battery: 50,
      }),
      other.identity,
    );
    t.readerStatus = () => report;
    const out = (await t.attest()).json<AttestOut>();
    expect(out.verdict.tier).not.toBe('affirming');
    expect(out.ticket?.use).not.toBe('pin-entry');
  });

  it('pos-backend --reader-ca loads the manufacturer CA from the simulator state directory', async () => {
    const errs: string[] = [];
    const run = await runCli(
      [
        '--data-dir',
        join(dir, 'backend'),
        '--port',
        '0',
        '--reader-ca',
        join(dir, 'reader', CA_DIR, CA_CERT_FILE),
      ],
      { out: () => undefined, err: (l) => errs.push(l) },
      { POS_LOG_LEVEL: 'silent', POS_MASTER_KEY: 'Q'.repeat(43) },
    );
    await run.stop?.();
    expect(run.code).toBe(0);
    expect(errs.join('\n')).not.toContain('no --reader-ca');
  });
});
