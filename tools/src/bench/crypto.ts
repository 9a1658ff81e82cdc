/**
 * `npm run bench -- crypto`: PIN blocks per second and DUKPT derivations per second, each beside the
 * bare AES block rate of the same implementation measured in the same run.
 */
import { createCipheriv } from 'node:crypto';
import { unsafe } from '@noble/ciphers/aes.js';
import {
  AesDukptDevice,
  aesDukptInitialKey,
  aesDukptWorkingKey,
  decodePinBlock,
  encodePinBlock,
  hex,
  parseAesKsn,
  pinDigitsFromText,
  tdesDukptWorkingKey,
  parseTdesKsn,
  unwrap,
  type Pan,
} from '@pos/shared';
import { measure, type Benchmark } from './measure';

const KEY128 = hex('AF8CB133A78F8DC2D1359F18527593FB');
const BDK128 = hex('FEDCBA9876543210F1F1F1F1F1F1F1F1');
const BDK256 = hex('FEDCBA9876543210F1F1F1F1F1F1F1F1FEDCBA9876543210F1F1F1F1F1F1F1F1');
const IKID = hex('1234567890123456');
const TDES_BDK = hex('0123456789ABCDEFFEDCBA9876543210');
const PAN = '4111111111111111' as Pan;

export const cryptoBench: Benchmark = {
  name: 'crypto',
  usesSeconds: true,
  summary: 'PIN blocks and DUKPT derivations per second, beside the bare AES block rate',
  run(ctx) {
    // Baselines: one AES-128 block with a pre-expanded key (the implementation's floor), and one block
    // including the key schedule (what a fresh key costs), both @noble/ciphers; node:crypto for reference.
    const xk = unsafe.expandKeyLE(KEY128);
    const block = new Uint8Array(16);
    const aesBlock = measure(() => unsafe.encryptBlock(xk, block), ctx.seconds, 1024);
    const aesKeyed = measure(() => unsafe.encryptBlock(unsafe.expandKeyLE(KEY128), block), ctx.seconds, 256);
    const nodeCipher = createCipheriv('aes-128-ecb', KEY128, null).setAutoPadding(false);
    const nodeBlock = measure(() => nodeCipher.update(block), ctx.seconds, 1024);
    ctx.emit({
      metric: 'aes128_block',
      impl: '@noble/ciphers',
      ops_per_sec: round(aesBlock.opsPerSec),
      note: 'pre-expanded key',
    });
    ctx.emit({
      metric: 'aes128_block_with_key_schedule',
      impl: '@noble/ciphers',
      ops_per_sec: round(aesKeyed.opsPerSec),
    });
    ctx.emit({
      metric: 'aes128_block',
      impl: 'node:crypto',
      ops_per_sec: round(nodeBlock.opsPerSec),
      note: 'reference only; shared/ cannot use it',
    });

    const beside = (metric: string, opsPerSec: number, extra: Record<string, string | number> = {}): void =>
      ctx.emit({
        metric,
        ops_per_sec: round(opsPerSec),
        aes128_block_ops_per_sec: round(aesBlock.opsPerSec),
        ratio_to_aes_block: Number((opsPerSec / aesBlock.opsPerSec).toFixed(5)),
        aes128_keyed_block_ops_per_sec: round(aesKeyed.opsPerSec),
        ratio_to_keyed_aes_block: Number((opsPerSec / aesKeyed.opsPerSec).toFixed(4)),
        ...extra,
      });

    const pin = unwrap(pinDigitsFromText('1234')).pin;
    const fill = hex('2F69ADDE2E9E7ACE');
    const enc4 = measure(
      () => unwrap(encodePinBlock({ format: 4, pin, pan: PAN, key: KEY128, fill })),
      ctx.seconds,
    );
    beside('pinblock_format4_encode', enc4.opsPerSec, { key: 'aes128' });
    const block4 = unwrap(encodePinBlock({ format: 4, pin, pan: PAN, key: KEY128, fill })).block;
    const dec4 = measure(
      () => unwrap(decodePinBlock({ format: 4, block: block4, pan: PAN, key: KEY128 })),
      ctx.seconds,
    );
    beside('pinblock_format4_decode', dec4.opsPerSec, { key: 'aes128' });
    const enc0 = measure(() => unwrap(encodePinBlock({ format: 0, pin, pan: PAN })), ctx.seconds);
    beside('pinblock_format0_encode', enc0.opsPerSec, { note: 'clear block, no cipher' });

    // Host side: derivation from the BDK walks one intermediate key per one-bit of the counter.
    for (const [label, counterHex] of [
      ['1 one-bit', '00000001'],
      ['16 one-bits', 'FFFF0000'],
    ] as const) {
      const ksn = unwrap(parseAesKsn(hex(`1234567890123456${counterHex}`))).ksn;
      const host = measure(
        () => unwrap(aesDukptWorkingKey({ bdk: BDK128, ksn, usage: 'pin-encryption' })),
        ctx.seconds,
      );
      beside('dukpt_aes128_host_pin_key', host.opsPerSec, { counter: label });
    }
    const ksn256 = unwrap(parseAesKsn(hex('1234567890123456FFFF0000'))).ksn;
    const host256 = measure(
      () => unwrap(aesDukptWorkingKey({ bdk: BDK256, ksn: ksn256, usage: 'pin-encryption' })),
      ctx.seconds,
    );
    beside('dukpt_aes256_host_pin_key', host256.opsPerSec, { counter: '16 one-bits' });

    // Device side: future-key registers, so a transaction costs the same whatever its counter.
    const ik = unwrap(aesDukptInitialKey(BDK128, IKID)).key;
    let device = unwrap(AesDukptDevice.load(ik, IKID)).device;
    const dev = measure(() => {
      const r = device.nextTransaction([{ usage: 'pin-encryption' }]);
      if (!r.ok) device = unwrap(AesDukptDevice.load(ik, IKID)).device; // exhausted: start over
    }, ctx.seconds);
    beside('dukpt_aes128_device_transaction', dev.opsPerSec, { note: 'one PIN key per transaction' });

    const tksn = unwrap(parseTdesKsn(hex('FFFF9876543210E00015'))).ksn;
    const tdes = measure(() => unwrap(tdesDukptWorkingKey(TDES_BDK, tksn, 'pin')), ctx.seconds);
    ctx.emit({
      metric: 'dukpt_tdes_host_pin_key',
      ops_per_sec: round(tdes.opsPerSec),
      note: 'DES rounds, no AES baseline',
    });
  },
};

function round(n: number): number {
  return Math.round(n);
}
