/**
 * The messages between the Electron main process and the core's utility process, over the utility
 * process's parent port (`child.postMessage` / `process.parentPort`). Both sides parse every message
 * they receive with these schemas: the main process does not trust the utility process's output blindly
 * (a bug there must not put an arbitrary object in front of the renderer), and the utility process
 * accepts commands only in the UI API's shape. Plain Node and zod: no electron import.
 */
import { z } from 'zod';
import { CommandResultSchema, CommandSchema, ErrorCodeSchema, SnapshotSchema } from '../api/contract';
import type { ShellInfo } from '../core/attest/types';
import { ReaderConfigSchema } from '../core/keys/store';

/** What main tells the core about the shell (the core's `ShellInfo`, kind always `electron`). */
export const ElectronShellSchema = z.strictObject({
  kind: z.literal('electron'),
  build: z.enum(['release', 'development']),
  version: z.string().min(1).max(64),
  packaged: z.boolean(),
  appPath: z.string().min(1).max(4096),
  asarPath: z.string().min(1).max(4096).optional(),
  devtoolsOpen: z.boolean().optional(),
  contentProtection: z.boolean().optional(),
  /** Debugging switches on main's command line (names only). */
  mainSwitches: z
    .array(z.string().regex(/^[a-z][a-z0-9-]{0,63}$/))
    .max(16)
    .optional(),
});
export type ElectronShell = z.infer<typeof ElectronShellSchema>;

/** The schema's output as the core's `ShellInfo` (absent members left out, not `undefined`). */
export function toShellInfo(s: ElectronShell): ShellInfo {
  return {
    kind: s.kind,
    build: s.build,
    version: s.version,
    packaged: s.packaged,
    appPath: s.appPath,
    ...(s.asarPath === undefined ? {} : { asarPath: s.asarPath }),
    ...(s.devtoolsOpen === undefined ? {} : { devtoolsOpen: s.devtoolsOpen }),
    ...(s.contentProtection === undefined ? {} : { contentProtection: s.contentProtection }),
    ...(s.mainSwitches === undefined ? {} : { mainSwitches: s.mainSwitches }),
  };
}

/**
 * The reader a UI enrollment pairs with (the core's `Pairing`): read by main from `pairing.json` in the
 * app's data directory, put there by whoever installs the terminal. Public data only: the reader's
 * transport, its serial, and the manufacturer CA roots (DER, base64url).
 */
export const PairingSchema = z.strictObject({
  reader: ReaderConfigSchema,
  readerSerial: z.string().min(1).max(64),
  readerCaRoots: z
    .array(
      z
        .string()
        .regex(/^[A-Za-z0-9_-]+$/)
        .max(16_384),
    )
    .min(1)
    .max(8),
});
export type PairingConfig = z.infer<typeof PairingSchema>;

/** A request id: main numbers its invocations so answers can arrive in any order. */
const RequestId = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** Standard base64 of at most 6 KiB: a device key, or its sealed form (never anything else). */
const SealData = z
  .string()
  .regex(/^[A-Za-z0-9+/]*={0,2}$/)
  .max(8192);

/**
 * The key store's sealer (utility → main `seal`, main → utility `sealed`): main seals or unseals the
 * device key with Electron safeStorage. Key material crosses here (base64); neither side logs it.
 */
export const SealOpSchema = z.enum(['seal', 'unseal']);
export type SealOp = z.infer<typeof SealOpSchema>;
export const SealAnswerSchema = z.union([
  z.strictObject({ ok: z.literal(true), data: SealData }),
  z.strictObject({ ok: z.literal(false), code: ErrorCodeSchema, detail: z.string().max(500) }),
]);
export type SealAnswer = z.infer<typeof SealAnswerSchema>;

export const ToCoreSchema = z.discriminatedUnion('t', [
  /** First message: where the core keeps its state, and the shell as it is now. */
  z.strictObject({
    t: z.literal('init'),
    dataDir: z.string().min(1).max(4096),
    shell: ElectronShellSchema,
    pairing: PairingSchema.optional(),
  }),
  /** The shell changed (devtools opened or closed, content protection). */
  z.strictObject({ t: z.literal('shell'), shell: ElectronShellSchema }),
  /** One UI command, already checked by main; the core parses it again at its own boundary. */
  z.strictObject({ t: z.literal('invoke'), id: RequestId, command: CommandSchema }),
  /** Main's answer to the core's `seal` request with the same id. */
  z.strictObject({ t: z.literal('sealed'), id: RequestId, answer: SealAnswerSchema }),
  /** Stop: close the PIN pad, abort the sale, close the links, then exit. */
  z.strictObject({ t: z.literal('close') }),
]);
export type ToCore = z.infer<typeof ToCoreSchema>;

export const ToMainSchema = z.discriminatedUnion('t', [
  /** The core is running and will answer commands. */
  z.strictObject({ t: z.literal('ready') }),
  z.strictObject({ t: z.literal('result'), id: RequestId, result: CommandResultSchema }),
  z.strictObject({ t: z.literal('snapshot'), snapshot: SnapshotSchema }),
  /** A line for the operator's log (never a PIN, key or token: the core's notices are codes and states). */
  z.strictObject({ t: z.literal('notice'), line: z.string().max(1000) }),
  /** The core could not start or stopped by itself; the process exits after this. */
  z.strictObject({ t: z.literal('fatal'), code: ErrorCodeSchema, detail: z.string().max(500) }),
  /** Answer to `close`: everything is closed; the process exits after this. */
  z.strictObject({ t: z.literal('closed') }),
  /** The key store asks main to seal (or unseal) the device key with safeStorage; main answers `sealed`. */
  z.strictObject({ t: z.literal('seal'), id: RequestId, op: SealOpSchema, data: SealData }),
]);
export type ToMain = z.infer<typeof ToMainSchema>;

export function parseToCore(input: unknown): ToCore | undefined {
  const r = ToCoreSchema.safeParse(input);
  return r.success ? r.data : undefined;
}

export function parseToMain(input: unknown): ToMain | undefined {
  const r = ToMainSchema.safeParse(input);
  return r.success ? r.data : undefined;
}
