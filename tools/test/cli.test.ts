import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import type { CliIo } from '../src/cli/io';

interface Run {
  readonly code: number;
  readonly out: string[];
  readonly err: string[];
}

function run(...argv: string[]): Run {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l) };
  return { code: runCli(argv, io), out, err };
}

function json(r: Run): Record<string, unknown> {
  expect(r.out).toHaveLength(1);
  return JSON.parse(r.out[0] ?? '') as Record<string, unknown>;
}

// ANSI X9.24-3-2017 supplement: AES-128 BDK, KSN counter 1, PIN 1234, PAN 4111111111111111.
const PIN_KEY_1 = 'AF8CB133A78F8DC2D1359F18527593FB';
const PIN_BLOCK_1 = 'A912150391AB65A67E52883D81CE2D15';

describe('pos-tools pinblock', () => {
  it('encodes the X9.24-3 format 4 vector with a fixed fill', () => {
    const r = run(
      'pinblock',
      'encode',
      '--format',
      '4',
      '--pin',
      '1234',
      '--pan',
      '4111111111111111',
      '--key',
      PIN_KEY_1,
      '--fill',
      '2F69ADDE2E9E7ACE',
    );
    expect(r).toEqual({ code: 0, out: [PIN_BLOCK_1], err: [] });
  });

  it('encodes format 4 with a random fill that decodes back, different each time', () => {
    const a = run(
      'pinblock',
      'encode',
      '--format',
      '4',
      '--pin',
      '987654',
      '--pan',
      '5555555551234567',
      '--key',
      PIN_KEY_1,
    );
    const b = run(
      'pinblock',
      'encode',
      '--format',
      '4',
      '--pin',
      '987654',
      '--pan',
      '5555555551234567',
      '--key',
      PIN_KEY_1,
    );
    expect(a.code).toBe(0);
    expect(a.out[0]).toMatch(/^[0-9A-F]{32}$/);
    expect(a.out[0]).not.toBe(b.out[0]);
    const d = run(
      'pinblock',
      'decode',
      '--format',
      '4',
      '--block',
      a.out[0] ?? '',
      '--pan',
      '5555555551234567',
      '--key',
      PIN_KEY_1,
    );
    expect(d).toEqual({ code: 0, out: ['987654'], err: [] });
  });

  it('decodes the X9.24-3 vector, and gives JSON with --json', () => {
    const r = run(
      'pinblock',
      'decode',
      '--format',
      '4',
      '--block',
      PIN_BLOCK_1,
      '--pan',
      '4111111111111111',
      '--key',
      PIN_KEY_1,
      '--json',
    );
    expect(r.code).toBe(0);
    expect(json(r)).toEqual({ ok: true, format: 4, pin: '1234' });
  });

  it('prints clear format 0-3 blocks without --key (ISO 9564-1 vectors)', () => {
    expect(
      run('pinblock', 'encode', '--format', '0', '--pin', '1234', '--pan', '5555555551234567').out,
    ).toEqual(['041261AAAAEDCBA9']);
    expect(run('pinblock', 'encode', '--format', '2', '--pin', '1234').out).toEqual(['241234FFFFFFFFFF']);
    expect(
      run('pinblock', 'encode', '--format', '1', '--pin', '12345', '--fill', 'EDCBA9876FC5339A').out,
    ).toEqual(['1512345EDCBA9876']);
    expect(
      run('pinblock', 'decode', '--format', '3', '--block', '341261AAAAEDCBA9', '--pan', '5555555551234567')
        .out,
    ).toEqual(['1234']);
  });

  it('enciphers a format 0 block under a TDES key, as X9.24-1 DUKPT readers send it', () => {
    // ANSI X9.24-1-2009 A.4: PIN 1234, PAN 4012345678909, first PIN key (txn key XOR PIN variant).
    const pinKey = '042666B49184CF5C68DE9628D0397B36'; // counter 1 transaction key XOR the PIN variant
    const r = run(
      'pinblock',
      'encode',
      '--format',
      '0',
      '--pin',
      '1234',
      '--pan',
      '4012345678909',
      '--key',
      pinKey,
    );
    expect(r).toEqual({ code: 0, out: ['1B9C1845EB993A7A'], err: [] });
    expect(
      run(
        'pinblock',
        'decode',
        '--format',
        '0',
        '--block',
        '1B9C1845EB993A7A',
        '--pan',
        '4012345678909',
        '--key',
        pinKey,
      ).out,
    ).toEqual(['1234']);
  });

  it.each([
    [
      [
        'pinblock',
        'decode',
        '--format',
        '4',
        '--block',
        'CC17F65586BFD0953010226C4FC5B3CA00',
        '--pan',
        '432198765432109870',
        '--key',
        'C1D0F8FB4958670DBA40AB1F3752EF0D',
      ],
      'POS_ERR_PINBLOCK_BLOCK_LENGTH',
      1,
    ],
    [
      [
        'pinblock',
        'decode',
        '--format',
        '4',
        '--block',
        '7D5AF4C33667A2098626027FB7A9A1B7',
        '--pan',
        '4266229809609384667',
        '--key',
        'E60B15B90ABDF14CEE337C97440F0D6E',
      ],
      'POS_ERR_PINBLOCK_CONTROL_FIELD',
      1,
    ],
    [
      ['pinblock', 'decode', '--format', '0', '--block', '041261AAAAEDCBAA', '--pan', '5555555551234567'],
      'POS_ERR_PINBLOCK_FILLER',
      1,
    ],
    [
      [
        'pinblock',
        'encode',
        '--format',
        '4',
        '--pin',
        '123',
        '--pan',
        '4111111111111111',
        '--key',
        PIN_KEY_1,
      ],
      'POS_ERR_PIN_LENGTH',
      1,
    ],
    [
      [
        'pinblock',
        'encode',
        '--format',
        '4',
        '--pin',
        '12a4',
        '--pan',
        '4111111111111111',
        '--key',
        PIN_KEY_1,
      ],
      'POS_ERR_PIN_NOT_NUMERIC',
      1,
    ],
    [
      [
        'pinblock',
        'encode',
        '--format',
        '4',
        '--pin',
        '1234',
        '--pan',
        '41111111111111111111',
        '--key',
        PIN_KEY_1,
      ],
      'POS_ERR_PAN_LENGTH',
      1,
    ],
    [
      ['pinblock', 'encode', '--format', '4', '--pin', '1234', '--pan', '4111111111111111', '--key', 'ABCD'],
      'POS_ERR_KEY_LENGTH',
      1,
    ],
    [
      ['pinblock', 'encode', '--format', '4', '--pin', '1234', '--pan', '4111111111111111', '--key', 'XYZ1'],
      'POS_ERR_HEX_INVALID',
      1,
    ],
    [
      [
        'pinblock',
        'encode',
        '--format',
        '3',
        '--pin',
        '1234',
        '--pan',
        '4111111111111111',
        '--fill',
        '0123456789ABCDEF',
      ],
      'POS_ERR_PINBLOCK_FILL_INVALID',
      1,
    ],
    [
      [
        'pinblock',
        'encode',
        '--format',
        '4',
        '--pin',
        '1234',
        '--pan',
        '4111111111111111',
        '--key',
        PIN_KEY_1,
        '--fill',
        'AB',
      ],
      'POS_ERR_PINBLOCK_FILL_INVALID',
      1,
    ],
    [
      ['pinblock', 'encode', '--format', '4', '--pin', '1234', '--pan', '4111111111111111'],
      'POS_ERR_CLI_MISSING_OPTION',
      2,
    ],
    [['pinblock', 'encode', '--format', '0', '--pin', '1234'], 'POS_ERR_CLI_MISSING_OPTION', 2],
    [['pinblock', 'encode', '--pin', '1234'], 'POS_ERR_CLI_MISSING_OPTION', 2],
    [['pinblock', 'encode', '--format', '5', '--pin', '1234'], 'POS_ERR_CLI_INVALID_OPTION', 2],
    [
      ['pinblock', 'encode', '--format', '2', '--pin', '1234', '--pan', '4111111111111111'],
      'POS_ERR_CLI_INVALID_OPTION',
      2,
    ],
    [
      ['pinblock', 'encode', '--format', '2', '--pin', '1234', '--colour', 'red'],
      'POS_ERR_CLI_UNKNOWN_OPTION',
      2,
    ],
    [['pinblock', 'encode', '--format', '2', '--pin'], 'POS_ERR_CLI_UNKNOWN_OPTION', 2],
    [['pinblock', 'frobnicate'], 'POS_ERR_CLI_UNKNOWN_COMMAND', 2],
    [['wat'], 'POS_ERR_CLI_UNKNOWN_COMMAND', 2],
  ])('refuses %j with %s (exit %d), one line, no stack', (argv, code, exit) => {
    const r = run(...argv);
    expect(r.code).toBe(exit);
    expect(r.out).toEqual([]);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(new RegExp(`^pos-tools: ${code}: \\S`));
    expect(r.err[0]).not.toMatch(/\n|\s+at\s/);
    const j = run(...argv, '--json');
    expect(j.code).toBe(exit);
    expect(json(j)).toMatchObject({ ok: false, code });
  });

  it('never echoes the PIN, PAN or key in an error', () => {
    const secrets = ['98765432', '4999888877776666', '0F0E0D0C0B0A09080706050403020100'];
    const r = run(
      'pinblock',
      'encode',
      '--format',
      '4',
      '--pin',
      secrets[0] ?? '',
      '--pan',
      `${secrets[1] ?? ''}1234`,
      '--key',
      secrets[2] ?? '',
    );
    expect(r.code).toBe(1);
    for (const s of secrets) expect(r.err.join('\n')).not.toContain(s);
  });

  it('prints help for every level and never fails on it', () => {
    for (const argv of [
      ['--help'],
      [],
      ['pinblock'],
      ['pinblock', '--help'],
      ['pinblock', 'encode', '--help'],
      ['pinblock', 'decode', '--help'],
      ['dukpt', 'derive', '--help'],
      ['dukpt', 'next-ksn', '-h'],
    ]) {
      const r = run(...argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.out.join('\n')).toMatch(/^Usage: pos-tools/);
    }
  });

  it('answers arbitrary argument lists with a coded error or a result, never a throw', () => {
    const word = fc.oneof(
      fc.constantFrom(
        'pinblock',
        'dukpt',
        'encode',
        'decode',
        'derive',
        'next-ksn',
        '--format',
        '--pin',
        '--pan',
        '--key',
        '--fill',
        '--block',
        '--bdk',
        '--ksn',
        '--usage',
        '--key-type',
        '--json',
        '4',
        '0',
        '1234',
        '4111111111111111',
        PIN_KEY_1,
      ),
      fc.string({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(fc.array(word, { maxLength: 12 }), (argv) => {
        const r = run(...argv);
        expect([0, 1, 2]).toContain(r.code);
        if (r.code !== 0 && !argv.includes('--json'))
          expect(r.err[0]).toMatch(/^pos-tools: POS_ERR_[A-Z_]+: /);
        expect(r.err.join('')).not.toContain('POS_ERR_CLI_INTERNAL');
      }),
      { numRuns: 400 },
    );
  });
});

describe('pos-tools dukpt', () => {
  const BDK = 'FEDCBA9876543210F1F1F1F1F1F1F1F1';
  it('derives the X9.24-3 AES-128 PIN key for counter 1', () => {
    expect(
      run('dukpt', 'derive', '--bdk', BDK, '--ksn', '123456789012345600000001', '--usage', 'pin-encryption')
        .out,
    ).toEqual([PIN_KEY_1]);
  });

  it('derives AES-128 MAC and data keys (X9.24-3 vectors) and reports JSON', () => {
    const r = run(
      'dukpt',
      'derive',
      '--bdk',
      BDK,
      '--ksn',
      '123456789012345600000001',
      '--usage',
      'mac-generation',
      '--key-type',
      'aes128',
      '--json',
    );
    expect(json(r)).toMatchObject({
      ok: true,
      dukpt: 'aes',
      keyType: 'aes128',
      usage: 'mac-generation',
      ksn: '123456789012345600000001',
    });
  });

  it('refuses a working key stronger than the BDK', () => {
    const r = run(
      'dukpt',
      'derive',
      '--bdk',
      BDK,
      '--ksn',
      '123456789012345600000001',
      '--usage',
      'pin-encryption',
      '--key-type',
      'aes256',
    );
    expect(r.code).toBe(1);
    expect(r.err[0]).toMatch(/^pos-tools: POS_ERR_DUKPT_KEY_TOO_STRONG: /);
  });

  it('derives the X9.24-1 TDES PIN key from a 20-digit KSN', () => {
    const r = run(
      'dukpt',
      'derive',
      '--bdk',
      '0123456789ABCDEFFEDCBA9876543210',
      '--ksn',
      'FFFF9876543210E00001',
      '--usage',
      'pin-encryption',
    );
    expect(r).toEqual({ code: 0, out: ['042666B49184CF5C68DE9628D0397B36'], err: [] });
  });

  it.each([
    ['123456789012345600000001', '123456789012345600000002'],
    ['12345678901234560001FFFE', '123456789012345600020000'],
    ['FFFF9876543210E00001', 'FFFF9876543210E00002'],
  ])('next-ksn after %s is %s', (ksn, next) => {
    expect(run('dukpt', 'next-ksn', '--ksn', ksn).out).toEqual([next]);
  });

  it.each([
    [['dukpt', 'next-ksn', '--ksn', '1234567890123456FFFF0000'], 'POS_ERR_KSN_EXHAUSTED'],
    [['dukpt', 'next-ksn', '--ksn', '123456'], 'POS_ERR_KSN_INVALID'],
    [
      ['dukpt', 'derive', '--bdk', BDK, '--ksn', '123456789012345600000000', '--usage', 'pin-encryption'],
      'POS_ERR_KSN_COUNTER_INVALID',
    ],
    [
      ['dukpt', 'derive', '--bdk', BDK, '--ksn', '12345678901234560001FFFF', '--usage', 'pin-encryption'],
      'POS_ERR_KSN_COUNTER_INVALID',
    ],
    [
      ['dukpt', 'derive', '--bdk', BDK, '--ksn', 'FFFF9876543210E00001', '--usage', 'key-encryption'],
      'POS_ERR_DUKPT_KEY_USAGE_UNKNOWN',
    ],
    [
      [
        'dukpt',
        'derive',
        '--bdk',
        `${BDK}00`,
        '--ksn',
        '123456789012345600000001',
        '--usage',
        'pin-encryption',
      ],
      'POS_ERR_KEY_LENGTH',
    ],
    [
      ['dukpt', 'derive', '--bdk', BDK, '--ksn', '123456789012345600000001', '--usage', 'pin'],
      'POS_ERR_CLI_INVALID_OPTION',
    ],
    [
      [
        'dukpt',
        'derive',
        '--bdk',
        BDK,
        '--ksn',
        '123456789012345600000001',
        '--usage',
        'pin-encryption',
        '--key-type',
        'des',
      ],
      'POS_ERR_CLI_INVALID_OPTION',
    ],
    [
      ['dukpt', 'derive', '--ksn', '123456789012345600000001', '--usage', 'pin-encryption'],
      'POS_ERR_CLI_MISSING_OPTION',
    ],
  ])('refuses %j with %s', (argv, code) => {
    const r = run(...argv);
    expect(r.code).not.toBe(0);
    expect(r.err[0]).toMatch(new RegExp(`^pos-tools: ${code}: `));
    expect(r.err[0]).not.toContain(BDK);
  });
});
