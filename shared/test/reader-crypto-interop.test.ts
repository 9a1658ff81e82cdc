/**
 * The key schedule and the record format checked against node:crypto (OpenSSL), an implementation
 * independent of the noble libraries the protocol code uses.
 */
import { createDecipheriv, createECDH, hkdfSync } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HANDSHAKE_LABELS,
  SecureChannel,
  deriveSessionKeys,
  encodeMessage,
  recordHeader,
  toHex,
  type ReaderMessage,
} from '../src/index';
import { arbMessage } from './reader-arbitraries';

describe('reader crypto against node:crypto', () => {
  it('HKDF-SHA-256 key schedule', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (z, th) => {
          const k = deriveSessionKeys(z, th);
          const node = (label: string, n: number) =>
            toHex(new Uint8Array(hkdfSync('sha256', z, th, label, n)));
          expect(toHex(k.t2rKey)).toBe(node(HANDSHAKE_LABELS.t2rKey, 32));
          expect(toHex(k.t2rIv)).toBe(node(HANDSHAKE_LABELS.t2rIv, 12));
          expect(toHex(k.r2tKey)).toBe(node(HANDSHAKE_LABELS.r2tKey, 32));
          expect(toHex(k.r2tIv)).toBe(node(HANDSHAKE_LABELS.r2tIv, 12));
          expect(toHex(k.sessionId)).toBe(node(HANDSHAKE_LABELS.sessionId, 16));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('ECDH: the shared secret is the x-coordinate OpenSSL computes', () => {
    const a = p256.utils.randomSecretKey();
    const b = p256.utils.randomSecretKey();
    const ours = p256.getSharedSecret(a, p256.getPublicKey(b, false), true).slice(1);
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(a);
    expect(toHex(ecdh.computeSecret(p256.getPublicKey(b, false)))).toBe(toHex(ours));
  });

  it('records: AES-256-GCM with nonce = IV xor counter and the 10-byte header as AAD', () => {
    fc.assert(
      fc.property(
        arbMessage.filter((m) => m.t === 'pin' || m.t === 'abort' || m.t === 'start' || m.t === 'get-status'),
        fc.integer({ min: 0, max: 5 }),
        (msg: ReaderMessage, skip) => {
          const key = new Uint8Array(32).fill(7);
          const iv = Uint8Array.from({ length: 12 }, (_, i) => 0xf0 + i);
          const t = new SecureChannel(
            'terminal',
            {
              sendKey: key.slice(),
              sendIv: iv.slice(),
              receiveKey: new Uint8Array(32),
              receiveIv: new Uint8Array(12),
            },
            new Uint8Array(16),
          );
          for (let i = 0; i < skip; i++) t.seal({ t: 'abort', id: 1 });
          const s = t.seal(msg);
          if (!s.ok) throw new Error(s.code);
          const n = s.record.n;
          expect(n).toBe(skip);
          const nonce = iv.slice();
          nonce[11]! ^= n;
          const d = createDecipheriv('aes-256-gcm', key, nonce);
          d.setAAD(recordHeader('terminal', n));
          d.setAuthTag(s.record.ct.subarray(-16));
          const plain = Buffer.concat([d.update(s.record.ct.subarray(0, -16)), d.final()]);
          expect(toHex(plain)).toBe(toHex(encodeMessage(msg)));
          expect(toHex(recordHeader('terminal', n))).toBe(
            `0101${n.toString(16).padStart(16, '0').toUpperCase()}`,
          );
        },
      ),
      { numRuns: 100 },
    );
  });
});
