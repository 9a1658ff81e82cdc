/**
 * Test support: a test A&M ticket key (signed with jose, as the back-end does), a test terminal key,
 * temporary state directories, and host-side checks of what the reader produced.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  aesDukptWorkingKey,
  createMemoryLinkPair,
  decodePinBlock,
  decryptCardData,
  DEV_BDK_HEX,
  hex,
  jwkThumbprint,
  parsePan,
  pinDigitsToText,
  TICKET_AUDIENCE,
  TICKET_TYPE,
  wipe,
  type AesKsn,
  type CardRecord,
  type EncryptedCardData,
  type ReaderLink,
  type TicketClaims,
} from '@pos/shared';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { DevTerminal, type DevTerminalOptions } from '../src/dev/terminal';
import { Simulator, type SimulatorOptions } from '../src/sim';

export const TEST_KID = 'test-am-2026';

export interface TestAm {
  readonly kid: string;
  readonly jwks: { keys: JWK[] };
  sign(claims: Partial<TicketClaims>, opts?: { kid?: string }): Promise<string>;
}

/** A test A&M ticket signer. `sign` fills every claim with a valid default the test may override. */
export async function makeTestAm(kid = TEST_KID): Promise<TestAm> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const pub = await exportJWK(publicKey);
  let n = 0;
  return {
    kid,
    jwks: { keys: [{ ...pub, kid, alg: 'ES256', use: 'sig' }] },
    async sign(claims, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const full: Record<string, unknown> = {
        iss: 'urn:pos:am:test',
        sub: 'terminal-1',
        aud: TICKET_AUDIENCE,
        iat: now,
        exp: now + 60,
        jti: `jti-${Date.now()}-${n++}-${Math.random().toString(36).slice(2)}`,
        mid: 'merchant-1',
        use: 'pin-entry',
        tier: 'affirming',
        perm: ['transact', 'pin-entry'],
        ...claims,
      };
      return new SignJWT(full)
        .setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? kid, typ: TICKET_TYPE })
        .sign(privateKey);
    },
  };
}

export interface TestTerminalKey {
  readonly jwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string };
  readonly thumbprint: string;
}

export async function makeTerminalKey(): Promise<TestTerminalKey> {
  const { publicKey } = await generateKeyPair('ES256', { extractable: true });
  const j = await exportJWK(publicKey);
  const jwk = { kty: 'EC' as const, crv: 'P-256' as const, x: j.x ?? '', y: j.y ?? '' };
  return { jwk, thumbprint: jwkThumbprint(jwk) };
}

/** A fresh temporary state directory; `cleanup` removes it. */
export function tempStateDir(): { dir: string; cleanup: () => void } {
  const base = mkdtempSync(join(tmpdir(), 'pos-reader-sim-test-'));
  const dir = join(base, 'state');
  return { dir, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

/** Host side: the PIN in a PIN block, as text (tests only), from the development BDK and the KSN. */
export function hostDecodePin(pinBlock: Uint8Array, ksn: AesKsn, pan: string): string {
  const key = aesDukptWorkingKey({ bdk: hex(DEV_BDK_HEX), ksn, usage: 'pin-encryption', keyType: 'aes128' });
  if (!key.ok) throw new Error(key.code);
  const p = parsePan(pan);
  if (!p.ok) throw new Error(p.code);
  const pin = decodePinBlock({ format: 4, block: pinBlock, pan: p.pan, key: key.key });
  wipe(key.key);
  if (!pin.ok) throw new Error(pin.code);
  const text = pinDigitsToText(pin.pin);
  wipe(pin.pin);
  return text;
}

/** Host side: the card record in encrypted card data. */
export function hostDecryptCard(data: EncryptedCardData, ksn: AesKsn): CardRecord {
  const key = aesDukptWorkingKey({ bdk: hex(DEV_BDK_HEX), ksn, usage: 'data-encryption', keyType: 'aes128' });
  if (!key.ok) throw new Error(key.code);
  const card = decryptCardData(key.key, data, ksn);
  wipe(key.key);
  if (!card.ok) throw new Error(card.code);
  return card.card;
}

export function digits(text: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) - 0x30;
  return out;
}

/** A session ticket expiry an hour after `nowMs` (seconds), for sessions set on the firmware directly. */
export function liveExp(nowMs: number = Date.now()): number {
  return Math.floor(nowMs / 1000) + 3600;
}

/** What a test undoes after it, last first (each file runs them in its `afterEach`). */
export type Cleanups = (() => Promise<void> | void)[];

/**
 * A simulator on the in-process HID transport in a fresh temporary state directory, trusting `am`'s
 * ticket key. `cleanups` gets the directory's removal, then the simulator's stop.
 */
export async function startHidSim(
  cleanups: Cleanups,
  am: TestAm,
  options: Omit<SimulatorOptions, 'stateDir' | 'transport'> = {},
): Promise<Simulator> {
  const t = tempStateDir();
  cleanups.push(t.cleanup);
  const started = await Simulator.start({ ...options, stateDir: t.dir, transport: 'hid' });
  if (!started.ok) throw new Error(started.code);
  const sim = started.sim;
  cleanups.push(() => sim.stop());
  sim.fw.trust(am.jwks);
  return sim;
}

/**
 * A development terminal's handshake with `sim` over a fresh in-memory link (attached to the sim);
 * throws when it fails. `terminalEnd` is the terminal's end of the link, for raw sends. The caller
 * closes the terminal when it should be closed.
 */
export async function connectMemoryTerminal(
  sim: Simulator,
  signTicket: DevTerminalOptions['signTicket'],
): Promise<{ term: DevTerminal; terminalEnd: ReaderLink }> {
  const identity = sim.fw.identity;
  if (identity === undefined) throw new Error('no identity');
  const [terminalEnd, readerEnd] = createMemoryLinkPair();
  sim.attachLink(readerEnd);
  const r = await DevTerminal.connect({
    link: terminalEnd,
    caCertificateDer: identity.caCertificateDer,
    serial: sim.ready.serial,
    signTicket,
  });
  if (!r.ok) throw new Error(`${r.code}: ${r.detail}`);
  return { term: r.terminal, terminalEnd };
}
