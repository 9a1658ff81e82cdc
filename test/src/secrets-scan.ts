/**
 * A scanner for secrets in captured output (logs, stdout/stderr, HTTP error bodies): used by the
 * full-stack secrets test (test/test/fullstack/secrets.test.ts), which runs the whole system at its most
 * verbose and fails when a PIN, a PAN, a key or a ticket shows up anywhere.
 *
 * What it finds, per line of every source:
 * - `pan`: any run of 12 or more digits that contains 12 consecutive digits of a known PAN (in the
 *   fractional part of a decimal number, only a whole PAN: float noise is full of zeros); and a
 *   masked PAN (`*`, `#`, `X`, `x` or `•` in the middle) that shows more than the first 6 or the last 4
 *   digits of a known PAN.
 * - `pin`: a PIN that was used, as a standalone digit run with "pin" within 32 characters on the same
 *   line; and a clear PIN field in hex (format 4: `4` N PIN `A` fill; formats 0 and 2: `0`/`2` N PIN `F`
 *   fill).
 * - `pin-block`: 32 hex digits that decrypt as a format 4 PIN block under one of the given PIN keys for
 *   one of the known PANs (an enciphered PIN block is as good as the PIN to whoever holds the key).
 * - `jwt`: anything shaped like a JWS/JWT (`eyJ….eyJ…`): tickets, evidence, proofs.
 * - `token`: the project's bearer secrets by their prefix (`pos_admin_`, `pos_sess_`, `pos_csrf_`,
 *   `pos_enr_`, role tokens).
 * - the literal secrets given (keys, tokens, passwords, cookies), each under its own kind and label:
 *   hex case-insensitively, other text exactly; `binaryForms` lists a binary key's usual encodings.
 *
 * A finding never carries the secret: its excerpt is the line around it with the match replaced by
 * `[kind:label]` and every other long digit, hex or base64 run masked.
 */
import { decodePinBlock, parsePan, toBase64url, toHex } from '@pos/shared';

export type SecretKind = 'pan' | 'pin' | 'pin-block' | 'jwt' | 'token' | 'key' | 'password' | 'cookie';

export interface LiteralSecret {
  readonly kind: SecretKind;
  /** What it is, for the failure message (never the value). */
  readonly label: string;
  readonly value: string;
}

export interface SecretSet {
  /** Full PANs (the test cards'). */
  readonly pans: readonly string[];
  /** The PINs used (digits). */
  readonly pins: readonly string[];
  readonly literals: readonly LiteralSecret[];
  /** PIN-encryption keys (one per KSN) to try on 32-hex-digit runs, for format 4 PIN blocks. */
  readonly pinKeys?: readonly Uint8Array[];
}

export interface Source {
  /** A file path or a stream name ("npm start stderr", "pos-terminal transact #2 stdout"...). */
  readonly name: string;
  readonly text: string;
}

export interface Finding {
  readonly source: string;
  /** 1-based line number in the source. */
  readonly line: number;
  readonly kind: SecretKind;
  readonly label: string;
  /** The line around the finding, redacted. */
  readonly excerpt: string;
}

/** Literals shorter than this are not searched (they would match by chance). */
export const MIN_LITERAL_LENGTH = 8;
const PAN_WINDOW = 12;
const PIN_CONTEXT = 32;
const EXCERPT_CONTEXT = 40;

/** A binary secret's usual text forms: hex (either case), base64 and base64url. */
export function binaryForms(kind: SecretKind, label: string, bytes: Uint8Array): LiteralSecret[] {
  const b64 = Buffer.from(bytes).toString('base64');
  const forms = new Set([toHex(bytes), b64, b64.replace(/=+$/, ''), toBase64url(bytes)]);
  return [...forms].map((value) => ({ kind, label, value }));
}

interface Hit {
  readonly start: number;
  readonly end: number;
  readonly kind: SecretKind;
  readonly label: string;
}

const HEX_ONLY = /^[0-9a-fA-F]+$/;

function literalHits(line: string, literals: readonly LiteralSecret[]): Hit[] {
  const hits: Hit[] = [];
  for (const s of literals) {
    if (s.value.length < MIN_LITERAL_LENGTH) continue;
    const hay = HEX_ONLY.test(s.value) ? line.toLowerCase() : line;
    const needle = HEX_ONLY.test(s.value) ? s.value.toLowerCase() : s.value;
    for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + 1))
      hits.push({ start: at, end: at + needle.length, kind: s.kind, label: s.label });
  }
  return hits;
}

function panHits(line: string, pans: readonly string[]): Hit[] {
  const hits: Hit[] = [];
  const windows = new Set<string>();
  for (const pan of pans)
    for (let i = 0; i + PAN_WINDOW <= pan.length; i++) windows.add(pan.slice(i, i + PAN_WINDOW));
  for (const m of line.matchAll(/[0-9]{12,}/g)) {
    const run = m[0];
    // The fractional part of a decimal (a float's noise: 19.700000000000003) is no PAN unless it
    // holds a whole one.
    const fraction = m.index >= 2 && /[0-9]\./.test(line.slice(m.index - 2, m.index));
    if (fraction) {
      if (pans.some((p) => run.includes(p)))
        hits.push({ start: m.index, end: m.index + run.length, kind: 'pan', label: 'PAN digits' });
      continue;
    }
    for (let i = 0; i + PAN_WINDOW <= run.length; i++) {
      if (windows.has(run.slice(i, i + PAN_WINDOW))) {
        hits.push({ start: m.index, end: m.index + run.length, kind: 'pan', label: 'PAN digits' });
        break;
      }
    }
  }
  // Masked: digits, a mask, digits; more than the first 6 or last 4 of a known PAN showing.
  for (const m of line.matchAll(/(?<![0-9])([0-9]{0,19})([*#Xx•]{2,19})([0-9]{0,19})(?![0-9])/g)) {
    const lead = m[1] ?? '';
    const mask = m[2] ?? '';
    const trail = m[3] ?? '';
    const total = lead.length + mask.length + trail.length;
    if (total < 12 || total > 19 || (lead.length <= 6 && trail.length <= 4)) continue;
    const known = pans.some(
      (p) => (lead.length > 6 && p.startsWith(lead)) || (trail.length > 4 && p.endsWith(trail)),
    );
    if (known)
      hits.push({
        start: m.index,
        end: m.index + m[0].length,
        kind: 'pan',
        label: 'masked PAN showing too much',
      });
  }
  return hits;
}

function pinHits(line: string, pins: readonly string[]): Hit[] {
  const hits: Hit[] = [];
  const lower = line.toLowerCase();
  for (const pin of new Set(pins)) {
    if (!/^[0-9]{4,12}$/.test(pin)) continue;
    // Standalone: no digit around it, and not the fractional part of a decimal (12.1234).
    for (const m of line.matchAll(new RegExp(`(?<![0-9])(?<![0-9]\\.)${pin}(?![0-9])`, 'g'))) {
      const from = Math.max(0, m.index - PIN_CONTEXT);
      const to = Math.min(line.length, m.index + pin.length + PIN_CONTEXT);
      if (lower.slice(from, to).includes('pin'))
        hits.push({ start: m.index, end: m.index + pin.length, kind: 'pin', label: 'PIN in a PIN context' });
    }
    const n = pin.length.toString(16);
    const fill = 14 - pin.length;
    const field = new RegExp(`4${n}${pin}[aA]{${fill}}|[02]${n}${pin}[fF]{${fill}}`, 'g');
    for (const m of line.matchAll(field))
      hits.push({ start: m.index, end: m.index + m[0].length, kind: 'pin', label: 'clear PIN field (hex)' });
  }
  return hits;
}

function pinBlockHits(line: string, keys: readonly Uint8Array[], pans: readonly string[]): Hit[] {
  if (keys.length === 0) return [];
  const parsed = pans.flatMap((p) => {
    const r = parsePan(p);
    return r.ok ? [r.pan] : [];
  });
  const hits: Hit[] = [];
  for (const m of line.matchAll(/(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])/g)) {
    const block = Uint8Array.from(Buffer.from(m[0], 'hex'));
    const opens = keys.some((key) => parsed.some((pan) => decodePinBlock({ format: 4, block, pan, key }).ok));
    if (opens)
      hits.push({ start: m.index, end: m.index + 32, kind: 'pin-block', label: 'format 4 PIN block' });
  }
  return hits;
}

const JWT_RE = /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?/g;
const TOKEN_RE = /pos_(?:admin|operator|auditor|merchant|sess|csrf|enr)_[A-Za-z0-9_-]{16,}/g;

function patternHits(line: string): Hit[] {
  const hits: Hit[] = [];
  for (const m of line.matchAll(JWT_RE))
    hits.push({ start: m.index, end: m.index + m[0].length, kind: 'jwt', label: 'JWS/JWT' });
  for (const m of line.matchAll(TOKEN_RE))
    hits.push({ start: m.index, end: m.index + m[0].length, kind: 'token', label: 'bearer secret (pos_…_)' });
  return hits;
}

/**
 * Masks what could still be secret in an excerpt's context: runs of 12 or more base64url / hex
 * characters with a digit or mixed case in them (a plain word stays), and digit runs of 4 or more.
 */
export function maskContext(text: string): string {
  return text
    .replace(/[A-Za-z0-9_+/=-]{12,}/g, (run) =>
      /[0-9]/.test(run) || (/[A-Z]/.test(run) && /[a-z]/.test(run)) ? '[…]' : run,
    )
    .replace(/[0-9]{4,}/g, '[#]');
}

function excerpt(line: string, hit: Hit, all: readonly Hit[]): string {
  const from = Math.max(0, hit.start - EXCERPT_CONTEXT);
  const to = Math.min(line.length, hit.end + EXCERPT_CONTEXT);
  // Every hit in the window is cut out; the rest is masked.
  const inWindow = all
    .filter((h) => h.end > from && h.start < to)
    .sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let at = from;
  for (const h of inWindow) {
    if (h.end <= at) continue;
    const start = Math.max(h.start, at);
    out += maskContext(line.slice(at, start));
    out += h === hit ? `[${h.kind}:${h.label}]` : '[redacted]';
    at = Math.min(Math.max(h.end, at), to);
  }
  out += maskContext(line.slice(at, to));
  return `${from > 0 ? '…' : ''}${out}${to < line.length ? '…' : ''}`;
}

/** Scans every line of every source; one finding per secret found. */
export function scanSources(sources: readonly Source[], secrets: SecretSet): Finding[] {
  const findings: Finding[] = [];
  for (const source of sources) {
    const lines = source.text.split(/\r?\n/);
    lines.forEach((line, i) => {
      const hits = [
        ...literalHits(line, secrets.literals),
        ...panHits(line, secrets.pans),
        ...pinHits(line, secrets.pins),
        ...pinBlockHits(line, secrets.pinKeys ?? [], secrets.pans),
        ...patternHits(line),
      ];
      for (const hit of hits)
        findings.push({
          source: source.name,
          line: i + 1,
          kind: hit.kind,
          label: hit.label,
          excerpt: excerpt(line, hit, hits),
        });
    });
  }
  return findings;
}

/** The findings as a failure message: where, what, and a redacted excerpt (never a secret). */
export function formatFindings(findings: readonly Finding[], max = 50): string {
  const lines = findings
    .slice(0, max)
    .map((f) => `${f.source}:${f.line}: ${f.kind} (${f.label}): ${f.excerpt}`);
  if (findings.length > max) lines.push(`… and ${findings.length - max} more`);
  return lines.join('\n');
}
