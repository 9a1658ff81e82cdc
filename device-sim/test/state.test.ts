import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { aesKsnCounter, toBase64url, toHex, type AesKsn } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { DUKPT_FILE, DukptStore } from '../src/state/dukpt';
import {
  CA_CERT_FILE,
  CA_DIR,
  certificateChainsTo,
  IDENTITY_FILE,
  READER_CERT_FILE,
} from '../src/state/identity';
import { ReaderFirmware } from '../src/firmware/reader';
import { Simulator } from '../src/sim';
import { STATUS_SEQ_FILE } from '../src/state/status-seq';
import { latchTamper, openReaderState, TAMPER_FILE } from '../src/state/store';
import { saveTrust, TRUST_FILE } from '../src/state/trust';
import { liveExp, makeTestAm, tempStateDir } from './support';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
function dir(): string {
  const t = tempStateDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

async function open(d: string) {
  const r = await openReaderState(d);
  if (!r.ok) throw new Error(`${r.code}: ${r.detail}`);
  return r.state;
}

function modes(d: string): { path: string; mode: number }[] {
  const out: { path: string; mode: number }[] = [];
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    out.push({ path: p, mode: statSync(p).mode & 0o777 });
    if (e.isDirectory()) out.push(...modes(p));
  }
  return out;
}

describe('state directory', () => {
  it('is created 0700 with every file 0600, and keeps identity and KSN across restarts', async () => {
    const d = dir();
    const first = await open(d);
    expect(first.created).toBe(true);
    expect(statSync(d).mode & 0o777).toBe(0o700);
    for (const m of modes(d)) {
      expect({ path: m.path, mode: m.mode.toString(8) }).toEqual({
        path: m.path,
        mode: statSync(m.path).isDirectory() ? '700' : '600',
      });
    }
    const k1 = first.dukpt?.nextTransaction();
    expect(k1?.ok).toBe(true);
    const used = k1?.ok ? aesKsnCounter(k1.ksn) : -1;

    const second = await open(d);
    expect(second.created).toBe(false);
    expect(second.serial).toBe(first.serial);
    expect(toHex(second.identity?.publicKey ?? new Uint8Array())).toBe(
      toHex(first.identity?.publicKey ?? new Uint8Array()),
    );
    expect(second.dukpt?.nextCounter).toBeGreaterThan(used);
  });

  it('makes certificates openssl reads, with the serial in the subject, chained to the CA', async (ctx) => {
    const d = dir();
    const s = await open(d);
    const id = s.identity;
    expect(id).toBeDefined();
    if (id === undefined) return;
    expect(await certificateChainsTo(id.certificateDer, id.caCertificateDer)).toBe(true);
    const otherCa = (await open(dir())).identity?.caCertificateDer ?? new Uint8Array();
    expect(await certificateChainsTo(id.certificateDer, otherCa)).toBe(false);
    if (!existsSync('/usr/bin/openssl')) {
      console.log('skipped the openssl check: /usr/bin/openssl is not installed');
      ctx.skip();
      return;
    }
    const text = execFileSync('openssl', ['x509', '-text', '-noout', '-in', join(d, READER_CERT_FILE)], {
      encoding: 'utf8',
    });
    expect(text).toContain(`CN = ${s.serial}`);
    expect(text).toContain('prime256v1');
    expect(text).toContain('Digital Signature');
    const ca = execFileSync('openssl', ['x509', '-text', '-noout', '-in', join(d, CA_DIR, CA_CERT_FILE)], {
      encoding: 'utf8',
    });
    expect(ca).toContain('CA:TRUE');
    execFileSync('openssl', ['verify', '-CAfile', join(d, CA_DIR, CA_CERT_FILE), join(d, READER_CERT_FILE)]);
  });

  it.each([IDENTITY_FILE, DUKPT_FILE, TRUST_FILE, 'device.json', 'tamper.json'])(
    'refuses a corrupt %s with a code, never a crash',
    async (name) => {
      const d = dir();
      const s = await open(d);
      const am = await makeTestAm();
      expect(saveTrust(d, am.jwks).ok).toBe(true);
      expect(s.created).toBe(true);
      for (const garbage of ['{not json', '{"version":2}', '[]', '']) {
        writeFileSync(join(d, name), garbage);
        const r = await openReaderState(d);
        expect(r.ok ? 'ok' : r.code).toBe('POS_ERR_SIM_STATE_CORRUPT');
      }
    },
  );

  it('refuses a DUKPT state whose registers do not match its counter', async () => {
    const d = dir();
    await open(d);
    const state = JSON.parse(readFileSync(join(d, DUKPT_FILE), 'utf8')) as { device: { counter: number } };
    state.device.counter = 2;
    writeFileSync(join(d, DUKPT_FILE), JSON.stringify(state));
    const r = await openReaderState(d);
    expect(r.ok ? 'ok' : r.code).toBe('POS_ERR_SIM_STATE_CORRUPT');
  });

  it('refuses a missing identity without create', async () => {
    const r = await openReaderState(dir(), { create: false });
    expect(r.ok ? 'ok' : r.code).toMatch(/POS_ERR_SIM_STATE_(MISSING|DIR)/);
  });
});

describe('write-ahead KSN', () => {
  it('never repeats a KSN when the process dies between persist and use', async () => {
    const d = dir();
    await open(d);
    const seen = new Set<string>();
    for (let crash = 0; crash < 5; crash++) {
      let doomed: AesKsn | undefined;
      const loaded = DukptStore.load(d, {
        afterPersist: (ksn) => {
          doomed = ksn;
          throw new Error('simulated power loss after the write-ahead');
        },
      });
      if (!loaded.ok || loaded.store === undefined) throw new Error('no store');
      expect(() => loaded.store?.nextTransaction()).toThrow('simulated power loss');
      expect(doomed).toBeDefined();
      seen.add(toHex(doomed ?? new Uint8Array()));
      // Restart: the next KSN is past the one that was about to be used.
      const again = DukptStore.load(d);
      if (!again.ok || again.store === undefined) throw new Error('no store');
      const next = again.store.nextTransaction();
      if (!next.ok) throw new Error(next.code);
      const h = toHex(next.ksn);
      expect(seen.has(h)).toBe(false);
      seen.add(h);
    }
    expect(seen.size).toBe(10);
  });

  it('advances the counter on disk before handing out keys', async () => {
    const d = dir();
    await open(d);
    const loaded = DukptStore.load(d, {
      afterPersist: (ksn) => {
        const onDisk = JSON.parse(readFileSync(join(d, DUKPT_FILE), 'utf8')) as {
          device: { counter: number };
        };
        expect(onDisk.device.counter).toBeGreaterThan(aesKsnCounter(ksn));
      },
    });
    if (!loaded.ok || loaded.store === undefined) throw new Error('no store');
    for (let i = 0; i < 20; i++) expect(loaded.store.nextTransaction().ok).toBe(true);
  });

  it('uses the development BDK ID and a random derivation id in the KSN', async () => {
    const a = await open(dir());
    const b = await open(dir());
    const ka = toHex(a.dukpt?.nextKsn ?? new Uint8Array());
    const kb = toHex(b.dukpt?.nextKsn ?? new Uint8Array());
    expect(ka.slice(0, 8)).toBe('12345678');
    expect(kb.slice(0, 8)).toBe('12345678');
    expect(ka.slice(8, 16)).not.toBe(kb.slice(8, 16));
    expect(ka.slice(16)).toBe('00000001');
  });
});

describe('remnants of a reader are never re-created as a new reader (M2)', () => {
  it.each([IDENTITY_FILE, READER_CERT_FILE, DUKPT_FILE, 'device.json'])(
    'refuses a directory whose %s is missing, and creates nothing',
    async (name) => {
      const d = dir();
      const first = await open(d);
      rmSync(join(d, name));
      const before = readdirSync(d).sort();
      const r = await openReaderState(d);
      expect(r.ok ? 'ok' : r.code).toBe('POS_ERR_SIM_STATE_INCOMPLETE');
      expect(r.ok ? '' : r.detail).toContain(name);
      expect(r.ok ? '' : r.detail).not.toContain(first.serial);
      expect(readdirSync(d).sort()).toEqual(before);
    },
  );

  it('refuses a tampered directory whose tamper.json was deleted (no fresh reader)', async () => {
    const d = dir();
    const s = await open(d);
    expect(latchTamper(s, 'test').ok).toBe(true);
    rmSync(join(d, TAMPER_FILE));
    const r = await openReaderState(d);
    expect(r.ok ? 'ok' : r.code).toBe('POS_ERR_SIM_STATE_INCOMPLETE');
    expect(existsSync(join(d, IDENTITY_FILE))).toBe(false);
  });

  it('refuses a directory with only a status sequence or a half-written file left', async () => {
    for (const leftover of [STATUS_SEQ_FILE, `.${IDENTITY_FILE}.4242.tmp`]) {
      const d = dir();
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, leftover), '{"version":1,"reserved":64}');
      const r = await openReaderState(d);
      expect({ leftover, code: r.ok ? 'ok' : r.code }).toEqual({
        leftover,
        code: 'POS_ERR_SIM_STATE_INCOMPLETE',
      });
      expect(existsSync(join(d, IDENTITY_FILE))).toBe(false);
    }
  });

  it('creates a reader in an empty directory or one holding only provisioning (CA, trust)', async () => {
    const a = dir();
    mkdirSync(a, { recursive: true });
    expect((await open(a)).created).toBe(true);
    const b = dir();
    mkdirSync(b, { recursive: true });
    cpSync(join(a, CA_DIR), join(b, CA_DIR), { recursive: true });
    expect(saveTrust(b, (await makeTestAm()).jwks).ok).toBe(true);
    const s = await open(b);
    expect(s.created).toBe(true);
    expect(toHex(s.identity?.caCertificateDer ?? new Uint8Array())).toBe(
      toHex((await open(a)).identity?.caCertificateDer ?? new Uint8Array()),
    );
  });

  it('holds the identity key as bytes only (no JWK string) and tamper wipes them', async () => {
    const d = dir();
    const s = await open(d);
    const file = JSON.parse(readFileSync(join(d, IDENTITY_FILE), 'utf8')) as { privateKeyJwk: { d: string } };
    const id = s.identity;
    if (id === undefined) throw new Error('no identity');
    expect(Object.keys(id)).not.toContain('privateKeyJwk');
    expect(JSON.stringify(s)).not.toContain(file.privateKeyJwk.d);
    expect(toBase64url(id.privateKey)).toBe(file.privateKeyJwk.d);
    const key = id.privateKey;
    expect(latchTamper(s, 'test').ok).toBe(true);
    expect(key.every((b) => b === 0)).toBe(true);
  });
});

describe('tamper latch durability (M2)', () => {
  it('does not shred the keys while the latch cannot be written; latches in memory and retries', async () => {
    const d = dir();
    const s = await open(d);
    const fw = new ReaderFirmware(s, { firmwareHash: 'AB'.repeat(32) });
    const key = s.identity?.privateKey ?? new Uint8Array(1);
    // A directory where tamper.json goes makes the atomic rename fail, even for root.
    mkdirSync(join(d, TAMPER_FILE));
    const r = fw.tamper('test');
    expect(r.ok ? 'ok' : r.code).toBe('POS_ERR_SIM_TAMPER_NOT_DURABLE');
    // In memory: latched and wiped; refuses everything.
    expect(fw.tampered).toBe(true);
    expect(fw.tamperLatchPending).toBe(true);
    expect(key.every((b) => b === 0)).toBe(true);
    for (const res of [
      fw.start(1, 'EUR'),
      fw.setSession('x', { perm: ['transact'], exp: liveExp() }),
      fw.presentCard('visa-pin', 'insert'),
    ]) {
      expect(res.ok ? 'ok' : res.code).toBe('POS_ERR_READER_TAMPERED');
    }
    // On disk: nothing shredded yet, so a restart cannot find a keyless reader without a latch.
    for (const f of [IDENTITY_FILE, DUKPT_FILE, 'device.json']) expect(existsSync(join(d, f))).toBe(true);
    const retryFails = fw.retryTamperLatch();
    expect(retryFails.ok ? 'ok' : retryFails.code).toBe('POS_ERR_SIM_TAMPER_NOT_DURABLE');

    rmSync(join(d, TAMPER_FILE), { recursive: true });
    expect(fw.retryTamperLatch().ok).toBe(true);
    expect(fw.tamperLatchPending).toBe(false);
    for (const f of [IDENTITY_FILE, DUKPT_FILE, 'device.json']) expect(existsSync(join(d, f))).toBe(false);
    const reopened = await openReaderState(d);
    if (!reopened.ok) throw new Error(reopened.code);
    expect(reopened.state.tampered).toBe(true);
    expect(reopened.state.serial).toBe(s.serial);
    fw.shutdown();
  });
});

describe('the simulator refuses to start on part of a reader (M2)', () => {
  it('does not start a fresh reader after tamper.json is deleted', async () => {
    const d = dir();
    const first = await Simulator.start({ stateDir: d, transport: 'hid' });
    if (!first.ok) throw new Error(first.code);
    const serial = first.sim.ready.serial;
    expect(first.sim.tamper('test')).toEqual({ ok: true });
    await first.sim.stop();
    rmSync(join(d, TAMPER_FILE));
    const again = await Simulator.start({ stateDir: d, transport: 'hid' });
    if (again.ok) await again.sim.stop();
    expect(again.ok ? again.sim.ready : again.code).toBe('POS_ERR_SIM_STATE_INCOMPLETE');
    expect(readdirSync(d)).not.toContain(IDENTITY_FILE);
    expect(readFileSync(join(d, READER_CERT_FILE), 'utf8')).toContain('BEGIN CERTIFICATE');
    expect(serial).toMatch(/^PRS-/);
  });
});
