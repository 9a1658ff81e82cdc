/**
 * pos-tools agrees with an independent implementation (node:crypto, written from the standards' text:
 * test/src/reference) on random inputs, in process for many inputs and through the real binary for a few.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runCli } from '@pos/tools/cli/main';
import * as ref from '../src/reference/node-crypto';

function cli(...argv: string[]): { code: number; out: string; err: string } {
  const out: string[] = [];
  const err: string[] = [];
  const code = runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();
const digits = (min: number, max: number): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...'0123456789'), { minLength: min, maxLength: max }).map((a) => a.join(''));
const aesKey = fc.constantFrom(16, 24, 32).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
const popcount = (n: number): number => n.toString(2).replace(/0/g, '').length;
/** A counter a device really uses: 1..0xFFFF0000 with at most 16 one-bits. */
const aesCounter = fc.integer({ min: 1, max: 0xffff0000 }).filter((c) => popcount(c) <= 16);
const USAGES = [
  'key-encryption',
  'pin-encryption',
  'mac-generation',
  'mac-verification',
  'mac-both',
  'data-encryption',
  'data-decryption',
  'data-both',
] as const;
const TYPES = ['aes128', 'aes192', 'aes256'] as const;

describe('pos-tools agrees with node:crypto reference implementations', () => {
  it('format 4 PIN blocks: encode matches, and decode returns the PIN', () => {
    fc.assert(
      fc.property(
        digits(4, 12),
        digits(1, 19),
        aesKey,
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        (pin, pan, key, fill) => {
          const expected = hexOf(ref.format4Encipher(key, pin, pan, fill));
          const enc = cli(
            'pinblock',
            'encode',
            '--format',
            '4',
            '--pin',
            pin,
            '--pan',
            pan,
            '--key',
            hexOf(key),
            '--fill',
            hexOf(fill),
          );
          expect(enc).toEqual({ code: 0, out: expected, err: '' });
          const dec = cli(
            'pinblock',
            'decode',
            '--format',
            '4',
            '--block',
            expected,
            '--pan',
            pan,
            '--key',
            hexOf(key),
          );
          expect(dec).toEqual({ code: 0, out: pin, err: '' });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('AES DUKPT working keys for every usage and allowed key type', () => {
    fc.assert(
      fc.property(
        aesKey,
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        aesCounter,
        fc.constantFrom(...USAGES),
        fc.constantFrom(...TYPES),
        (bdk, ikid, counter, usage, keyType) => {
          const ksn = Buffer.alloc(12);
          Buffer.from(ikid).copy(ksn);
          ksn.writeUInt32BE(counter, 8);
          const r = cli(
            'dukpt',
            'derive',
            '--bdk',
            hexOf(bdk),
            '--ksn',
            hexOf(ksn),
            '--usage',
            usage,
            '--key-type',
            keyType,
          );
          if (
            TYPES.indexOf(keyType) >
            TYPES.indexOf(bdk.length === 16 ? 'aes128' : bdk.length === 24 ? 'aes192' : 'aes256')
          ) {
            expect(r.code).toBe(1);
            expect(r.err).toMatch(/POS_ERR_DUKPT_KEY_TOO_STRONG/);
          } else {
            expect(r).toEqual({
              code: 0,
              out: hexOf(ref.aesDukptWorkingKey(bdk, ksn, usage, keyType)),
              err: '',
            });
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('TDES DUKPT working keys (PIN, MAC and data variants)', () => {
    const tdesCounter = fc.integer({ min: 1, max: 0x1fffff }).filter((c) => popcount(c) <= 10);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 10, maxLength: 10 }),
        tdesCounter,
        fc.constantFrom(
          'pin-encryption',
          'mac-generation',
          'mac-verification',
          'data-encryption',
          'data-decryption',
        ),
        (bdk, ksnBase, counter, usage) => {
          const ksn = Buffer.from(ksnBase);
          ksn[7] = ((ksn[7] ?? 0) & 0xe0) | (counter >> 16);
          ksn[8] = (counter >> 8) & 0xff;
          ksn[9] = counter & 0xff;
          const r = cli('dukpt', 'derive', '--bdk', hexOf(bdk), '--ksn', hexOf(ksn), '--usage', usage);
          expect(r).toEqual({ code: 0, out: hexOf(ref.tdesDukptWorkingKey(bdk, ksn, usage)), err: '' });
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('the pos-tools binary (npx pos-tools)', () => {
  const bin = fileURLToPath(new URL('../../tools/bin/pos-tools.js', import.meta.url));
  const exec = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

  it('prints a PIN block and exits 0', () => {
    const r = exec(
      'pinblock',
      'encode',
      '--format',
      '4',
      '--pin',
      '1234',
      '--pan',
      '4111111111111111',
      '--key',
      'AF8CB133A78F8DC2D1359F18527593FB',
      '--fill',
      '2F69ADDE2E9E7ACE',
    );
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 0,
      stdout: 'A912150391AB65A67E52883D81CE2D15\n',
      stderr: '',
    });
  });

  it('refuses bad input with one coded line on stderr and a non-zero exit, no stack trace', () => {
    const r = exec(
      'dukpt',
      'derive',
      '--bdk',
      'NOTHEX',
      '--ksn',
      '123456789012345600000001',
      '--usage',
      'pin-encryption',
    );
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^pos-tools: POS_ERR_HEX_INVALID: [^\n]+\n$/);
  });

  it('gives JSON with --json', () => {
    const r = exec('dukpt', 'next-ksn', '--ksn', '12345678901234560001FFFE', '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      ok: true,
      dukpt: 'aes',
      ksn: '123456789012345600020000',
      counter: 0x20000,
    });
  });
});
