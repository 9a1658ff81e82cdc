/**
 * Generates the spec's hex dumps (docs/reader-protocol.md, "Test vectors") from the code, with fixed
 * keys, nonces and clock, so the document cannot drift: reader-vectors.test.ts compares them, and
 * `UPDATE_READER_VECTORS=1 npx vitest run shared/test/reader-vectors.test.ts` rewrites them.
 */
import { readFileSync } from 'node:fs';
import { p256 } from '@noble/curves/nist.js';
import {
  DEV_BDK_HEX,
  HID_BROADCAST_CID,
  HID_COMMANDS,
  ReaderHandshake,
  TerminalHandshake,
  aesDukptWorkingKey,
  cborEncode,
  encodeMessage,
  encryptCardData,
  encodeSerialFrame,
  fragmentHid,
  hex,
  maskPan,
  p256Signer,
  parseAesKsn,
  signReaderStatus,
  toHex,
  type ReaderMessage,
  type SecureChannel,
} from '../src/index';
import { derCertificate } from './reader-der';
import { NOW, fixedRandom, secretOf, sessionClaims, signTicket } from './reader-fixtures';
import { concatBytes, deriveSessionKeys, jwkFromPublicKey, jwkThumbprint } from '../src/index';
import { sha256 } from '@noble/hashes/sha2.js';

export const VECTOR_KEYS = {
  ca: secretOf(1),
  reader: secretOf(2),
  ticket: secretOf(3),
  device: secretOf(4),
};

/** The fixed PKI of the vectors: a manufacturer CA and reader SIM-0001, both valid 2026-2045. */
export function vectorPki() {
  const notBefore = Date.UTC(2026, 0, 1) / 1000;
  const notAfter = Date.UTC(2045, 11, 31, 23, 59, 59) / 1000;
  const caDer = derCertificate({
    serialNumber: hex('01'),
    issuerCn: 'Dev Manufacturer CA',
    subjectCn: 'Dev Manufacturer CA',
    ca: true,
    notBefore,
    notAfter,
    publicKey: p256.getPublicKey(VECTOR_KEYS.ca, false),
    issuerSecret: VECTOR_KEYS.ca,
  });
  const readerDer = derCertificate({
    serialNumber: hex('0A1B2C3D'),
    issuerCn: 'Dev Manufacturer CA',
    subjectCn: 'SIM-0001',
    ca: false,
    notBefore,
    notAfter,
    publicKey: p256.getPublicKey(VECTOR_KEYS.reader, false),
    issuerSecret: VECTOR_KEYS.ca,
  });
  return { caDer, readerDer };
}

/** 16 bytes per line: offset, hex. */
export function hexdump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = Array.from(bytes.subarray(i, i + 16), (b) => b.toString(16).padStart(2, '0')).join(' ');
    lines.push(`${i.toString(16).padStart(4, '0')}  ${row}`);
  }
  return lines.join('\n');
}

const block = (title: string, bytes: Uint8Array, note = ''): string =>
  `${title} (${bytes.length} bytes)${note === '' ? '' : ` ${note}`}:\n\n\`\`\`\n${hexdump(bytes)}\n\`\`\`\n`;

export async function renderReaderVectors(): Promise<string> {
  const { caDer, readerDer } = vectorPki();
  const devicePublic = p256.getPublicKey(VECTOR_KEYS.device, false);
  const jkt = jwkThumbprint(jwkFromPublicKey(devicePublic));
  const ticket = signTicket(VECTOR_KEYS.ticket, sessionClaims(jkt));
  const terminal = new TerminalHandshake({
    deviceKey: p256Signer(VECTOR_KEYS.device),
    sessionTicket: ticket,
    trustedRoots: [caDer],
    now: () => NOW,
    expectedSerial: 'SIM-0001',
    random: fixedRandom(1),
  });
  const reader = new ReaderHandshake({
    identityKey: p256Signer(VECTOR_KEYS.reader),
    certChain: [readerDer],
    serial: 'SIM-0001',
    trustedTicketKeys: [{ kid: 'am-1', publicKey: p256.getPublicKey(VECTOR_KEYS.ticket, false) }],
    now: () => NOW,
    random: fixedRandom(101),
  });

  const flow: { from: string; msg: ReaderMessage }[] = [];
  let tChannel: SecureChannel | undefined;
  let rChannel: SecureChannel | undefined;
  let toReader: ReaderMessage[] = [terminal.start()];
  for (let round = 0; round < 4 && toReader.length > 0; round++) {
    const toTerminal: ReaderMessage[] = [];
    for (const m of toReader) {
      flow.push({ from: 'T→R', msg: m });
      const s = await reader.receive(m);
      if (s.status === 'failed') throw new Error(s.error.code);
      if (s.status === 'done') rChannel = s.channel;
      toTerminal.push(...s.send);
    }
    toReader = [];
    for (const m of toTerminal) {
      flow.push({ from: 'R→T', msg: m });
      const s = await terminal.receive(m);
      if (s.status === 'failed') throw new Error(s.error.code);
      if (s.status === 'done') tChannel = s.channel;
      toReader.push(...s.send);
    }
  }
  if (tChannel === undefined || rChannel === undefined)
    throw new Error('the vector handshake did not finish');

  const dukpt = JSON.parse(readFileSync(new URL('./vectors/dukpt.json', import.meta.url), 'utf8')) as {
    aes128: { ksn_verify: string[]; encrypted_pinblock_verify: string[] };
  };
  const records: { from: string; plain: ReaderMessage; channel: SecureChannel }[] = [
    { from: 'T→R', plain: { t: 'start', id: 16, amount: 1250, currency: 'EUR' }, channel: tChannel },
    { from: 'R→T', plain: { t: 'started', id: 16 }, channel: rChannel },
    { from: 'T→R', plain: { t: 'pin', id: 17, digits: Uint8Array.of(1, 2, 3, 4) }, channel: tChannel },
    {
      from: 'R→T',
      plain: {
        t: 'pin-block',
        id: 17,
        block: hex(dukpt.aes128.encrypted_pinblock_verify[0] ?? ''),
        ksn: hex(dukpt.aes128.ksn_verify[0] ?? ''),
      },
      channel: rChannel,
    },
  ];

  const out: string[] = [];
  out.push(
    'Inputs (all fixed, none secret in production): P-256 secret keys are 32 bytes `11 00 .. 00 NN` with',
    '`NN` = 01 for the manufacturer CA, 02 for the reader, 03 for the A&M ticket key, 04 for the terminal',
    'device key. Clock: ' +
      `${NOW} (${new Date(NOW * 1000).toISOString()}). Ephemeral keys and nonces come from`,
    'a counter stream (`fixedRandom` in shared/test/reader-fixtures.ts). ECDSA is RFC 6979 (deterministic).',
    '',
    block('Manufacturer CA certificate (DER; `openssl x509 -inform DER -text` reads it)', caDer),
    block('Reader certificate SIM-0001 (DER)', readerDer),
    `Session ticket (compact JWS):\n\n\`\`\`\n${ticket.replace(/(.{96})/g, '$1\n')}\n\`\`\`\n`,
    '### Handshake messages',
    '',
  );
  for (const f of flow) {
    const bytes = encodeMessage(f.msg);
    out.push(block(`${f.from} \`${f.msg.t}\``, bytes, f.msg.t === 'rec' ? '(the `finished` record)' : ''));
  }
  // Intermediate values, recomputed from the fixed inputs, for implementers to compare against.
  const tEph = fixedRandom(1)(32);
  const readerEpk = flow.find((f) => f.msg.t === 'reader-hello')?.msg;
  if (readerEpk?.t !== 'reader-hello') throw new Error('no reader-hello');
  const z = p256.getSharedSecret(tEph, readerEpk.epk, true).slice(1);
  const th = sha256(concatBytes(...flow.slice(0, 5).map((f) => encodeMessage(f.msg))));
  const keys = deriveSessionKeys(z, th);
  if (toHex(keys.sessionId) !== toHex(tChannel.sessionId)) throw new Error('the recomputed keys differ');
  out.push(
    'Key schedule (these keys are secret in real sessions; here they follow from the fixed inputs):',
    '',
    '```',
    `terminal ephemeral secret  ${toHex(tEph)}`,
    `Z (ECDH x-coordinate)      ${toHex(z)}`,
    `TH(terminal-auth)          ${toHex(th)}`,
    `K_t2r                      ${toHex(keys.t2rKey)}`,
    `IV_t2r                     ${toHex(keys.t2rIv)}`,
    `K_r2t                      ${toHex(keys.r2tKey)}`,
    `IV_r2t                     ${toHex(keys.r2tIv)}`,
    `session id                 ${toHex(keys.sessionId)}`,
    '```',
    '',
    '### Records after the handshake',
    '',
  );
  for (const r of records) {
    const plain = encodeMessage(r.plain);
    const sealed = r.channel.seal(r.plain);
    if (!sealed.ok) throw new Error(sealed.code);
    const peer = r.channel === tChannel ? rChannel : tChannel;
    const opened = peer.open(sealed.record);
    if (!opened.ok) throw new Error(opened.code);
    out.push(
      block(`${r.from} plaintext \`${r.plain.t}\``, plain),
      block(`${r.from} record n=${sealed.record.n}`, sealed.bytes),
    );
  }

  // Card data (§4.3): AES-GCM under the DUKPT data key of the KSN, the KSN as additional data.
  const cardKsn = parseAesKsn(hex(dukpt.aes128.ksn_verify[0] ?? ''));
  if (!cardKsn.ok) throw new Error(cardKsn.code);
  const dataKey = aesDukptWorkingKey({
    bdk: hex(DEV_BDK_HEX),
    ksn: cardKsn.ksn,
    usage: 'data-encryption',
    keyType: 'aes128',
  });
  if (!dataKey.ok) throw new Error(dataKey.code);
  const cardRecord = { pan: '4111111111111111', exp: '3012' };
  const cardIv = hex('A0A1A2A3A4A5A6A7A8A9AAAB');
  const cardData = encryptCardData(dataKey.key, cardRecord, cardKsn.ksn, cardIv);
  const cardEvent: ReaderMessage = {
    t: 'card-inserted',
    id: 0,
    pan: maskPan(cardRecord.pan),
    token: 'tok_AAECAwQFBgcICQoLDA0ODxAR',
    scheme: 'visa',
    pinRequired: true,
    expired: false,
    nonce: hex('B0'.repeat(32)),
    card: { ksn: cardKsn.ksn, iv: cardData.iv, ct: cardData.ct },
  };
  out.push(
    '### Card data',
    '',
    'The card record of the X9.24-3 test PAN under the data-encryption key (usage 3000, AES-128) of the',
    'first KSN of the X9.24-3 AES-128 vectors (development BDK `FEDCBA9876543210F1F1F1F1F1F1F1F1`),',
    'with a fixed IV for the vector only (a reader draws 12 random bytes for each record):',
    '',
    '```',
    `KSN (additional authenticated data)  ${toHex(cardKsn.ksn)}`,
    `data-encryption key                  ${toHex(dataKey.key)}`,
    `IV (GCM nonce)                       ${toHex(cardIv)}`,
    '```',
    '',
    block('card record (deterministic CBOR, the GCM plaintext)', cborEncode(cardRecord)),
    block('`ct` = AES-128-GCM ciphertext || 16-byte tag', cardData.ct),
    block('R→T plaintext `card-inserted` carrying it', encodeMessage(cardEvent)),
  );

  const offer = encodeMessage({ t: 'offer', id: 1, versions: [1] });
  out.push(
    '### Serial frames',
    '',
    block('SYNC, seq 0', encodeSerialFrame({ type: 'sync', seq: 0, payload: new Uint8Array(0) })),
    block('ACK, seq 0', encodeSerialFrame({ type: 'ack', seq: 0, payload: new Uint8Array(0) })),
    block('DATA, seq 1, carrying `offer`', encodeSerialFrame({ type: 'data', seq: 1, payload: offer })),
    block('NAK, seq 1', encodeSerialFrame({ type: 'nak', seq: 1, payload: new Uint8Array(0) })),
    '### HID reports',
    '',
  );
  const nonce = hex('0102030405060708');
  const initResp = hex('0102030405060708' + 'C0FFEE01' + '02' + '010000' + '00');
  out.push(
    block(
      'INIT request on the broadcast channel',
      fragmentHid(HID_BROADCAST_CID, HID_COMMANDS.init, nonce)[0]!,
    ),
    block(
      'INIT response (channel C0FFEE01)',
      fragmentHid(HID_BROADCAST_CID, HID_COMMANDS.init, initResp)[0]!,
    ),
    block('MSG carrying `offer` on channel C0FFEE01', fragmentHid(0xc0ffee01, HID_COMMANDS.msg, offer)[0]!),
  );
  const rh = flow.find((f) => f.msg.t === 'reader-hello');
  if (rh !== undefined) {
    const reports = fragmentHid(0xc0ffee01, HID_COMMANDS.msg, encodeMessage(rh.msg));
    out.push(
      `The \`reader-hello\` above takes ${reports.length} reports; the first two:\n`,
      block('init packet', reports[0]!),
      block('continuation packet SEQ 0', reports[1]!),
    );
  }
  const status = await signReaderStatus(
    {
      v: 1,
      serial: 'SIM-0001',
      fw: '1.0.0',
      fwHash: new Uint8Array(32).fill(0xab),
      tamper: false,
      ksnCounter: 1,
      battery: 87,
      time: NOW,
      seq: 7,
      challenge: hex('00112233445566778899AABBCCDDEEFF'),
    },
    p256Signer(VECTOR_KEYS.reader),
  );
  out.push('### Status report', '', block('report (CBOR)', status.report), block('sig (r || s)', status.sig));
  return (
    out
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trimEnd() + '\n'
  );
}
