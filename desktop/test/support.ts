/**
 * Test support for the desktop core: a development ticket signer (device-sim's dev A&M), a terminal
 * device key, and the handshake function the reader connection runs (shared `connectToReader`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devAm, newP256KeyPair, type DevAm } from '@pos/device-sim/dev/am';
import { connectToReader, jwkFromPublicKey, jwkThumbprint, p256Signer } from '@pos/shared';
import type { HandshakeFn } from '../src/core/reader/connection';

export interface TestTerminal {
  readonly am: DevAm;
  readonly thumbprint: string;
  readonly secretKey: Uint8Array;
  handshake(caCertificateDer: Uint8Array, serial: string): HandshakeFn;
}

export function testTerminal(am: DevAm = devAm()): TestTerminal {
  const key = newP256KeyPair();
  const thumbprint = jwkThumbprint(jwkFromPublicKey(key.publicKey));
  return {
    am,
    thumbprint,
    secretKey: key.secretKey,
    handshake: (caCertificateDer, serial) => async (link) => {
      const sessionTicket = am.sign({
        use: 'session',
        cnf: { jkt: thumbprint },
        rsn: serial,
        perm: ['transact'],
      });
      const r = await connectToReader(link, {
        deviceKey: p256Signer(key.secretKey),
        sessionTicket,
        trustedRoots: [caCertificateDer],
        now: () => Math.floor(Date.now() / 1000),
        expectedSerial: serial,
        timeoutMs: 5000,
      });
      return r.ok ? { ok: true, session: r.session } : r;
    },
  };
}

/** A fresh temporary directory; `cleanup` removes it. */
export function tempDir(prefix = 'pos-desktop-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Waits (event-loop turns, no fixed delay) until `cond` holds; throws after `limit` turns of ~10 ms. */
export async function until(cond: () => boolean, what: string, limit = 1000): Promise<void> {
  for (let i = 0; i < limit; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for: ${what}`);
}
