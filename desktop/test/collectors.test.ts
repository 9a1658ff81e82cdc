/**
 * The attestation collectors on fixtures (an in-memory filesystem and process), each checked for what
 * makes it ok, fail and unknown, and its method; then the mapping into evidence claims, checked against
 * shared's schema and the back-end's own runtime and environment verifiers; then one run on this
 * machine with the real filesystem and process.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  EvidenceClaimsSchema,
  MEASUREMENT_NAMES,
  parseEvidence,
  signEvidence,
  type EvidenceClaims,
} from '@pos/shared';
import {
  environmentVerifier,
  runtimeVerifier,
  RUNTIME_SIGNALS,
  ENVIRONMENT_SIGNALS,
} from '@pos/backend/attestation/verifiers';
import type { VerifierContext } from '@pos/backend/attestation/types';
import { describe, expect, it } from 'vitest';
import {
  appCodeHash,
  debuggerFlags,
  devtoolsOpen,
  electronFuses,
  executableHash,
  inspectorActive,
  nodeOptions,
  osInfo,
  remoteSession,
  runAsNode,
  screenCaptureProtection,
  secureBoot,
  suspiciousEnv,
  tpmPresence,
  virtualMachine,
} from '../src/core/attest/collectors';
import { FUSE_SENTINEL } from '../src/core/attest/collectors/fuses';
import { SECURE_BOOT_VAR } from '../src/core/attest/collectors/environment';
import { collectAll, evidenceClaims } from '../src/core/attest/evidence';
import { nodeAttestFs, nodeAttestProcess } from '../src/core/attest/node-host';
import type { CollectContext } from '../src/core/attest/types';
import { electronShell, fakeProcess, headlessShell, memFs, type FsEntry } from './attest-fixtures';
import { testTerminal } from './support';

const sha256 = (b: string | Uint8Array): string => createHash('sha256').update(b).digest('hex');
const ctx = (
  files: Record<string, FsEntry> = {},
  over: Partial<CollectContext> = {},
  chunk?: number,
): CollectContext => ({
  fs: memFs(files, chunk),
  proc: fakeProcess(),
  shell: headlessShell(),
  ...over,
});

describe('app code hash', () => {
  const tree = { '/app/main.js': 'console.log(1)\n', '/app/lib/a.js': 'export const a = 1;\n' };

  it('hashes the directory as a sorted sha256sum manifest', async () => {
    const r = await appCodeHash(ctx(tree));
    const manifest = `${sha256(tree['/app/lib/a.js'])}  lib/a.js\n${sha256(tree['/app/main.js'])}  main.js\n`;
    expect(r).toEqual({ status: 'ok', method: 'sha256:tree', value: sha256(manifest) });
  });

  it('changes with a changed byte, an added file, a rename or a symlink', async () => {
    const base = (await appCodeHash(ctx(tree))).value;
    const variants: Record<string, FsEntry>[] = [
      { ...tree, '/app/main.js': 'console.log(2)\n' },
      { ...tree, '/app/extra.js': '' },
      { '/app/main2.js': tree['/app/main.js'], '/app/lib/a.js': tree['/app/lib/a.js'] },
      { ...tree, '/app/lib/link': { symlink: true } },
    ];
    const hashes = await Promise.all(variants.map(async (v) => (await appCodeHash(ctx(v))).value));
    expect(new Set([base, ...hashes]).size).toBe(5);
  });

  it('is unknown when a file or the directory cannot be read', async () => {
    expect(await appCodeHash(ctx({ ...tree, '/app/bad.js': { unreadable: true } }))).toMatchObject({
      status: 'unknown',
      method: 'sha256:tree',
    });
    expect(await appCodeHash(ctx({}))).toMatchObject({ status: 'unknown' });
  });

  it('packaged: hashes the asar file; packaged without one is a failure', async () => {
    const asar = new Uint8Array(3000).map((_, i) => i % 251);
    const shell = electronShell();
    expect(await appCodeHash(ctx({ [shell.asarPath ?? '']: asar }, { shell }, 1000))).toEqual({
      status: 'ok',
      method: 'sha256:asar',
      value: sha256(asar),
    });
    const { asarPath: _, ...noAsar } = shell;
    expect(await appCodeHash(ctx({}, { shell: noAsar }))).toMatchObject({ status: 'fail' });
  });
});

describe('Electron fuse wire', () => {
  const exe = (wire: Uint8Array, version = 1, len = wire.length): Uint8Array => {
    const junk = new Uint8Array(1000).fill(0x41);
    const out = new Uint8Array(junk.length + FUSE_SENTINEL.length + 2 + wire.length + 50);
    out.set(junk);
    out.set(FUSE_SENTINEL, junk.length);
    out[junk.length + FUSE_SENTINEL.length] = version;
    out[junk.length + FUSE_SENTINEL.length + 1] = len;
    out.set(wire, junk.length + FUSE_SENTINEL.length + 2);
    return out;
  };
  const shell = electronShell();
  const proc = fakeProcess();

  it('reads the wire after the sentinel, also when chunks split the sentinel and the wire', async () => {
    const bin = exe(new TextEncoder().encode('01r10'));
    for (const chunk of [7, 13, 1009, 1 << 20]) {
      expect(await electronFuses(ctx({ [proc.execPath]: bin }, { shell, proc }, chunk))).toEqual({
        status: 'ok',
        method: 'electron-fuses:executable',
        value: '1:01r10',
      });
    }
    const odd = exe(new Uint8Array([0x31, 0x90]));
    expect((await electronFuses(ctx({ [proc.execPath]: odd }, { shell, proc }))).value).toBe('1:1?');
  });

  it('fails without a sentinel or with a cut-short wire; unknown when not packaged or unreadable', async () => {
    expect(
      await electronFuses(ctx({ [proc.execPath]: new Uint8Array(5000) }, { shell, proc })),
    ).toMatchObject({
      status: 'fail',
    });
    const cut = exe(new TextEncoder().encode('0101'), 1, 200).subarray(0, 1000 + FUSE_SENTINEL.length + 4);
    expect(await electronFuses(ctx({ [proc.execPath]: cut }, { shell, proc }))).toMatchObject({
      status: 'fail',
    });
    expect(await electronFuses(ctx({}, { shell, proc }))).toMatchObject({ status: 'unknown' });
    expect(
      await electronFuses(ctx({ [proc.execPath]: exe(new Uint8Array([0x31])) }, { proc })),
    ).toMatchObject({
      status: 'unknown',
      value: 'not a packaged Electron app',
    });
  });
});

describe('executable hash', () => {
  it('is the SHA-256 of process.execPath, unknown when unreadable', async () => {
    const proc = fakeProcess();
    const bin = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
    expect(await executableHash(ctx({ [proc.execPath]: bin }, { proc }, 100))).toEqual({
      status: 'ok',
      method: 'sha256:execPath',
      value: sha256(bin),
    });
    expect(await executableHash(ctx({}, { proc }))).toMatchObject({ status: 'unknown' });
  });
});

describe('runtime signals', () => {
  const withProc = (over: Parameters<typeof fakeProcess>[0]) => ctx({}, { proc: fakeProcess(over) });

  it('debugger: --inspect* / --debug* in execArgv', async () => {
    expect(await debuggerFlags(withProc({}))).toEqual({ status: 'ok', method: 'process.execArgv' });
    for (const a of ['--inspect', '--inspect-brk=0.0.0.0:9229', '--inspect-port=1', '--debug'])
      expect(await debuggerFlags(withProc({ execArgv: ['--max-old-space-size=64', a] }))).toMatchObject({
        status: 'fail',
        value: a.split('=')[0],
      });
  });

  it('inspector: node:inspector url() defined means listening', async () => {
    expect(await inspectorActive(withProc({}))).toMatchObject({ status: 'ok', method: 'node:inspector.url' });
    const r = await inspectorActive(withProc({ inspectorUrl: () => 'ws://127.0.0.1:9229/abc' }));
    expect(r).toEqual({ status: 'fail', method: 'node:inspector.url', value: 'listening' });
  });

  it('suspicious execArgv and injection variables, named without their values', async () => {
    expect(await suspiciousEnv(withProc({ execArgv: ['--max-old-space-size=64'] }))).toMatchObject({
      status: 'ok',
    });
    const r = await suspiciousEnv(
      withProc({
        execArgv: ['--require', '/tmp/hook.js', '--import=/tmp/x.mjs'],
        env: { LD_PRELOAD: '/tmp/evil.so' },
      }),
    );
    expect(r).toEqual({
      status: 'fail',
      method: 'process.execArgv+env',
      value: '--require --import LD_PRELOAD',
    });
  });

  it("the Electron main process's debugging switches, as the shell reports them, fail suspicious-env (review 2, H1)", async () => {
    const electron = { ...headlessShell(), kind: 'electron' as const };
    expect(await suspiciousEnv(ctx({}, { shell: electron }))).toMatchObject({ status: 'ok' });
    const r = await suspiciousEnv(
      ctx({}, { shell: { ...electron, mainSwitches: ['remote-debugging-port'] } }),
    );
    expect(r).toEqual({ status: 'fail', method: 'process.execArgv+env', value: '--remote-debugging-port' });
  });

  it('NODE_OPTIONS and ELECTRON_RUN_AS_NODE: set is a failure; the content is never reported', async () => {
    expect(await nodeOptions(withProc({ env: { NODE_OPTIONS: '  ' } }))).toMatchObject({ status: 'ok' });
    const r = await nodeOptions(withProc({ env: { NODE_OPTIONS: '--require /secret/path.js' } }));
    expect(r).toEqual({ status: 'fail', method: 'env:NODE_OPTIONS', value: 'set' });
    expect(await runAsNode(withProc({}))).toMatchObject({ status: 'ok' });
    expect(await runAsNode(withProc({ env: { ELECTRON_RUN_AS_NODE: '' } }))).toMatchObject({
      status: 'fail',
    });
  });

  it('devtools and screen-capture protection come from the shell; headless has no window, so neither', async () => {
    expect(await devtoolsOpen(ctx())).toEqual({ status: 'ok', method: 'headless:no-window' });
    expect(await screenCaptureProtection(ctx())).toEqual({ status: 'ok', method: 'headless:no-window' });
    const { contentProtection: _cp, ...noProtectionReport } = electronShell();
    expect(await screenCaptureProtection(ctx({}, { shell: noProtectionReport }))).toMatchObject({
      status: 'unknown',
    });
    expect(await devtoolsOpen(ctx({}, { shell: electronShell() }))).toMatchObject({ status: 'ok' });
    expect(await devtoolsOpen(ctx({}, { shell: electronShell({ devtoolsOpen: true }) }))).toMatchObject({
      status: 'fail',
    });
    expect(
      await screenCaptureProtection(ctx({}, { shell: electronShell({ contentProtection: false }) })),
    ).toMatchObject({
      status: 'fail',
    });
    const { devtoolsOpen: _, ...unreported } = electronShell();
    expect(await devtoolsOpen(ctx({}, { shell: unreported }))).toMatchObject({ status: 'unknown' });
  });
});

describe('environment signals', () => {
  it('os: platform, release, arch', async () => {
    expect(await osInfo(ctx())).toEqual({ status: 'ok', method: 'node:os', value: 'linux 6.1.0-test x64' });
  });

  it('virtual machine from DMI strings (Linux only)', async () => {
    const qemu = {
      '/sys/class/dmi/id/sys_vendor': 'QEMU\n',
      '/sys/class/dmi/id/product_name': 'Standard PC (Q35 + ICH9, 2009)\n',
    };
    expect(await virtualMachine(ctx(qemu))).toEqual({ status: 'fail', method: 'sysfs:dmi', value: 'qemu' });
    const vbox = {
      '/sys/class/dmi/id/bios_vendor': 'innotek GmbH',
      '/sys/class/dmi/id/product_name': 'VirtualBox',
    };
    expect((await virtualMachine(ctx(vbox))).value).toBe('virtualbox,innotek');
    const dell = {
      '/sys/class/dmi/id/sys_vendor': 'Dell Inc.',
      '/sys/class/dmi/id/product_name': 'OptiPlex 7090',
    };
    expect(await virtualMachine(ctx(dell))).toEqual({ status: 'ok', method: 'sysfs:dmi' });
    expect(await virtualMachine(ctx({}))).toMatchObject({ status: 'unknown' });
    expect(await virtualMachine(ctx(qemu, { proc: fakeProcess({ platform: 'darwin' }) }))).toMatchObject({
      status: 'unknown',
    });
  });

  it('remote session: SSH, forwarded X11, RDP; the value names variables, never addresses', async () => {
    const env = (e: Record<string, string>, platform = 'linux') =>
      ctx({}, { proc: fakeProcess({ env: e, platform }) });
    expect(await remoteSession(env({ DISPLAY: ':0' }))).toEqual({ status: 'ok', method: 'env' });
    const ssh = await remoteSession(
      env({ SSH_CONNECTION: '203.0.113.9 5555 10.0.0.2 22', DISPLAY: 'localhost:10.0' }),
    );
    expect(ssh).toEqual({ status: 'fail', method: 'env', value: 'SSH_CONNECTION DISPLAY' });
    expect(await remoteSession(env({ SESSIONNAME: 'RDP-Tcp#3' }, 'win32'))).toMatchObject({
      status: 'fail',
      value: 'SESSIONNAME',
    });
    expect(await remoteSession(env({ SESSIONNAME: 'Console' }, 'win32'))).toMatchObject({ status: 'ok' });
  });

  it('Secure Boot from the efivars byte', async () => {
    const p = `/sys/firmware/efi/efivars/${SECURE_BOOT_VAR}`;
    expect(await secureBoot(ctx({ [p]: new Uint8Array([6, 0, 0, 0, 1]) }))).toEqual({
      status: 'ok',
      method: 'efivars',
      value: true,
    });
    expect(await secureBoot(ctx({ [p]: new Uint8Array([6, 0, 0, 0, 0]) }))).toMatchObject({ status: 'fail' });
    expect(await secureBoot(ctx({ [p]: new Uint8Array([1]) }))).toMatchObject({ status: 'unknown' });
    expect(await secureBoot(ctx({}))).toMatchObject({ status: 'unknown' });
  });

  it('TPM presence from /dev and /sys/class/tpm', async () => {
    expect(await tpmPresence(ctx({ '/dev/tpmrm0': '' }))).toMatchObject({ status: 'ok', method: 'devfs' });
    expect(await tpmPresence(ctx({ '/sys/class/tpm/tpm0/device': '' }))).toMatchObject({
      status: 'ok',
      method: 'sysfs:tpm',
    });
    expect(await tpmPresence(ctx({ '/sys/class/tpm/.keep': '' }))).toMatchObject({ status: 'fail' });
    expect(await tpmPresence(ctx({}))).toMatchObject({ status: 'unknown' });
  });
});

describe('evidence claims', () => {
  const cleanElectron = (): CollectContext => {
    const shell = electronShell();
    const proc = fakeProcess();
    const bin = new Uint8Array(2048);
    bin.set(FUSE_SENTINEL, 100);
    bin.set([1, 3, 0x31, 0x30, 0x31], 100 + FUSE_SENTINEL.length);
    return ctx(
      {
        [proc.execPath]: bin,
        [shell.asarPath ?? '']: 'asar bytes',
        '/sys/class/dmi/id/sys_vendor': 'LENOVO',
        '/dev/tpm0': '',
      },
      { shell, proc },
    );
  };
  const challenge = 'A'.repeat(43);
  const verifierCtx = (claims: EvidenceClaims) => ({ claims }) as unknown as VerifierContext;

  it('maps every collector into schema-valid claims that sign and parse', async () => {
    const collected = await collectAll(cleanElectron());
    const r = evidenceClaims(collected, {
      iss: 'term-1',
      challenge,
      counter: 7,
      purpose: 'periodic',
      nowMs: 1_800_000_000_123,
    });
    if (!r.ok) throw new Error(r.detail);
    const c = r.claims;
    expect(EvidenceClaimsSchema.safeParse(c).success).toBe(true);
    expect(c).toMatchObject({
      iss: 'term-1',
      iat: 1_800_000_000,
      time: 1_800_000_000_123,
      app: { version: '1.2.3', build: 'release', codeHash: sha256('asar bytes') },
      shell: 'electron',
      os: { platform: 'linux', release: '6.1.0-test', arch: 'x64' },
    });
    const names = c.measurements.map((m) => m.name);
    for (const n of MEASUREMENT_NAMES) expect(names).toContain(n);
    expect(c.measurements.find((m) => m.name === 'fuses')).toMatchObject({ status: 'ok', value: '1:101' });
    const signed = signEvidence(c, testTerminal().secretKey);
    if (!signed.ok) throw new Error(signed.code);
    const parsed = parseEvidence(signed.jws);
    expect(parsed.ok && parsed.claims).toEqual(c);
  });

  it("passes the back-end's runtime and environment verifiers on a clean machine, fails them when tampered", async () => {
    const clean = evidenceClaims(await collectAll(cleanElectron()), {
      iss: 't',
      challenge,
      counter: 1,
      purpose: 'startup',
      nowMs: 0,
    });
    if (!clean.ok) throw new Error(clean.detail);
    expect(runtimeVerifier.verify(verifierCtx(clean.claims))).toEqual({ ok: true });
    expect(environmentVerifier.verify(verifierCtx(clean.claims))).toEqual({ ok: true });
    for (const n of [...RUNTIME_SIGNALS, ...ENVIRONMENT_SIGNALS])
      expect(clean.claims.measurements.some((m) => m.name === n)).toBe(true);

    const base = cleanElectron();
    const tampered = { ...base, proc: fakeProcess({ env: { NODE_OPTIONS: '-r x', SSH_CLIENT: 'x' } }) };
    const bad = evidenceClaims(await collectAll(tampered), {
      iss: 't',
      challenge,
      counter: 2,
      purpose: 'startup',
      nowMs: 0,
    });
    if (!bad.ok) throw new Error(bad.detail);
    expect(runtimeVerifier.verify(verifierCtx(bad.claims))).toMatchObject({
      ok: false,
      code: 'POS_ERR_ATTEST_RUNTIME_TAMPERED',
    });
    expect(environmentVerifier.verify(verifierCtx(bad.claims))).toMatchObject({
      ok: false,
      code: 'POS_ERR_ATTEST_ENVIRONMENT_RISK',
    });
  });

  it('makes no evidence when the code cannot be hashed', async () => {
    const collected = await collectAll(ctx({}));
    expect(
      evidenceClaims(collected, { iss: 't', challenge, counter: 1, purpose: 'startup', nowMs: 0 }),
    ).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_ATTEST_CODE_HASH',
    });
  });

  it('runs on this machine with the real filesystem and process', async () => {
    const appPath = fileURLToPath(new URL('../src', import.meta.url));
    const real: CollectContext = {
      fs: nodeAttestFs(),
      proc: nodeAttestProcess(),
      shell: headlessShell({ appPath }),
    };
    const collected = await collectAll(real);
    const r = evidenceClaims(collected, {
      iss: 't',
      challenge,
      counter: 1,
      purpose: 'startup',
      nowMs: Date.now(),
    });
    if (!r.ok) throw new Error(r.detail);
    expect(r.claims.app.codeHash).toMatch(/^[0-9a-f]{64}$/);
    expect(collected.measurements['executable-hash']).toMatchObject({
      status: 'ok',
      method: 'sha256:execPath',
    });
    expect(collected.measurements.fuses).toMatchObject({ status: 'unknown' });
    console.log(
      'this machine:',
      Object.entries(collected.measurements)
        .map(([n, m]) => `${n}=${m.status}`)
        .join(' '),
    );
  });
});
