import { z } from 'zod';
import {
  decodePinBlock,
  encodePinBlock,
  parseHex,
  parsePan,
  pinDigitsFromText,
  pinDigitsToText,
  toHex,
  wipe,
  type DecodePinBlockRequest,
  type EncodePinBlockRequest,
  type Pan,
} from '@pos/shared';
import { parseOptions } from './args';
import type { CliIo } from './io';
import { fail, succeed } from './output';
import { tdesDecryptEcb, tdesEncryptEcb } from './tdes';

export const PINBLOCK_ENCODE_HELP = `Usage: pos-tools pinblock encode --format <0-4> --pin <digits> [--pan <digits>] [--key <hex>] [--fill <16 hex>] [--json]

Encodes an ISO 9564-1 PIN block and prints it in upper-case hex.
  --format 4   AES PIN block (16 bytes) under --key (AES-128/192/256); needs --pan.
  --format 0|3 PAN-bound block (8 bytes); needs --pan. Format 1: transaction-unique fill. Format 2: F fill.
               Without --key the clear block is printed; with a TDES --key (16 or 24 bytes) it is
               TDES-ECB enciphered, as a TDES DUKPT reader sends it.
  --fill       8 bytes (16 hex digits). Format 4: the random half of the PIN field. Formats 1 and 3:
               the fill digits, nibble by nibble (format 3: each A-F). Default: random.
  --json       one JSON object instead of the bare value.
Example: pos-tools pinblock encode --format 4 --pin 1234 --pan 4111111111111111 --key AF8CB133A78F8DC2D1359F18527593FB`;

export const PINBLOCK_DECODE_HELP = `Usage: pos-tools pinblock decode --format <0-4> --block <hex> [--pan <digits>] [--key <hex>] [--json]

Decodes an ISO 9564-1 PIN block and prints the PIN. Every field is checked (control nibble, PIN
length 4-12, digits, filler, PAN rules); a failure names its POS_ERR_ code.
  --format 4   needs --key (AES) and --pan. Formats 0 and 3 need --pan.
  --key        for formats 0-3: a TDES key (16 or 24 bytes) to decipher the block first.
  --json       one JSON object instead of the bare value.`;

const formatSchema = z
  .enum(['0', '1', '2', '3', '4'], { message: 'must be 0, 1, 2, 3 or 4' })
  .transform(Number);

const encodeSchema = z.object({
  format: formatSchema,
  pin: z.string(),
  pan: z.string().optional(),
  key: z.string().optional(),
  fill: z.string().optional(),
  json: z.boolean().optional(),
});

const decodeSchema = z.object({
  format: formatSchema,
  block: z.string(),
  pan: z.string().optional(),
  key: z.string().optional(),
  json: z.boolean().optional(),
});

const encodeOptions = {
  format: { type: 'string' },
  pin: { type: 'string' },
  pan: { type: 'string' },
  key: { type: 'string' },
  fill: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const decodeOptions = {
  format: { type: 'string' },
  block: { type: 'string' },
  pan: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const PAN_FORMATS = new Set([0, 3, 4]);

type Parsed<T> = { ok: true; value: T } | { ok: false; exit: number };

function needPan(
  io: CliIo,
  json: boolean,
  format: number,
  text: string | undefined,
): Parsed<Pan | undefined> {
  if (!PAN_FORMATS.has(format)) {
    if (text !== undefined)
      return {
        ok: false,
        exit: fail(io, json, 'POS_ERR_CLI_INVALID_OPTION', `--pan does not apply to format ${format}`),
      };
    return { ok: true, value: undefined };
  }
  if (text === undefined)
    return {
      ok: false,
      exit: fail(io, json, 'POS_ERR_CLI_MISSING_OPTION', `--pan is required for format ${format}`),
    };
  const pan = parsePan(text);
  if (!pan.ok) return { ok: false, exit: fail(io, json, pan.code, pan.detail) };
  return { ok: true, value: pan.pan };
}

function parseKey(
  io: CliIo,
  json: boolean,
  format: number,
  text: string | undefined,
): Parsed<Uint8Array | undefined> {
  if (text === undefined) {
    if (format === 4)
      return {
        ok: false,
        exit: fail(io, json, 'POS_ERR_CLI_MISSING_OPTION', '--key is required for format 4'),
      };
    return { ok: true, value: undefined };
  }
  const lengths = format === 4 ? [16, 24, 32] : [16, 24];
  const key = parseHex(text, undefined, '--key');
  if (!key.ok) return { ok: false, exit: fail(io, json, key.code, key.detail) };
  if (!lengths.includes(key.bytes.length)) {
    wipe(key.bytes);
    const what = format === 4 ? 'an AES key of 16, 24 or 32 bytes' : 'a TDES key of 16 or 24 bytes';
    return {
      ok: false,
      exit: fail(io, json, 'POS_ERR_KEY_LENGTH', `--key must be ${what}, got ${key.bytes.length} bytes`),
    };
  }
  return { ok: true, value: key.bytes };
}

export function pinblockEncode(argv: readonly string[], io: CliIo): number {
  const jsonFlag = argv.includes('--json');
  const parsed = parseOptions(argv, encodeOptions, encodeSchema);
  if (!parsed.ok) return fail(io, jsonFlag, parsed.code, parsed.detail);
  const { format, json = false } = parsed.value;
  if (parsed.value.fill !== undefined && (format === 0 || format === 2)) {
    return fail(io, json, 'POS_ERR_CLI_INVALID_OPTION', `--fill does not apply to format ${format}`);
  }
  const pan = needPan(io, json, format, parsed.value.pan);
  if (!pan.ok) return pan.exit;
  const key = parseKey(io, json, format, parsed.value.key);
  if (!key.ok) return key.exit;
  let fill: Uint8Array | undefined;
  if (parsed.value.fill !== undefined) {
    const f = parseHex(parsed.value.fill, 8, '--fill');
    if (!f.ok)
      return fail(io, json, f.code === 'POS_ERR_LENGTH' ? 'POS_ERR_PINBLOCK_FILL_INVALID' : f.code, f.detail);
    fill = f.bytes;
  }
  const pin = pinDigitsFromText(parsed.value.pin);
  if (!pin.ok) return fail(io, json, pin.code, pin.detail);
  try {
    const request = buildEncodeRequest(format, pin.pin, pan.value, key.value, fill);
    const result = encodePinBlock(request);
    if (!result.ok) return fail(io, json, result.code, result.detail);
    let block = result.block;
    const enciphered = format !== 4 && key.value !== undefined;
    if (enciphered && key.value !== undefined) {
      const clear = block;
      block = tdesEncryptEcb(key.value, clear);
      wipe(clear);
    }
    return succeed(io, json, toHex(block), {
      format,
      block: toHex(block),
      enciphered: format === 4 || enciphered,
    });
  } finally {
    wipe(pin.pin, key.value, fill);
  }
}

function buildEncodeRequest(
  format: number,
  pin: EncodePinBlockRequest['pin'],
  pan: Pan | undefined,
  key: Uint8Array | undefined,
  fill: Uint8Array | undefined,
): EncodePinBlockRequest {
  const withFill = fill === undefined ? {} : { fill };
  switch (format) {
    case 0:
      return { format: 0, pin, pan: pan as Pan };
    case 1:
      return { format: 1, pin, ...withFill };
    case 2:
      return { format: 2, pin };
    case 3:
      return { format: 3, pin, pan: pan as Pan, ...withFill };
    default:
      return { format: 4, pin, pan: pan as Pan, key: key as Uint8Array, ...withFill };
  }
}

export function pinblockDecode(argv: readonly string[], io: CliIo): number {
  const jsonFlag = argv.includes('--json');
  const parsed = parseOptions(argv, decodeOptions, decodeSchema);
  if (!parsed.ok) return fail(io, jsonFlag, parsed.code, parsed.detail);
  const { format, json = false } = parsed.value;
  const pan = needPan(io, json, format, parsed.value.pan);
  if (!pan.ok) return pan.exit;
  const key = parseKey(io, json, format, parsed.value.key);
  if (!key.ok) return key.exit;
  const blockHex = parseHex(parsed.value.block, undefined, '--block');
  if (!blockHex.ok) return fail(io, json, blockHex.code, blockHex.detail);
  let block = blockHex.bytes;
  try {
    if (format !== 4 && key.value !== undefined) {
      if (block.length !== 8)
        return fail(
          io,
          json,
          'POS_ERR_PINBLOCK_BLOCK_LENGTH',
          `a format ${format} PIN block is 8 bytes, got ${block.length}`,
        );
      const clear = tdesDecryptEcb(key.value, block);
      wipe(block);
      block = clear;
    }
    const request: DecodePinBlockRequest =
      format === 4
        ? { format: 4, block, pan: pan.value as Pan, key: key.value as Uint8Array }
        : format === 0 || format === 3
          ? { format, block, pan: pan.value as Pan }
          : { format: format === 1 ? 1 : 2, block };
    const result = decodePinBlock(request);
    if (!result.ok) return fail(io, json, result.code, result.detail);
    const text = pinDigitsToText(result.pin);
    wipe(result.pin);
    return succeed(io, json, text, { format, pin: text });
  } finally {
    wipe(block, key.value);
  }
}
