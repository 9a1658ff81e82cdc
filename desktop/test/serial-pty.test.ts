/**
 * The serial reader driver for real: serialport on one end of a socat pseudo-terminal pair, the reader
 * simulator (`pos-reader-sim`, a separate process) on the other. The handshake runs, then the
 * simulator is killed (SIGKILL: the reader "unplugged"; the pty stays, as a USB-serial bridge would, so
 * the liveness probe is what notices), the user is told, and when a new simulator process serves the
 * same line the connection comes back by itself. Then socat itself goes (the port disappears) and
 * comes back. Same socat approach as device-sim's pty tests, with `link=` names so the path is stable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ReaderConnection } from '../src/core/reader/connection';
import {
  findSerialPort,
  parseUsbId,
  SerialReaderDriver,
  type SerialBackend,
} from '../src/core/reader/serial';
import { tempDir, testTerminal, until } from './support';

const SOCAT = '/usr/bin/socat';
const HAVE_SOCAT = existsSync(SOCAT);
if (!HAVE_SOCAT)
  console.log('skipping the pseudo-terminal tests: /usr/bin/socat is not installed (apt-get install socat)');

const SIM_BIN = fileURLToPath(new URL('../../device-sim/bin/pos-reader-sim.js', import.meta.url));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const stopChild = (c: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> =>
  new Promise((res) => {
    if (c.exitCode !== null || c.signalCode !== null) {
      res();
      return;
    }
    c.once('exit', () => res());
    c.kill(signal);
  });

/** socat with two named pty ends; resolves once both links exist. */
async function startSocat(dir: string): Promise<ChildProcess> {
  const child = spawn(
    SOCAT,
    [
      '-d',
      '-d',
      `pty,raw,echo=0,link=${join(dir, 'reader')}`,
      `pty,raw,echo=0,link=${join(dir, 'terminal')}`,
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  cleanups.push(() => stopChild(child));
  await until(() => existsSync(join(dir, 'reader')) && existsSync(join(dir, 'terminal')), 'socat ptys');
  return child;
}

/** `pos-reader-sim` serving the reader end; resolves with the process and its ready line. */
async function startSim(stateDir: string, path: string, jwksFile: string) {
  const child = spawn(
    process.execPath,
    [SIM_BIN, '--state-dir', stateDir, '--serial-path', path, '--trust-jwks', jwksFile],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  cleanups.push(() => stopChild(child));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const ready = await new Promise<{ serial: string }>((resolve, reject) => {
    lines.once('line', (l) => resolve(JSON.parse(l) as { serial: string }));
    child.once('exit', (code) => reject(new Error(`pos-reader-sim exited (${code})`)));
  });
  return { child, ready };
}

function pemToDer(pem: string): Uint8Array {
  const b64 = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

describe('serial port discovery', () => {
  it('parses USB ids as SerialPort.list() reports them and picks the matching port', async () => {
    expect([parseUsbId('1a86'), parseUsbId('0x1A86'), parseUsbId('zz'), parseUsbId(undefined)]).toEqual([
      0x1a86,
      0x1a86,
      undefined,
      undefined,
    ]);
    const ports = [
      { path: '/dev/ttyUSB1', vendorId: '1209', productId: '7050' },
      { path: '/dev/ttyS0' },
      { path: '/dev/ttyUSB0', vendorId: '1209', productId: '7050' },
      { path: '/dev/ttyACM0', vendorId: '2341', productId: '0043' },
    ];
    expect(findSerialPort(ports, { vendorId: 0x1209, productId: 0x7050 })?.path).toBe('/dev/ttyUSB0');
    const opened: string[] = [];
    const backend: SerialBackend = {
      list: () => Promise.resolve(ports),
      open: (path) => {
        opened.push(path);
        return Promise.resolve({ ok: false, code: 'POS_ERR_DESKTOP_READER_OPEN', detail: 'busy' });
      },
    };
    const found = await new SerialReaderDriver({
      target: { usb: { vendorId: 0x2341, productId: 0x43 } },
      backend,
    }).open();
    expect(found).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_READER_OPEN' });
    expect(opened).toEqual(['/dev/ttyACM0']);
    const none = await new SerialReaderDriver({
      target: { usb: { vendorId: 1, productId: 2 } },
      backend,
    }).open();
    expect(none).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_READER_NOT_FOUND' });
  });

  it('answers NOT_FOUND for an explicit path that does not exist', async () => {
    const r = await new SerialReaderDriver({ target: { path: '/dev/pos-no-such-port' } }).open();
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_READER_NOT_FOUND' });
  });
});

describe.skipIf(!HAVE_SOCAT)('serial reader link over a real pseudo-terminal', () => {
  it('connects, notices the simulator killed, and recovers when a reader serves the line again', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const term = testTerminal();
    const jwksFile = join(t.dir, 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify(term.am.jwks));
    const stateDir = join(t.dir, 'state');
    const socat = await startSocat(t.dir);
    const sim1 = await startSim(stateDir, join(t.dir, 'reader'), jwksFile);
    const ca = pemToDer(readFileSync(join(stateDir, 'manufacturer-ca', 'ca.pem'), 'utf8'));

    const conn = new ReaderConnection({
      driver: new SerialReaderDriver({ target: { path: join(t.dir, 'terminal') } }),
      handshake: term.handshake(ca, sim1.ready.serial),
      backoff: { initialMs: 50, maxMs: 400, jitter: 0.3 },
      heartbeatMs: 300,
      heartbeatTimeoutMs: 2500,
    });
    cleanups.push(() => conn.close());
    const events: string[] = [];
    const messages: string[] = [];
    conn.on('reader-lost', (e) => {
      events.push('lost');
      messages.push(e.message);
    });
    conn.on('reader-back', (e) => {
      events.push('back');
      messages.push(e.message);
    });
    conn.start();
    const s1 = await conn.whenConnected();
    const st = await s1.request({ t: 'get-status', id: s1.newId() }, 5000);
    expect(st.ok && st.message.t).toBe('status');

    // Unplug: the reader process dies; the line stays (socat), so the liveness probe notices.
    await stopChild(sim1.child, 'SIGKILL');
    await until(() => events.includes('lost'), 'reader-lost after SIGKILL', 2000);
    expect(conn.session).toBeUndefined();
    expect(messages[0]).toMatch(/^The card reader was disconnected \(.+\)\. Reconnecting…$/);

    // Plugged back: the same reader (same state) serves the line again.
    const sim2 = await startSim(stateDir, join(t.dir, 'reader'), jwksFile);
    expect(sim2.ready.serial).toBe(sim1.ready.serial);
    await until(() => conn.state === 'connected', 'reconnected', 2000);
    expect(events).toEqual(['lost', 'back']);
    expect(messages[1]).toBe('The card reader is connected again.');
    const s2 = await conn.whenConnected();
    expect(s2).not.toBe(s1);
    const st2 = await s2.request({ t: 'get-status', id: s2.newId() }, 5000);
    expect(st2.ok && st2.message.t).toBe('status');

    // The port itself goes away (socat and reader gone), then comes back under the same name.
    await stopChild(sim2.child, 'SIGKILL');
    await stopChild(socat);
    await until(() => events.length === 3, 'reader-lost after the port went', 2000);
    await startSocat(t.dir);
    await startSim(stateDir, join(t.dir, 'reader'), jwksFile);
    await until(() => conn.state === 'connected', 'reconnected on the new port', 2000);
    expect(events).toEqual(['lost', 'back', 'lost', 'back']);
  });
});
