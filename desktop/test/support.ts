/**
 * Test support for the desktop core: a development ticket signer (device-sim's dev A&M), a terminal
 * device key, the handshake function the reader connection runs (shared `connectToReader`), and the
 * in-process reader simulator with a driver that reaches it over memory links.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devAm, newP256KeyPair, type DevAm } from '@pos/device-sim/dev/am';
import { Simulator, type SimulatorOptions } from '@pos/device-sim/sim';
import {
  connectToReader,
  createMemoryLinkPair,
  jwkFromPublicKey,
  jwkThumbprint,
  ok,
  p256Signer,
} from '@pos/shared';
import { expect } from 'vitest';
import type { HandshakeFn } from '../src/core/reader/connection';
import { LostSignal, type ReaderDevice, type ReaderDriver } from '../src/core/reader/device';

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

/** What a test undoes after it, last first (each file runs them in its `afterEach`). */
export type Cleanups = (() => Promise<void> | void)[];

/**
 * The reader simulator on its in-process HID transport, in a fresh temporary state directory, trusting
 * `term`'s development A&M key (asserted). `cleanups` gets the directory's removal, then the stop.
 * Resolves with the reader's CA certificate and serial, what a handshake checks.
 */
export async function startTrustingSim(
  cleanups: Cleanups,
  term: TestTerminal,
  options: Omit<SimulatorOptions, 'stateDir' | 'transport'> = {},
): Promise<{ sim: Simulator; caCertificateDer: Uint8Array; serial: string }> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const started = await Simulator.start({ ...options, stateDir: t.dir, transport: 'hid' });
  if (!started.ok) throw new Error(started.code);
  const sim = started.sim;
  cleanups.push(() => sim.stop());
  expect(sim.fw.trust(term.am.jwks).ok).toBe(true);
  const identity = sim.fw.identity;
  if (identity === undefined) throw new Error('no identity');
  return { sim, caCertificateDer: identity.caCertificateDer, serial: sim.ready.serial };
}

/** A reader driver whose every `open` attaches a fresh in-memory link to `sim` (a "serial" device). */
export function memoryReaderDriver(sim: Simulator): ReaderDriver {
  return {
    kind: 'serial',
    open: () => {
      const [a, b] = createMemoryLinkPair();
      sim.attachLink(b);
      const lost = new LostSignal();
      const device: ReaderDevice = {
        kind: 'serial',
        where: 'memory',
        link: a,
        onLost: (cb) => lost.on(cb),
        close: () => {
          a.close();
          return Promise.resolve();
        },
        get closed() {
          return a.closed;
        },
      };
      return Promise.resolve(ok({ device }));
    },
  };
}
