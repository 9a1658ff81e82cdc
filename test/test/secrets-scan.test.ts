/**
 * The secrets scanner (test/src/secrets-scan.ts): each kind of secret is found in a line built to hold
 * it, clean lines that only look alike are not flagged, and no finding's excerpt or message carries the
 * secret.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  aesDukptWorkingKey,
  encodePinBlock,
  hex,
  parseAesKsn,
  parsePan,
  pinDigitsFromText,
  toHex,
  unwrap,
} from '@pos/shared';
import { DEV_BDK_HEX } from '@pos/shared/testcards';
import {
  binaryForms,
  formatFindings,
  maskContext,
  scanSources,
  type Finding,
  type SecretSet,
} from '../src/secrets-scan';

const PAN = '4111111111111111';
const PIN = '1234';
const KEY = randomBytes(32);
const PASSWORD = 'Xq7-correct-horse-battery';

const base: SecretSet = {
  pans: [PAN, '378282246310005'],
  pins: [PIN],
  literals: [
    ...binaryForms('key', 'device private key', KEY),
    { kind: 'password', label: 'operator password', value: PASSWORD },
  ],
};

const scan = (text: string, secrets: SecretSet = base): Finding[] =>
  scanSources([{ name: 'log', text }], secrets);
const kinds = (text: string, secrets?: SecretSet): string[] => scan(text, secrets).map((f) => f.kind);

/** Asserts the findings' message names the place but never holds `secret`. */
function expectRedacted(findings: readonly Finding[], secret: string): void {
  const message = formatFindings(findings);
  expect(message).toContain('log:');
  expect(message.toLowerCase()).not.toContain(secret.toLowerCase());
}

describe('secrets scanner', () => {
  it('finds a full PAN, any 12 of its digits in a longer run, and a masked PAN showing too much', () => {
    expect(kinds(`{"msg":"card","pan":"${PAN}"}`)).toEqual(['pan']);
    expect(kinds(`ref=9${PAN.slice(2, 14)}7 done`)).toEqual(['pan']);
    expect(kinds('card 4111111111**1111 read')).toEqual(['pan']);
    expect(kinds('card 411111*****11111 read')).toEqual(['pan']);
    expect(kinds('amex 3782822463*****')).toEqual(['pan']);
    expectRedacted(scan(`{"pan":"${PAN}"}`), PAN);
  });

  it('lets the usual masked form, short digit runs and timestamps through', () => {
    expect(kinds('{"maskedPan":"411111******1111","scheme":"visa"}')).toEqual([]);
    expect(kinds('{"time":1795952095688,"pid":14316,"amount":1234}')).toEqual([]);
    expect(kinds('port 41111 and 111111 and 2026-11-29T11:35:17.656Z')).toEqual([]);
    // Float noise: 12 zeros and a 2 are digits of 4000000000000002, but in a fraction they are no PAN.
    const zeros = { ...base, pans: ['4000000000000002'] };
    expect(kinds('{"responseTime":19.7000000000000002}', zeros)).toEqual([]);
    expect(kinds('{"ref":"97000000000000002"}', zeros)).toEqual(['pan']);
    expect(kinds('{"x":0.4000000000000002}', zeros)).toEqual(['pan']);
  });

  it('finds a used PIN next to "pin", and a clear PIN field in hex, but not the digits elsewhere', () => {
    expect(kinds(`{"event":"pin","digits":"${PIN}"}`)).toEqual(['pin']);
    expect(kinds(`argv: transact --pin ${PIN}`)).toEqual(['pin']);
    expect(kinds('block 441234AAAAAAAAAA0123456789ABCDEF')).toEqual(['pin']);
    expect(kinds('field 041234ffffffffff')).toEqual(['pin']);
    expect(kinds('{"amount":1234,"currency":"EUR"}')).toEqual([]);
    expect(kinds('{"event":"pin-block","responseTime":12.1234}')).toEqual([]);
    expect(kinds('{"event":"pin-block","ksnCounter":12345}')).toEqual([]);
    expectRedacted(scan(`--pin ${PIN}`), ` ${PIN}`);
  });

  it('finds an enciphered format 4 PIN block that opens under a given PIN key', () => {
    const ksn = unwrap(parseAesKsn(hex('123456780000000100000007'))).ksn;
    const key = unwrap(
      aesDukptWorkingKey({ bdk: hex(DEV_BDK_HEX), ksn, usage: 'pin-encryption', keyType: 'aes128' }),
    ).key;
    const block = unwrap(
      encodePinBlock({
        format: 4,
        pin: unwrap(pinDigitsFromText(PIN)).pin,
        pan: unwrap(parsePan(PAN)).pan,
        key,
      }),
    ).block;
    const line = `{"pinBlock":"${toHex(block)}"}`;
    expect(kinds(line, { ...base, pinKeys: [key] })).toEqual(['pin-block']);
    // Without the key it is 32 hex digits like any other.
    expect(kinds(line)).toEqual([]);
    expect(kinds(`{"id":"${'ab'.repeat(16)}"}`, { ...base, pinKeys: [key] })).toEqual([]);
    expectRedacted(scan(line, { ...base, pinKeys: [key] }), toHex(block));
  });

  it('finds a literal key in hex (either case), base64 and base64url, and a password', () => {
    for (const form of [
      KEY.toString('hex'),
      KEY.toString('hex').toUpperCase(),
      KEY.toString('base64'),
      KEY.toString('base64url'),
    ]) {
      expect(kinds(`key=${form};`)).toContain('key');
      expectRedacted(scan(`key=${form};`), form);
    }
    expect(kinds(`login ok for operator with ${PASSWORD}`)).toEqual(['password']);
    expectRedacted(scan(`p=${PASSWORD}`), PASSWORD);
  });

  it('finds JWTs and bearer secrets by their shape', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0cm1fMSJ9.c2lnbmF0dXJlX2J5dGVz';
    expect(kinds(`authorization: PosTicket ${jwt}`)).toEqual(['jwt']);
    expect(kinds(`Bearer pos_admin_${'A'.repeat(43)}`)).toEqual(['token']);
    expect(kinds(`cookie: __Host-pos_session=pos_sess_${'b9'.repeat(20)}`)).toEqual(['token']);
    expect(kinds('pos_http_request_duration_seconds_bucket 3')).toEqual([]);
    expectRedacted(scan(`t ${jwt}`), jwt.slice(0, 30));
  });

  it('gives the source and line, and masks other secret-looking runs in the excerpt', () => {
    const findings = scanSources(
      [
        { name: 'a.log', text: 'clean\nclean' },
        { name: 'b.log', text: `clean\nsession=abcDEF1234567890xyz pan=${PAN}` },
      ],
      base,
    );
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ source: 'b.log', line: 2, kind: 'pan' });
    expect(findings[0]?.excerpt).not.toContain('abcDEF1234567890xyz');
    expect(maskContext('word waiting-for-card and AbCdEfGhIjKlMn and 98765')).toBe(
      'word waiting-for-card and […] and [#]',
    );
  });
});
