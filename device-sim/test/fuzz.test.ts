/**
 * Property tests for what the reader parses from outside: link messages (any bytes, any decoded
 * message in the wrong place), state files (any content), control API bodies (any JSON). The link
 * test serves in-process memory links in place of the serial line (the simulator starts on its pty).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMemoryLinkPair, decodeMessage, encodeMessage, type ReaderMessage } from '@pos/shared';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlServer, type ControlServer } from '../src/cli/control';
import { Simulator } from '../src/sim';
import { socatAvailable } from '../src/transport/serial';
import { openReaderState } from '../src/state/store';
import { connectMemoryTerminal, makeTestAm, tempStateDir, type TestAm } from './support';

if (!socatAvailable()) console.log('skipping the link fuzz test: /usr/bin/socat is not installed');

describe.skipIf(!socatAvailable())('the reader survives any message on its link', () => {
  let sim: Simulator;
  let am: TestAm;
  const t = tempStateDir();
  beforeAll(async () => {
    am = await makeTestAm();
    const started = await Simulator.start({ stateDir: t.dir });
    if (!started.ok) throw new Error(started.code);
    sim = started.sim;
    sim.fw.trust(am.jwks);
  });
  afterAll(async () => {
    await sim.stop();
    t.cleanup();
  });

  const anyMessage: fc.Arbitrary<ReaderMessage> = fc.oneof(
    fc.record({
      t: fc.constant('offer' as const),
      id: fc.integer({ min: 1, max: 9 }),
      versions: fc.array(fc.integer({ min: 1, max: 255 }), { minLength: 1, maxLength: 8 }),
    }),
    fc.record({
      t: fc.constant('rec' as const),
      n: fc.nat(5),
      ct: fc.uint8Array({ minLength: 17, maxLength: 80 }),
    }),
    fc.record({
      t: fc.constant('start' as const),
      id: fc.integer({ min: 1, max: 9 }),
      amount: fc.integer({ min: 1, max: 10 ** 6 }),
      currency: fc.constant('EUR'),
    }),
    fc.record({
      t: fc.constant('hello' as const),
      id: fc.integer({ min: 1, max: 9 }),
      epk: fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => Uint8Array.of(4, ...b)),
      nonce: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    }),
    fc.record({
      t: fc.constant('renew' as const),
      id: fc.integer({ min: 1, max: 9 }),
      jws: fc.string({ minLength: 1, maxLength: 200 }),
    }),
    fc.record({
      t: fc.constant('error' as const),
      id: fc.constant(0),
      code: fc.constant('POS_ERR_X'),
      detail: fc.string({ maxLength: 20 }),
    }),
  );

  it('never throws or stops serving, whatever bytes or messages arrive', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 300 }),
            anyMessage.map((m) => encodeMessage(m)),
          ),
          { maxLength: 12 },
        ),
        async (inputs) => {
          const [terminalEnd, readerEnd] = createMemoryLinkPair();
          sim.attachLink(readerEnd);
          for (const bytes of inputs) terminalEnd.send(bytes);
          await new Promise((res) => setTimeout(res, 5));
          terminalEnd.close();
        },
      ),
      { numRuns: 60 },
    );
    // Still serving: a real handshake and a request work on a fresh link.
    const { term } = await connectMemoryTerminal(sim, (c) => am.sign(c));
    const status = await term.request({ t: 'get-status', id: term.newId() });
    expect(status.ok).toBe(true);
    expect(sim.fw.tampered).toBe(false);
  });
});

describe.skipIf(!socatAvailable())('messages in the clear', () => {
  it('refuses a PIN or a start outside the channel with a code', async () => {
    const t = tempStateDir();
    const started = await Simulator.start({ stateDir: t.dir });
    if (!started.ok) throw new Error(started.code);
    const sim = started.sim;
    try {
      const [terminalEnd, readerEnd] = createMemoryLinkPair();
      sim.attachLink(readerEnd);
      const got: Uint8Array[] = [];
      terminalEnd.on('message', (b) => got.push(b));
      terminalEnd.send(encodeMessage({ t: 'pin', id: 7, digits: new Uint8Array([1, 2, 3, 4]) }));
      terminalEnd.send(encodeMessage({ t: 'start', id: 8, amount: 1, currency: 'EUR' }));
      await new Promise((res) => setTimeout(res, 20));
      const answers = got.map((b) => decodeMessage(b)).map((r) => (r.ok ? r.message : undefined));
      expect(answers).toEqual([
        expect.objectContaining({ t: 'error', id: 7, code: 'POS_ERR_READER_UNEXPECTED' }),
        expect.objectContaining({ t: 'error', id: 8, code: 'POS_ERR_READER_UNEXPECTED' }),
      ]);
      expect(sim.fw.txnState).toBe('idle');
    } finally {
      await sim.stop();
      t.cleanup();
    }
  });
});

describe('state files', () => {
  it('any content in any state file is a coded error or a valid state, never a throw', async () => {
    const t = tempStateDir();
    const first = await openReaderState(t.dir);
    expect(first.ok).toBe(true);
    const files = [
      'identity.json',
      'dukpt.json',
      'trust.json',
      'device.json',
      'tamper.json',
      'status-seq.json',
      'reader.pem',
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...files),
        fc.oneof(fc.string(), fc.json(), fc.uint8Array()),
        async (name, content) => {
          const t2 = tempStateDir();
          try {
            const made = await openReaderState(t2.dir);
            expect(made.ok).toBe(true);
            writeFileSync(join(t2.dir, name), content);
            const r = await openReaderState(t2.dir);
            if (!r.ok) expect(r.code).toMatch(/^POS_ERR_SIM_STATE_(CORRUPT|DIR|MISSING)$/);
          } finally {
            t2.cleanup();
          }
        },
      ),
      { numRuns: 25 },
    );
    t.cleanup();
  });
});

describe('control API bodies', () => {
  let server: ControlServer;
  beforeAll(async () => {
    server = await startControlServer(
      {
        status: () => ({}),
        card: () => ({ ok: true }),
        tamper: () => ({ ok: true }),
        fault: () => ({ ok: true }),
      },
      '127.0.0.1',
      0,
    );
  });
  afterAll(() => server.close());

  it('answers any body with 200 or a coded 4xx, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/card', '/tamper', '/fault', '/x'),
        fc.oneof(fc.string(), fc.json()),
        async (path, body) => {
          const res = await fetch(`${server.url}${path}`, {
            method: 'POST',
            body,
            headers: { 'content-type': 'application/json' },
          });
          expect(res.status).toBeLessThan(500);
          const json = (await res.json()) as { error?: { code?: string } };
          if (res.status !== 200) expect(json.error?.code).toMatch(/^POS_ERR_SIM_/);
        },
      ),
      { numRuns: 80 },
    );
  });
});
