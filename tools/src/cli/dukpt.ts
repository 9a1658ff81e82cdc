import { z } from 'zod';
import {
  DUKPT_KEY_USAGES,
  aesDukptWorkingKey,
  aesKsnCounter,
  nextAesKsn,
  nextTdesKsn,
  parseAesKsn,
  parseHex,
  parseTdesKsn,
  tdesDukptWorkingKey,
  tdesKsnCounter,
  toHex,
  wipe,
  type DukptKeyUsage,
  type TdesDukptVariant,
} from '@pos/shared';
import { parseOptions } from './args';
import type { CliIo } from './io';
import { fail, succeed } from './output';

/** Key types the CLI offers for AES DUKPT working keys (the library knows more: TDES and HMAC keys). */
const CLI_KEY_TYPES = ['aes128', 'aes192', 'aes256'] as const;

export const DUKPT_DERIVE_HELP = `Usage: pos-tools dukpt derive --bdk <hex> --ksn <hex> --usage <usage> [--key-type aes128|aes192|aes256] [--json]

Derives a DUKPT working key from the base derivation key, as an acquirer's HSM does, and prints it in
upper-case hex.
  --ksn      24 hex digits: AES DUKPT (ANSI X9.24-3-2017), BDK of 16, 24 or 32 bytes.
             20 hex digits with a 16-byte BDK: TDES DUKPT (ANSI X9.24-1-2009).
  --usage    ${DUKPT_KEY_USAGES.join(' | ')}
             TDES DUKPT has pin-encryption, mac-generation, mac-verification, data-encryption and
             data-decryption (the request/response variants).
  --key-type AES DUKPT only; default: the BDK's own strength. A key stronger than the BDK is refused.
  --json     one JSON object instead of the bare value.
Example: pos-tools dukpt derive --bdk FEDCBA9876543210F1F1F1F1F1F1F1F1 --ksn 123456789012345600000001 --usage pin-encryption`;

export const DUKPT_NEXT_KSN_HELP = `Usage: pos-tools dukpt next-ksn --ksn <hex> [--json]

Prints the KSN a device uses after --ksn: the counter advances, skipping counters with more one-bits
than the standard allows (16 for AES DUKPT, 10 for TDES DUKPT); past the last counter it fails with
POS_ERR_KSN_EXHAUSTED.`;

const TDES_VARIANTS: Partial<Record<DukptKeyUsage, TdesDukptVariant>> = {
  'pin-encryption': 'pin',
  'mac-generation': 'mac-request',
  'mac-verification': 'mac-response',
  'data-encryption': 'data-request',
  'data-decryption': 'data-response',
};

const deriveSchema = z.object({
  bdk: z.string(),
  ksn: z.string(),
  usage: z.enum(DUKPT_KEY_USAGES as [DukptKeyUsage, ...DukptKeyUsage[]], {
    message: `must be one of ${DUKPT_KEY_USAGES.join(', ')}`,
  }),
  'key-type': z.enum(CLI_KEY_TYPES, { message: `must be one of ${CLI_KEY_TYPES.join(', ')}` }).optional(),
  json: z.boolean().optional(),
});

const nextSchema = z.object({ ksn: z.string(), json: z.boolean().optional() });

export function dukptDerive(argv: readonly string[], io: CliIo): number {
  const jsonFlag = argv.includes('--json');
  const parsed = parseOptions(
    argv,
    {
      bdk: { type: 'string' },
      ksn: { type: 'string' },
      usage: { type: 'string' },
      'key-type': { type: 'string' },
      json: { type: 'boolean' },
    },
    deriveSchema,
  );
  if (!parsed.ok) return fail(io, jsonFlag, parsed.code, parsed.detail);
  const { usage, 'key-type': keyType, json = false } = parsed.value;
  const ksnBytes = parseHex(parsed.value.ksn, [10, 12], '--ksn');
  if (!ksnBytes.ok)
    return fail(
      io,
      json,
      ksnBytes.code === 'POS_ERR_LENGTH' ? 'POS_ERR_KSN_INVALID' : ksnBytes.code,
      ksnBytes.detail,
    );
  const bdk = parseHex(parsed.value.bdk, undefined, '--bdk');
  if (!bdk.ok) return fail(io, json, bdk.code, bdk.detail);
  try {
    if (ksnBytes.bytes.length === 10) {
      if (bdk.bytes.length !== 16) {
        return fail(
          io,
          json,
          'POS_ERR_KEY_LENGTH',
          `a 20-digit KSN means TDES DUKPT, whose BDK is 16 bytes; got ${bdk.bytes.length}`,
        );
      }
      if (keyType !== undefined)
        return fail(io, json, 'POS_ERR_CLI_INVALID_OPTION', '--key-type applies to AES DUKPT only');
      const variant = TDES_VARIANTS[usage];
      if (variant === undefined) {
        return fail(io, json, 'POS_ERR_DUKPT_KEY_USAGE_UNKNOWN', `TDES DUKPT has no ${usage} key`);
      }
      const ksn = parseTdesKsn(ksnBytes.bytes);
      if (!ksn.ok) return fail(io, json, ksn.code, ksn.detail);
      const key = tdesDukptWorkingKey(bdk.bytes, ksn.ksn, variant);
      if (!key.ok) return fail(io, json, key.code, key.detail);
      const out = toHex(key.key);
      wipe(key.key);
      return succeed(io, json, out, { dukpt: 'tdes', ksn: toHex(ksn.ksn), usage, variant, key: out });
    }
    if (![16, 24, 32].includes(bdk.bytes.length)) {
      return fail(
        io,
        json,
        'POS_ERR_KEY_LENGTH',
        `an AES DUKPT BDK is 16, 24 or 32 bytes, got ${bdk.bytes.length}`,
      );
    }
    const ksn = parseAesKsn(ksnBytes.bytes);
    if (!ksn.ok) return fail(io, json, ksn.code, ksn.detail);
    const key = aesDukptWorkingKey({
      bdk: bdk.bytes,
      ksn: ksn.ksn,
      usage,
      ...(keyType === undefined ? {} : { keyType }),
    });
    if (!key.ok) return fail(io, json, key.code, key.detail);
    const out = toHex(key.key);
    wipe(key.key);
    const effectiveType = keyType ?? (['aes128', 'aes192', 'aes256'] as const)[(bdk.bytes.length - 16) / 8];
    return succeed(io, json, out, {
      dukpt: 'aes',
      ksn: toHex(ksn.ksn),
      usage,
      keyType: effectiveType,
      key: out,
    });
  } finally {
    wipe(bdk.bytes);
  }
}

export function dukptNextKsn(argv: readonly string[], io: CliIo): number {
  const jsonFlag = argv.includes('--json');
  const parsed = parseOptions(argv, { ksn: { type: 'string' }, json: { type: 'boolean' } }, nextSchema);
  if (!parsed.ok) return fail(io, jsonFlag, parsed.code, parsed.detail);
  const json = parsed.value.json ?? false;
  const bytes = parseHex(parsed.value.ksn, [10, 12], '--ksn');
  if (!bytes.ok)
    return fail(io, json, bytes.code === 'POS_ERR_LENGTH' ? 'POS_ERR_KSN_INVALID' : bytes.code, bytes.detail);
  if (bytes.bytes.length === 12) {
    const ksn = parseAesKsn(bytes.bytes);
    if (!ksn.ok) return fail(io, json, ksn.code, ksn.detail);
    const next = nextAesKsn(ksn.ksn);
    if (!next.ok) return fail(io, json, next.code, next.detail);
    return succeed(io, json, toHex(next.ksn), {
      dukpt: 'aes',
      ksn: toHex(next.ksn),
      counter: aesKsnCounter(next.ksn),
    });
  }
  const ksn = parseTdesKsn(bytes.bytes);
  if (!ksn.ok) return fail(io, json, ksn.code, ksn.detail);
  const next = nextTdesKsn(ksn.ksn);
  if (!next.ok) return fail(io, json, next.code, next.detail);
  return succeed(io, json, toHex(next.ksn), {
    dukpt: 'tdes',
    ksn: toHex(next.ksn),
    counter: tdesKsnCounter(next.ksn),
  });
}
