/**
 * The one API between the terminal's renderer (the React UI) and its core. Transport-neutral: the
 * Electron shell carries these messages over IPC (preload → main → utility process) and the browser
 * shell over HTTP + server-sent events on loopback; both parse every message with these schemas at
 * every boundary they cross. Nothing here touches Node, the DOM or Electron (lint-enforced), so the
 * renderer, the preload and the core all import it.
 *
 * PIN digits never cross as digits: the core makes a new random pad layout for every PIN entry and
 * sends it in the snapshot (`pad.layout[position] = digit`); the renderer sends the *position* of the
 * button pressed (`pin.key`), and the core maps it to the digit into its byte buffer. The renderer
 * holds no digit in state, and a log of the messages shows no PIN.
 */
import { z } from 'zod';

/** Bumped on any incompatible change to the messages below. */
export const UI_API_VERSION = 1 as const;

/** Most minor units one sale may be (999,999.99). */
export const MAX_AMOUNT_MINOR = 99_999_999;
/** The longest PIN ISO 9564 allows. */
export const MAX_PIN_DIGITS = 12;

// ---------------------------------------------------------------------------------------------------
// Commands: renderer → core
// ---------------------------------------------------------------------------------------------------

/**
 * Whether a back-end URL may be used (DESIGN trust model 5: TLS in production): `https:` to any host,
 * `http:` only to a loopback host (`localhost`, 127.0.0.0/8, `[::1]`) for development. Anything else,
 * and anything that is not a URL, is refused. The WHATWG URL parser normalises the host first
 * (`127.1`, `0x7f.0.0.1` and `2130706433` all become `127.0.0.1`; `LOCALHOST` becomes `localhost`).
 */
export function isAllowedBackendUrl(raw: string): boolean {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return false;
  }
  if (u.protocol === 'https:') return true;
  if (u.protocol !== 'http:') return false;
  const host = u.hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export const CommandSchema = z.discriminatedUnion('cmd', [
  /** Enroll this terminal with a back-end, with an operator's one-time code. */
  z.strictObject({
    cmd: z.literal('enroll'),
    backendUrl: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .refine(isAllowedBackendUrl, 'plain http only to a loopback host'),
    code: z.string().trim().min(4).max(128),
  }),
  /** Start a sale: the amount in minor units and the ISO 4217 currency. */
  z.strictObject({
    cmd: z.literal('sale.start'),
    amountMinor: z.number().int().min(1).max(MAX_AMOUNT_MINOR),
    currency: z.string().regex(/^[A-Z]{3}$/),
  }),
  /** Cancel the sale (any state before submit; the PIN pad's Cancel too). */
  z.strictObject({ cmd: z.literal('sale.cancel') }),
  /** After a result: back to idle for a new sale (`New sale`). */
  z.strictObject({ cmd: z.literal('sale.new') }),
  /** A PIN pad button was pressed: its position in `pad.layout` (0-9), never the digit. */
  z.strictObject({ cmd: z.literal('pin.key'), position: z.number().int().min(0).max(9) }),
  /** The PIN pad's `Clear`: every digit typed so far is wiped. */
  z.strictObject({ cmd: z.literal('pin.clear') }),
  /** The PIN pad's `OK`: the PIN goes to the reader. */
  z.strictObject({ cmd: z.literal('pin.ok') }),
  /** Ask for an attestation now (the status bar's refresh). */
  z.strictObject({ cmd: z.literal('attest.now') }),
]);
export type Command = z.infer<typeof CommandSchema>;
export type CommandName = Command['cmd'];

/** A `POS_ERR_*` code: what every failure carries. */
export const ErrorCodeSchema = z.string().regex(/^POS_ERR_[A-Z0-9_]{1,80}$/);

export const CommandResultSchema = z.union([
  z.strictObject({ ok: z.literal(true) }),
  z.strictObject({ ok: z.literal(false), code: ErrorCodeSchema, detail: z.string().max(500) }),
]);
export type CommandResult = z.infer<typeof CommandResultSchema>;

// ---------------------------------------------------------------------------------------------------
// Snapshots: core → renderer (the whole UI state, sent on every change; the renderer renders it)
// ---------------------------------------------------------------------------------------------------

export const SALE_STATES = [
  'idle',
  'amount',
  'card',
  'attest',
  'pin',
  'pin-block',
  'submit',
  'result',
] as const;
export type SaleState = (typeof SALE_STATES)[number];

export const TIERS = ['affirming', 'warning', 'contraindicated', 'none'] as const;

const text = (max: number) => z.string().max(max);

export const SaleResultSchema = z.strictObject({
  status: z.enum(['approved', 'declined', 'halted', 'error']),
  /** Set for every outcome but approved. */
  code: ErrorCodeSchema.optional(),
  /** One sentence for the merchant (a halt: the provider's reason). */
  detail: text(500).optional(),
});
export type SaleResult = z.infer<typeof SaleResultSchema>;

export const PadSchema = z.strictObject({
  /** `layout[position]` is the digit on the button at that position; a new permutation per entry. */
  layout: z
    .array(z.number().int().min(0).max(9))
    .length(10)
    .refine((a) => new Set(a).size === 10, { message: 'the layout is not a permutation of 0-9' }),
  /** How many digits are typed (the screen shows that many dots). */
  digits: z.number().int().min(0).max(MAX_PIN_DIGITS),
  /** When the pad closes for inactivity (ms since the epoch; reset by each key). */
  deadline: z.number().int().nonnegative(),
});
export type Pad = z.infer<typeof PadSchema>;

export const SaleSchema = z.strictObject({
  state: z.enum(SALE_STATES),
  amountMinor: z.number().int().min(1).max(MAX_AMOUNT_MINOR).optional(),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/)
    .optional(),
  /** What the customer should do with the card, following the reader. */
  cardPrompt: z.enum(['insert-or-tap', 'reading', 'remove']).optional(),
  /** The masked PAN (first 6, last 4) once the card is read. */
  maskedPan: text(32).optional(),
  /** Present exactly while the PIN pad is open. */
  pad: PadSchema.optional(),
  result: SaleResultSchema.optional(),
});
export type Sale = z.infer<typeof SaleSchema>;

export const SnapshotSchema = z.strictObject({
  v: z.literal(UI_API_VERSION),
  /** Which shell the core reports in its evidence. */
  shell: z.enum(['electron', 'browser']),
  /** Increases with every snapshot, so a transport can drop a stale one. */
  seq: z.number().int().nonnegative(),
  enrolled: z.boolean(),
  terminalId: text(64).optional(),
  reader: z.strictObject({
    state: z.enum(['connected', 'connecting', 'disconnected', 'not-configured']),
    /** The reader's serial once connected. */
    serial: text(64).optional(),
    /** Why it is not connected, for the merchant. */
    detail: text(300).optional(),
  }),
  backend: z.strictObject({
    /** Whether the last request reached the back-end. */
    link: z.enum(['up', 'down', 'unknown']),
    /** Whether the halt push connection is open. */
    push: z.boolean(),
    url: text(2048).optional(),
  }),
  attestation: z.strictObject({
    tier: z.enum([...TIERS, 'unknown']),
    /** When the last verdict came (ms since the epoch). */
    at: z.number().int().nonnegative().optional(),
    /** The verdict's reasons, readable by a merchant. */
    reasons: z.array(text(300)).max(16),
  }),
  /** The provider's halt in force, if any: no PIN entry while it holds. */
  halt: z.strictObject({ reason: text(500) }).optional(),
  sale: SaleSchema,
});
export type Snapshot = z.infer<typeof SnapshotSchema>;

// ---------------------------------------------------------------------------------------------------
// The API itself
// ---------------------------------------------------------------------------------------------------

/**
 * What the renderer sees (`window.posTerminal` in Electron, from the preload; a fetch + EventSource
 * client in the browser shell). Implementations parse what they receive with the schemas above.
 */
export interface TerminalApi {
  readonly version: typeof UI_API_VERSION;
  /** Sends one command; resolves with its result, never rejects. */
  invoke(command: Command): Promise<CommandResult>;
  /** Calls `cb` with the current snapshot at once (when known) and on every change; returns the unsubscribe. */
  subscribe(cb: (snapshot: Snapshot) => void): () => void;
}

/**
 * What a shell's transport talks to on the core's side (the Electron utility process, the browser
 * shell's server): the same two operations, with unparsed input, so the core parses at its boundary.
 */
export interface TerminalCore {
  /** Parses `input` with `CommandSchema`; a bad one answers `POS_ERR_DESKTOP_API_INVALID`. Never throws. */
  handle(input: unknown): Promise<CommandResult>;
  /** Current snapshot now and on every change; returns the unsubscribe. */
  subscribe(cb: (snapshot: Snapshot) => void): () => void;
  /** Stops the core: closes the PIN pad, aborts the sale, closes the reader and the back-end links. */
  close(): Promise<void>;
}

/** Parses a command from any transport. */
export function parseCommand(
  input: unknown,
): { ok: true; command: Command } | { ok: false; code: 'POS_ERR_DESKTOP_API_INVALID'; detail: string } {
  const r = CommandSchema.safeParse(input);
  if (r.success) return { ok: true, command: r.data };
  const issue = r.error.issues[0];
  const where =
    issue === undefined || issue.path.length === 0 ? '' : ` at ${issue.path.map(String).join('.')}`;
  // The detail names the field, never the value (a value could be anything a caller sent).
  return { ok: false, code: 'POS_ERR_DESKTOP_API_INVALID', detail: `the command is not valid${where}` };
}

/** Parses a snapshot from any transport. */
export function parseSnapshot(input: unknown): { ok: true; snapshot: Snapshot } | { ok: false } {
  const r = SnapshotSchema.safeParse(input);
  return r.success ? { ok: true, snapshot: r.data } : { ok: false };
}

/** Formats minor units for display: 1234, 'EUR' → "12.34 EUR" (two decimals; no locale guessing). */
export function formatAmount(amountMinor: number, currency: string): string {
  const units = Math.floor(amountMinor / 100);
  const cents = String(amountMinor % 100).padStart(2, '0');
  return `${units}.${cents} ${currency}`;
}
