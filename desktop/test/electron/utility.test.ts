import { describe, expect, it } from 'vitest';
import type { CommandResult, Snapshot, TerminalCore } from '../../src/api/contract';
import { parseCommand } from '../../src/api/contract';
import type { ShellInfo } from '../../src/core/attest/types';
import { CoreBridge } from '../../src/main/core-bridge';
import { createIpcHandlers } from '../../src/main/ipc';
import type { SenderCheck } from '../../src/main/security';
import type { ElectronShell } from '../../src/utility/protocol';
import {
  runCoreProcess,
  type CreateTerminalCoreOptions,
  type ParentPortLike,
} from '../../src/utility/runner';
import { flush, padSnapshot, snapshot } from './fixtures';

const shell: ElectronShell = {
  kind: 'electron',
  build: 'development',
  version: '0.1.0',
  packaged: false,
  appPath: '/src/desktop/dist',
  devtoolsOpen: false,
};

/** A core that records what it is asked and lets the test push snapshots. */
class FakeCore implements TerminalCore {
  readonly handled: unknown[] = [];
  closed = false;
  private readonly subs = new Set<(s: Snapshot) => void>();
  constructor(readonly opts: CreateTerminalCoreOptions) {}
  handle(input: unknown): Promise<CommandResult> {
    this.handled.push(input);
    const p = parseCommand(input);
    return Promise.resolve(p.ok ? { ok: true } : { ok: false, code: p.code, detail: p.detail });
  }
  subscribe(cb: (s: Snapshot) => void): () => void {
    this.subs.add(cb);
    return () => this.subs.delete(cb);
  }
  push(s: Snapshot): void {
    for (const cb of this.subs) cb(s);
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

class FakePort implements ParentPortLike {
  readonly out: unknown[] = [];
  private listener: ((e: { data: unknown }) => void) | undefined;
  on(_event: 'message', listener: (e: { data: unknown }) => void): void {
    this.listener = listener;
  }
  postMessage(message: unknown): void {
    this.out.push(structuredClone(message));
  }
  deliver(data: unknown): void {
    this.listener?.({ data: structuredClone(data) });
  }
}

describe('runCoreProcess (the utility side)', () => {
  function setup(fail = false) {
    const port = new FakePort();
    const cores: FakeCore[] = [];
    const exits: number[] = [];
    const run = runCoreProcess({
      port,
      createCore: async (opts) => {
        await Promise.resolve();
        if (fail)
          throw Object.assign(new Error('/home/x/secret path'), { code: 'POS_ERR_DESKTOP_KEYSTORE_CORRUPT' });
        const c = new FakeCore(opts);
        cores.push(c);
        return c;
      },
      exit: (c) => exits.push(c),
    });
    return { port, cores, exits, run };
  }

  it('starts the core on init with the data dir and the shell, forwards snapshots, answers commands', async () => {
    const { port, cores } = setup();
    port.deliver({ t: 'invoke', id: 1, command: { cmd: 'attest.now' } });
    port.deliver({ t: 'init', dataDir: '/data', shell });
    await flush();
    const core = cores[0];
    expect(core?.opts.dataDir).toBe('/data');
    const seen: ShellInfo | undefined = core?.opts.shell();
    expect(seen).toEqual({
      kind: 'electron',
      build: 'development',
      version: '0.1.0',
      packaged: false,
      appPath: '/src/desktop/dist',
      devtoolsOpen: false,
    });
    expect(seen !== undefined && 'asarPath' in seen).toBe(false);
    core?.push(padSnapshot(1));
    port.deliver({ t: 'invoke', id: 2, command: { cmd: 'pin.key', position: 3 } });
    port.deliver({ t: 'shell', shell: { ...shell, devtoolsOpen: true } });
    await flush();
    expect(core?.opts.shell().devtoolsOpen).toBe(true);
    expect(port.out).toEqual([
      {
        t: 'result',
        id: 1,
        result: {
          ok: false,
          code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
          detail: 'The terminal core is not running yet.',
        },
      },
      { t: 'ready' },
      { t: 'snapshot', snapshot: padSnapshot(1) },
      { t: 'result', id: 2, result: { ok: true } },
    ]);
    expect(core?.handled).toEqual([{ cmd: 'pin.key', position: 3 }]);
  });

  it('passes the pairing from init to the core (enrollment from the UI), and none when init has none', async () => {
    const pairing = {
      reader: { transport: 'serial' as const, path: '/dev/ttyUSB0' },
      readerSerial: 'SIM-0001',
      readerCaRoots: ['MIIBdGVzdA'],
    };
    const { port, cores } = setup();
    port.deliver({ t: 'init', dataDir: '/data', shell, pairing });
    await flush();
    expect(cores[0]?.opts.pairing).toEqual(pairing);
    const other = setup();
    other.port.deliver({ t: 'init', dataDir: '/data', shell });
    await flush();
    expect(other.cores[0]?.opts.pairing).toBeUndefined();
    const bad = setup();
    bad.port.deliver({
      t: 'init',
      dataDir: '/data',
      shell,
      pairing: { ...pairing, readerCaRoots: ['not base64url!'] },
    });
    await flush();
    expect(bad.cores).toHaveLength(0);
  });

  it('drops messages from main that do not parse (a command outside the contract never reaches the core)', async () => {
    const { port, cores } = setup();
    port.deliver({ t: 'init', dataDir: '/data', shell });
    await flush();
    port.deliver({ t: 'invoke', id: 3, command: { cmd: 'pin.key', digit: 7 } });
    port.deliver({ t: 'invoke', id: 4, command: { cmd: 'shell.exec', line: 'rm -rf /' } });
    port.deliver({ t: 'init', dataDir: '/other', shell: { ...shell, kind: 'browser' } });
    port.deliver(null);
    await flush();
    expect(cores[0]?.handled).toEqual([]);
    expect(cores).toHaveLength(1);
    const notices = port.out.filter((m) => (m as { t: string }).t === 'notice');
    expect(notices).toHaveLength(4);
    expect(JSON.stringify(notices)).not.toContain('rm -rf');
  });

  it('a coded start error forwards its code and detail (never the message)', async () => {
    const port = new FakePort();
    const exits: number[] = [];
    runCoreProcess({
      port,
      createCore: () =>
        Promise.reject(
          Object.assign(new Error('POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS: /home/m/.config/x'), {
            code: 'POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS',
            detail: 'The key file is readable by others.',
          }),
        ),
      exit: (c) => exits.push(c),
    });
    port.deliver({ t: 'init', dataDir: '/data', shell });
    await flush();
    expect(port.out).toEqual([
      {
        t: 'fatal',
        code: 'POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS',
        detail: 'The key file is readable by others.',
      },
    ]);
    expect(exits).toEqual([1]);
  });

  it('a core that cannot start: fatal with its code (not its message), exit 1', async () => {
    const { port, exits } = setup(true);
    port.deliver({ t: 'init', dataDir: '/data', shell });
    await flush();
    expect(port.out).toEqual([
      { t: 'fatal', code: 'POS_ERR_DESKTOP_KEYSTORE_CORRUPT', detail: 'The terminal core could not start.' },
    ]);
    expect(exits).toEqual([1]);
  });

  it('close: closes the core, says closed, exits 0', async () => {
    const { port, cores, exits, run } = setup();
    port.deliver({ t: 'init', dataDir: '/data', shell });
    await flush();
    port.deliver({ t: 'close' });
    await run.settled;
    expect(cores[0]?.closed).toBe(true);
    expect(port.out.at(-1)).toEqual({ t: 'closed' });
    expect(exits).toEqual([0]);
  });
});

describe('main ↔ utility process end to end (in one process, messages cloned)', () => {
  it('a command from the renderer reaches the core only from the right sender and in the contract shape', async () => {
    const port = new FakePort();
    let core: FakeCore | undefined;
    runCoreProcess({
      port,
      createCore: (opts) => Promise.resolve((core = new FakeCore(opts))),
      exit: () => undefined,
    });
    const shown: Snapshot[] = [];
    const bridge = new CoreBridge({
      spawn: () => {
        let toMain: ((m: unknown) => void) | undefined;
        const origPost = port.postMessage.bind(port);
        port.postMessage = (m) => {
          origPost(m);
          toMain?.(structuredClone(m));
        };
        return {
          post: (m) => port.deliver(m),
          onMessage: (l) => (toMain = l),
          onExit: () => undefined,
          kill: () => undefined,
        };
      },
      init: () => ({ dataDir: '/data', shell }),
      onSnapshot: (s) => shown.push(s),
      log: () => undefined,
    });
    bridge.start();
    await flush();
    expect(bridge.ready).toBe(true);
    const trusted = { ok: true } as const satisfies SenderCheck;
    const handlers = createIpcHandlers<{ trusted: boolean }>({
      checkSender: (e) =>
        e.trusted ? trusted : { ok: false, code: 'POS_ERR_DESKTOP_API_SENDER', detail: 'not the window' },
      invoke: (c) => bridge.invoke(c),
      latest: () => bridge.latest(),
      log: () => undefined,
    });
    expect(
      await handlers.invoke({ trusted: true }, { cmd: 'sale.start', amountMinor: 100, currency: 'EUR' }),
    ).toEqual({
      ok: true,
    });
    expect(await handlers.invoke({ trusted: false }, { cmd: 'sale.cancel' })).toMatchObject({
      code: 'POS_ERR_DESKTOP_API_SENDER',
    });
    expect(
      await handlers.invoke({ trusted: true }, { cmd: 'sale.start', amountMinor: -1, currency: 'EUR' }),
    ).toMatchObject({
      code: 'POS_ERR_DESKTOP_API_INVALID',
    });
    expect(core?.handled).toEqual([{ cmd: 'sale.start', amountMinor: 100, currency: 'EUR' }]);
    core?.push(snapshot({ seq: 0 }));
    await flush();
    expect(shown).toHaveLength(1);
    expect(handlers.snapshot({ trusted: true })).toEqual(shown[0]);
    expect(handlers.snapshot({ trusted: false })).toBeNull();
    expect(handlers.refusals()).toEqual({ sender: 2, invalid: 1 });
  });
});
