/**
 * Two real `pos-backend --database-url ...` processes on one PostgreSQL schema (the deployment of
 * docs/postgres.md): a challenge issued by process 1 is used once across both, evidence counters stay
 * monotonic across both, a halt issued through process 1's operator API holds on process 2 and
 * reaches a terminal holding its push connection (WebSocket) on process 2, and a fleet halt reaches
 * terminals connected to either process, each acknowledgement visible from both.
 * Terminals are the test harness's SimTerminal, speaking HTTP to whichever process the test picks.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startPushClient, type PushClient } from '../src/fleet/push-client';
import type { ServerMessage } from '../src/fleet/push-protocol';
import { httpHarness, ISSUER, seedReferenceValues, SimTerminal, type Harness } from './helpers';
import { describePg, dropSchemas, freshSchemaName, PG_URL } from './pg-helpers';

const BIN = fileURLToPath(new URL('../bin/pos-backend.js', import.meta.url));
const MASTER_KEY = 'Q'.repeat(42) + 'A';

interface Proc {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  readonly dataDir: string;
  readonly stderr: string[];
}

async function start(dataDir: string, schema: string): Promise<Proc> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      '--data-dir',
      dataDir,
      '--port',
      '0',
      '--issuer',
      ISSUER,
      '--dev',
      '--rate-limit',
      '0',
      '--database-url',
      PG_URL,
      '--database-schema',
      schema,
    ],
    {
      env: { ...process.env, DATABASE_URL: undefined, POS_LOG_LEVEL: 'warn', POS_MASTER_KEY: MASTER_KEY },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (l) => {
      try {
        resolve((JSON.parse(l) as { url: string }).url);
      } catch {
        reject(new Error(`unexpected first line: ${l}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${String(code)}: ${stderr.join('\n')}`)));
  });
  return { child, url, dataDir, stderr };
}

async function stop(p: Proc | undefined): Promise<void> {
  if (p === undefined || p.child.exitCode !== null) return;
  const exited = new Promise((resolve) => p.child.once('exit', resolve));
  p.child.kill('SIGTERM');
  await exited;
}

interface AttestOut {
  verdict?: { tier: string; reasons: { code: string }[] };
  ticket?: { jws: string };
  halted?: boolean;
  error?: { code: string };
}

describePg('two pos-backend processes on one PostgreSQL', () => {
  const schema = freshSchemaName('mp');
  const root = mkdtempSync(join(tmpdir(), 'pos-mp-'));
  let p1: Proc | undefined;
  let p2: Proc | undefined;
  let h: Harness;
  /** The process the harness's requests go to. */
  let to: Proc | undefined;

  beforeAll(async () => {
    // One after the other on a new database: the first creates the ticket-signing key and the admin
    // token; the second loads the same key (docs/postgres.md).
    p1 = await start(join(root, 'p1'), schema);
    p2 = await start(join(root, 'p2'), schema);
    const token = readFileSync(join(root, 'p1', 'admin-token'), 'utf8').trim();
    h = httpHarness(() => {
      if (to === undefined) throw new Error('no process selected');
      return to.url;
    }, token);
    to = p1;
    await seedReferenceValues(h);
  }, 60_000);

  afterAll(async () => {
    await stop(p1);
    await stop(p2);
    rmSync(root, { recursive: true, force: true });
    await dropSchemas([schema]);
  });

  it('both processes are ready on the PostgreSQL engine; only the first wrote an admin token', async () => {
    for (const p of [p1, p2]) {
      const ready = (await (await fetch(`${p?.url ?? ''}/readyz`)).json()) as Record<string, unknown>;
      expect(ready).toEqual({ status: 'ready', store: true, keys: true, engine: 'postgres' });
    }
    expect(() => readFileSync(join(root, 'p2', 'admin-token'))).toThrow();
  });

  it('a terminal enrolled through process 1 attests through process 2 and gets a ticket', async () => {
    const t = new SimTerminal(h);
    to = p1;
    const enrolled = await t.enroll();
    expect(enrolled.statusCode).toBe(201);
    to = p2;
    const res = await t.attest();
    const out = res.json<AttestOut>();
    expect(res.statusCode).toBe(200);
    expect(out.halted).toBe(false);
    expect(out.ticket?.jws).toMatch(/^ey/);
  });

  it('a challenge issued by process 1 is used once across both processes', async () => {
    const t = new SimTerminal(h);
    to = p1;
    expect((await t.enroll()).statusCode).toBe(201);
    const challenge = await t.challenge();
    const first = t.evidence(challenge, 'periodic');
    const second = t.evidence(challenge, 'periodic');
    // The later counter goes to process 2 first, so only the challenge can refuse the other one.
    to = p2;
    const a = (await t.submit(second)).json<AttestOut>();
    to = p1;
    const b = (await t.submit(first)).json<AttestOut>();
    expect(a.ticket).toBeDefined();
    expect(b.ticket).toBeUndefined();
    expect(b.verdict?.tier).toBe('contraindicated');
    expect(JSON.stringify(b.verdict?.reasons)).toContain('CHALLENGE_USED');
  });

  it('evidence counters stay monotonic across both processes', async () => {
    const t = new SimTerminal(h);
    to = p1;
    expect((await t.enroll()).statusCode).toBe(201);
    // Counters 2 and 3 made now; 3 is accepted by process 1, then 2 is a replay on process 2.
    const c2 = await t.challenge();
    const e2 = t.evidence(c2, 'periodic');
    const c3 = await t.challenge();
    const e3 = t.evidence(c3, 'periodic');
    expect((await t.submit(e3)).json<AttestOut>().ticket).toBeDefined();
    to = p2;
    const replay = (await t.submit(e2)).json<AttestOut>();
    expect(replay.ticket).toBeUndefined();
    expect(replay.verdict?.tier).toBe('contraindicated');
    const seen = (await h.admin('GET', `/v1/terminals/${t.id}`)).json<{ lastCounter?: number }>();
    expect(seen.lastCounter).toBe(3);
  });

  it('a halt issued through process 1 is enforced by process 2', async () => {
    const t = new SimTerminal(h);
    to = p1;
    expect((await t.enroll()).statusCode).toBe(201);
    to = p2;
    expect((await t.attest()).json<AttestOut>().ticket).toBeDefined();
    to = p1;
    const halt = await h.admin('POST', '/v1/halts', { scope: 'terminal', target: t.id, reason: 'mp test' });
    expect(halt.statusCode).toBe(201);
    to = p2;
    const after = (await t.attest()).json<AttestOut>();
    expect(after.ticket).toBeUndefined();
    expect(after.halted).toBe(true);
  });

  /** A push connection for `t` held by process `p`; records what it receives. */
  function connectPush(t: SimTerminal, p: Proc | undefined): { client: PushClient; got: ServerMessage[] } {
    const got: ServerMessage[] = [];
    const client = startPushClient({
      url: `${(p?.url ?? '').replace(/^http/, 'ws')}/v1/push`,
      proof: () => t.proof('GET', '/v1/push', ''),
      onMessage: (m) => got.push(m),
      reconnect: false,
    });
    clients.push(client);
    return { client, got };
  }
  const clients: PushClient[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
  });

  it('a halt issued through process 1 reaches a terminal whose push connection is on process 2', async () => {
    const t = new SimTerminal(h);
    to = p1;
    expect((await t.enroll()).statusCode).toBe(201);
    const push = connectPush(t, p2);
    await vi.waitFor(() => expect(push.client.isOpen()).toBe(true), { timeout: 10_000 });
    const halt = await h.admin('POST', '/v1/halts', { scope: 'terminal', target: t.id, reason: 'push mp' });
    expect(halt.statusCode).toBe(201);
    const haltId = halt.json<{ haltId: string }>().haltId;
    await vi.waitFor(() => expect(push.got.map((m) => [m.type, m.haltId])).toEqual([['halt', haltId]]), {
      timeout: 10_000,
    });
    // The acknowledgement, received by process 2, is visible through process 1's operator API.
    await vi.waitFor(
      async () => {
        const seen = (await h.admin('GET', `/v1/halts/${haltId}`)).json<{ acknowledged: number }>();
        expect(seen.acknowledged).toBe(1);
      },
      { timeout: 10_000 },
    );
  });

  it('a fleet halt through process 1 reaches terminals connected to either process', async () => {
    to = p1;
    const a = new SimTerminal(h);
    const b = new SimTerminal(h);
    expect((await a.enroll()).statusCode).toBe(201);
    expect((await b.enroll()).statusCode).toBe(201);
    const onP1 = connectPush(a, p1);
    const onP2 = connectPush(b, p2);
    await vi.waitFor(() => expect(onP1.client.isOpen() && onP2.client.isOpen()).toBe(true), {
      timeout: 10_000,
    });
    const halt = await h.admin('POST', '/v1/halts', { scope: 'fleet', reason: 'fleet mp' });
    expect(halt.statusCode).toBe(201);
    const haltId = halt.json<{ haltId: string }>().haltId;
    for (const got of [onP1.got, onP2.got]) {
      await vi.waitFor(() => expect(got.some((m) => m.type === 'halt' && m.haltId === haltId)).toBe(true), {
        timeout: 10_000,
      });
    }
    to = p2;
    await vi.waitFor(
      async () => {
        const seen = (await h.admin('GET', `/v1/halts/${haltId}`)).json<{
          deliveries: { terminalId: string; ackedAt: number | null }[];
        }>();
        const acked = seen.deliveries.filter((d) => d.ackedAt !== null).map((d) => d.terminalId);
        expect(acked).toEqual(expect.arrayContaining([a.id, b.id]));
      },
      { timeout: 10_000 },
    );
  });
});

describePg('two pos-backend processes starting at once on a new PostgreSQL schema', () => {
  it('share one ticket-signing key and write one admin token between them', async () => {
    const schema = freshSchemaName('mq');
    const root = mkdtempSync(join(tmpdir(), 'pos-mq-'));
    const procs: Proc[] = [];
    try {
      const started = await Promise.all([start(join(root, 'a'), schema), start(join(root, 'b'), schema)]);
      procs.push(...started);
      const jwks = await Promise.all(
        started.map(async (p) => await (await fetch(`${p.url}/.well-known/jwks.json`)).json()),
      );
      expect((jwks[0] as { keys: unknown[] }).keys).toHaveLength(1);
      expect(jwks[1]).toEqual(jwks[0]);
      const tokens = ['a', 'b'].filter((d) => {
        try {
          readFileSync(join(root, d, 'admin-token'));
          return true;
        } catch {
          return false;
        }
      });
      expect(tokens).toHaveLength(1);
    } finally {
      for (const p of procs) await stop(p);
      rmSync(root, { recursive: true, force: true });
      await dropSchemas([schema]);
    }
  }, 60_000);
});
