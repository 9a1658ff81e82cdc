/**
 * Runs every collector and maps the results into the evidence claims of @pos/shared
 * (`EvidenceClaimsSchema`), which the back-end's verifiers read (backend/src/attestation/verifiers.ts):
 *
 * - `app.codeHash` ← app code hash (must be `ok`: without it there is no evidence to send);
 *   `app.build` ← build kind; `app.version` ← the shell's version; `shell` ← shell kind.
 * - `measurements` ← one entry per collector in `MEASUREMENT_COLLECTORS` (the names the back-end
 *   reads: fuses, executable-hash, debugger, inspector, devtools, node-options, run-as-node,
 *   suspicious-env, virtual-machine, remote-session, screen-capture-protection; and os, secure-boot,
 *   tpm), plus `app-code-hash` so the method of the code hash is on record.
 * - `os` ← platform, release, arch.
 * - `reader` ← the reader's signed status, when the caller has one (pre-PIN: bound to the challenge).
 *
 * A collector that throws (it should not) is recorded as `unknown` with method `collector-error`.
 */
import {
  EvidenceClaimsSchema,
  type BuildKind,
  type EvidenceClaims,
  type EvidencePurpose,
  type Measurement,
  type MeasurementName,
  type ReaderEvidence,
  type Result,
  type ShellKind,
} from '@pos/shared';
import type { DesktopCode } from '../result';
import { FIELD_COLLECTORS, MEASUREMENT_COLLECTORS } from './collectors';
import type { CollectContext, Collector, MeasurementResult } from './types';

export interface Collected {
  readonly measurements: Readonly<Record<MeasurementName, MeasurementResult>>;
  readonly appCodeHash: MeasurementResult;
  readonly shell: ShellKind;
  readonly build: BuildKind;
  readonly version: string;
  readonly os: { platform: string; release: string; arch: string };
}

async function run(c: Collector, ctx: CollectContext): Promise<MeasurementResult> {
  try {
    return await c(ctx);
  } catch {
    return { status: 'unknown', method: 'collector-error' };
  }
}

/** Runs every collector (concurrently). */
export async function collectAll(ctx: CollectContext): Promise<Collected> {
  const names = Object.keys(MEASUREMENT_COLLECTORS) as MeasurementName[];
  const results = await Promise.all(names.map((n) => run(MEASUREMENT_COLLECTORS[n], ctx)));
  const measurements = Object.fromEntries(names.map((n, i) => [n, results[i]])) as Record<
    MeasurementName,
    MeasurementResult
  >;
  return {
    measurements,
    appCodeHash: await run(FIELD_COLLECTORS['app-code-hash'], ctx),
    shell: ctx.shell.kind,
    build: ctx.shell.build,
    version: ctx.shell.version,
    os: {
      platform: ctx.proc.platform.slice(0, 64),
      release: ctx.proc.release.slice(0, 128),
      arch: ctx.proc.arch.slice(0, 32),
    },
  };
}

function toMeasurement(name: string, r: MeasurementResult): Measurement {
  const value = typeof r.value === 'string' ? r.value.slice(0, 512) : r.value;
  return {
    name,
    status: r.status,
    method: r.method.slice(0, 128),
    ...(value === undefined ? {} : { value }),
  };
}

export interface EvidenceInput {
  /** The terminal id, or `enrolling`. */
  readonly iss: string;
  readonly challenge: string;
  readonly counter: number;
  readonly purpose: EvidencePurpose;
  /** pre-pin: the reader's transaction nonce, base64url. */
  readonly nonce?: string;
  readonly reader?: ReaderEvidence;
  /** Milliseconds since the epoch. */
  readonly nowMs: number;
}

/** The evidence claims for these measurements, schema-checked. */
export function evidenceClaims(
  collected: Collected,
  input: EvidenceInput,
): Result<{ claims: EvidenceClaims }, DesktopCode> {
  const code = collected.appCodeHash;
  if (code.status !== 'ok' || typeof code.value !== 'string') {
    return {
      ok: false,
      code: 'POS_ERR_DESKTOP_ATTEST_CODE_HASH',
      detail: `the app's code could not be hashed (${code.method})`,
    };
  }
  const claims = {
    iss: input.iss,
    iat: Math.floor(input.nowMs / 1000),
    challenge: input.challenge,
    counter: input.counter,
    purpose: input.purpose,
    ...(input.nonce === undefined ? {} : { nonce: input.nonce }),
    app: { version: collected.version, build: collected.build, codeHash: code.value },
    shell: collected.shell,
    measurements: [
      ...Object.entries(collected.measurements).map(([n, r]) => toMeasurement(n, r)),
      toMeasurement('app-code-hash', code),
    ],
    ...(input.reader === undefined ? {} : { reader: input.reader }),
    os: collected.os,
    time: Math.floor(input.nowMs),
  };
  const parsed = EvidenceClaimsSchema.safeParse(claims);
  if (!parsed.success) {
    const where = parsed.error.issues[0]?.path.map(String).join('.') ?? '';
    return {
      ok: false,
      code: 'POS_ERR_DESKTOP_ATTEST_CLAIMS',
      detail: `the evidence claims do not fit (${where})`,
    };
  }
  return { ok: true, claims: parsed.data };
}
