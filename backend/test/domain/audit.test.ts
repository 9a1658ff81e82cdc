/** The audit chain finds a changed, removed, inserted or reordered entry, and a forged or cut checkpoint. */
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseBase64url, type TrustedTicketKey } from '@pos/shared';
import {
  AUDIT_GENESIS_HASH,
  chainAuditEntry,
  signAuditCheckpoint,
  verifyAuditChain,
  type AuditEntry,
} from '../../src/audit/index';
import { nodeTicketSigner } from '../../src/tickets/index';

function keyPair(kid: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
  const x = parseBase64url(jwk.x);
  const y = parseBase64url(jwk.y);
  if (!x.ok || !y.ok) throw new Error('jwk');
  const trusted: TrustedTicketKey = { kid, publicKey: new Uint8Array([4, ...x.bytes, ...y.bytes]) };
  return { signer: nodeTicketSigner(kid, privateKey), trusted };
}
const k1 = keyPair('k1');
const k2 = keyPair('k2');

function chain(n: number): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      chainAuditEntry(out.at(-1), {
        at: new Date(1_800_000_000_000 + i * 1000).toISOString(),
        actor: i % 2 === 0 ? 'operator:alice' : 'system',
        action: i % 3 === 0 ? 'verdict' : 'halt',
        subject: `term_${i % 4}`,
        data: { tier: 'affirming', n: i, nested: { list: [1, 'two', null, true] } },
      }),
    );
  }
  return out;
}

describe('chainAuditEntry', () => {
  it('starts at 1 on the genesis hash and links each entry to the one before', () => {
    const c = chain(3);
    expect(c.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(c[0]?.prevHash).toBe(AUDIT_GENESIS_HASH);
    expect(c[1]?.prevHash).toBe(c[0]?.hash);
    expect(c[2]?.prevHash).toBe(c[1]?.hash);
    expect(c[0]?.hash).toMatch(/^[0-9a-f]{64}$/);
  });
  it('is deterministic, independent of key order in data', () => {
    const a = chainAuditEntry(undefined, {
      at: 't',
      actor: 'a',
      action: 'x',
      subject: 's',
      data: { a: 1, b: 2 },
    });
    const b = chainAuditEntry(undefined, {
      at: 't',
      actor: 'a',
      action: 'x',
      subject: 's',
      data: { b: 2, a: 1 },
    });
    expect(a.hash).toBe(b.hash);
  });
  it('survives an export to JSON lines and back', () => {
    const c = chain(5);
    const lines = c.map((e) => JSON.stringify(e)).join('\n');
    const back = lines.split('\n').map((l) => JSON.parse(l) as AuditEntry);
    expect(verifyAuditChain(back)).toEqual({ ok: true, count: 5, head: c[4]?.hash });
  });
  it('normalises data through JSON (undefined members dropped) so stored equals hashed', () => {
    const e = chainAuditEntry(undefined, {
      at: 't',
      actor: 'a',
      action: 'x',
      subject: 's',
      data: { a: undefined, b: 1 },
    });
    expect(e.data).toEqual({ b: 1 });
    expect(verifyAuditChain([e]).ok).toBe(true);
  });
});

describe('verifyAuditChain', () => {
  it('accepts an intact chain, and an empty one', () => {
    const c = chain(10);
    expect(verifyAuditChain(c)).toEqual({ ok: true, count: 10, head: c[9]?.hash });
    expect(verifyAuditChain([])).toEqual({ ok: true, count: 0, head: AUDIT_GENESIS_HASH });
  });
  it('finds a changed entry', () => {
    const c = chain(5);
    const changed = c.map((e, i) => (i === 2 ? { ...e, data: { ...e.data, tier: 'contraindicated' } } : e));
    expect(verifyAuditChain(changed)).toMatchObject({ ok: false, code: 'POS_ERR_AUDIT_HASH' });
    const actor = c.map((e, i) => (i === 1 ? { ...e, actor: 'mallory' } : e));
    expect(verifyAuditChain(actor)).toMatchObject({ ok: false, code: 'POS_ERR_AUDIT_HASH' });
  });
  it('finds a changed entry whose hash was recomputed (the link breaks)', () => {
    const c = chain(5);
    const e2 = c[2];
    if (e2 === undefined) throw new Error('fixture');
    const forged = chainAuditEntry(c[1], { ...e2, data: { forged: true } });
    const out = [...c.slice(0, 2), forged, ...c.slice(3)];
    expect(verifyAuditChain(out)).toMatchObject({ ok: false, code: 'POS_ERR_AUDIT_LINK' });
  });
  it('finds a removed entry', () => {
    const c = chain(5);
    expect(verifyAuditChain([...c.slice(0, 2), ...c.slice(3)])).toMatchObject({
      ok: false,
      code: 'POS_ERR_AUDIT_SEQUENCE',
    });
    expect(verifyAuditChain(c.slice(1))).toMatchObject({ ok: false, code: 'POS_ERR_AUDIT_SEQUENCE' });
  });
  it('finds reordered entries', () => {
    const c = chain(5);
    const [a, b] = [c[1], c[2]];
    if (a === undefined || b === undefined) throw new Error('fixture');
    expect(verifyAuditChain([c[0], b, a, c[3], c[4]] as AuditEntry[])).toMatchObject({
      ok: false,
      code: 'POS_ERR_AUDIT_SEQUENCE',
    });
  });
  it('finds an inserted entry', () => {
    const c = chain(4);
    const extra = chainAuditEntry(c[1], { at: 't', actor: 'x', action: 'y', subject: 'z', data: {} });
    expect(verifyAuditChain([c[0], c[1], extra, c[2], c[3]] as AuditEntry[])).toMatchObject({
      ok: false,
      code: 'POS_ERR_AUDIT_SEQUENCE',
    });
  });
  it('refuses a malformed entry', () => {
    const c = chain(2);
    expect(verifyAuditChain([c[0], { ...c[1], hash: 'nope' }] as AuditEntry[])).toMatchObject({
      ok: false,
      code: 'POS_ERR_AUDIT_MALFORMED',
    });
  });
  it('any single-field alteration of any entry is found (property)', () => {
    const c = chain(6);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.constantFrom('at', 'actor', 'action', 'subject', 'data', 'prevHash', 'hash', 'seq'),
        fc.string({ minLength: 1, maxLength: 8 }),
        (i, field, text) => {
          const e = c[i];
          if (e === undefined) return;
          let altered: AuditEntry;
          if (field === 'seq') altered = { ...e, seq: e.seq + 1 };
          else if (field === 'data') altered = { ...e, data: { ...e.data, x: text } };
          else if (field === 'prevHash' || field === 'hash') {
            const flipped = e[field].slice(0, -1) + (e[field].endsWith('0') ? '1' : '0');
            altered = { ...e, [field]: flipped };
          } else altered = { ...e, [field]: `${e[field]}${text}` };
          const out = c.map((x, j) => (j === i ? altered : x));
          expect(verifyAuditChain(out).ok).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('checkpoints', () => {
  it('a checkpoint signed with the ticket key verifies', async () => {
    const c = chain(6);
    const cp = await signAuditCheckpoint(c[3] as AuditEntry, k1.signer, '2027-01-15T08:00:00.000Z');
    expect(cp).toMatchObject({ seq: 4, hash: c[3]?.hash, kid: 'k1' });
    expect(verifyAuditChain(c, { checkpoints: [cp], keys: [k1.trusted] })).toMatchObject({
      ok: true,
      count: 6,
    });
  });
  it('a chain cut short before a checkpoint is found', async () => {
    const c = chain(6);
    const cp = await signAuditCheckpoint(c[5] as AuditEntry, k1.signer, 'now');
    expect(verifyAuditChain(c.slice(0, 4), { checkpoints: [cp], keys: [k1.trusted] })).toMatchObject({
      ok: false,
      code: 'POS_ERR_AUDIT_CHECKPOINT',
    });
  });
  it('a rewritten chain (consistent, but not the one checkpointed) is found', async () => {
    const c = chain(4);
    const cp = await signAuditCheckpoint(c[3] as AuditEntry, k1.signer, 'now');
    const rewritten: AuditEntry[] = [];
    for (const e of c) rewritten.push(chainAuditEntry(rewritten.at(-1), { ...e, actor: 'mallory' }));
    expect(verifyAuditChain(rewritten).ok).toBe(true);
    expect(verifyAuditChain(rewritten, { checkpoints: [cp], keys: [k1.trusted] })).toMatchObject({
      ok: false,
      code: 'POS_ERR_AUDIT_CHECKPOINT',
    });
  });
  it('a forged checkpoint is refused: another key, altered fields, an untrusted kid', async () => {
    const c = chain(4);
    const byK2 = await signAuditCheckpoint(c[3] as AuditEntry, k2.signer, 'now');
    expect(verifyAuditChain(c, { checkpoints: [{ ...byK2, kid: 'k1' }], keys: [k1.trusted] })).toMatchObject({
      code: 'POS_ERR_AUDIT_CHECKPOINT',
    });
    expect(verifyAuditChain(c, { checkpoints: [byK2], keys: [k1.trusted] })).toMatchObject({
      code: 'POS_ERR_AUDIT_CHECKPOINT',
    });
    const good = await signAuditCheckpoint(c[3] as AuditEntry, k1.signer, 'now');
    expect(
      verifyAuditChain(c, { checkpoints: [{ ...good, hash: c[2]?.hash ?? '' }], keys: [k1.trusted] }),
    ).toMatchObject({
      code: 'POS_ERR_AUDIT_CHECKPOINT',
    });
    expect(verifyAuditChain(c, { checkpoints: [{ ...good, seq: 3 }], keys: [k1.trusted] })).toMatchObject({
      code: 'POS_ERR_AUDIT_CHECKPOINT',
    });
    const [h, p, s] = good.signature.split('.');
    const flipped = `${h}.${p}.${(s ?? '').startsWith('A') ? 'B' : 'A'}${(s ?? '').slice(1)}`;
    expect(
      verifyAuditChain(c, { checkpoints: [{ ...good, signature: flipped }], keys: [k1.trusted] }),
    ).toMatchObject({
      code: 'POS_ERR_AUDIT_CHECKPOINT',
    });
    expect(
      verifyAuditChain(c, { checkpoints: [{ ...good, signature: 'x.y' }], keys: [k1.trusted] }),
    ).toMatchObject({
      code: 'POS_ERR_AUDIT_CHECKPOINT',
    });
  });
  it('a retired key still verifies its old checkpoints when it is still trusted', async () => {
    const c = chain(4);
    const old = await signAuditCheckpoint(c[1] as AuditEntry, k1.signer, 'then');
    const fresh = await signAuditCheckpoint(c[3] as AuditEntry, k2.signer, 'now');
    expect(verifyAuditChain(c, { checkpoints: [old, fresh], keys: [k1.trusted, k2.trusted] }).ok).toBe(true);
  });
});

describe('signAuditCheckpoint', () => {
  it('refuses a signer that does not return 64 bytes', async () => {
    const c = chain(1);
    await expect(
      signAuditCheckpoint(c[0] as AuditEntry, { kid: 'k', sign: () => new Uint8Array(3) }, 'now'),
    ).rejects.toMatchObject({ code: 'POS_ERR_TICKET_SIGNER' });
  });
});

describe('chainAuditEntry input', () => {
  it('refuses data that is not JSON with a coded PosError', () => {
    expect(() =>
      chainAuditEntry(undefined, { at: 't', actor: 'a', action: 'x', subject: 's', data: { n: 1n } }),
    ).toThrow(/POS_ERR_AUDIT_MALFORMED/);
  });
});
