/**
 * Row mapping shared by both engines: a row is a record of snake_case columns. Numbers arrive as JS
 * numbers or bigints (SQLite) or as strings (PostgreSQL BIGINT and COUNT); booleans as 0/1 (SQLite) or
 * true/false (PostgreSQL).
 */
import type {
  ApiTokenRow,
  AttestationRow,
  AuditRow,
  ChallengeRow,
  EnrollmentCodeRow,
  HaltRow,
  HaltScope,
  IssuedTicketRow,
  OperatorRole,
  OperatorRow,
  OutboxKind,
  OutboxRow,
  PolicyRow,
  PushConnectionRow,
  SessionRow,
  SigningKeyRow,
  TerminalRow,
  TerminalState,
  TicketRow,
  TransactionRow,
} from './types';

export type Row = Record<string, unknown>;

export const str = (v: unknown): string => (typeof v === 'string' ? v : String(v));
export const num = (v: unknown): number => {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) throw new TypeError('not a number');
  return n;
};
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
export const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : str(v));
export const bool = (v: unknown): boolean => v === true || v === 1 || v === 1n;
export const json = (v: unknown): Record<string, unknown> => JSON.parse(str(v)) as Record<string, unknown>;

export const toTerminal = (r: Row): TerminalRow => ({
  id: str(r['id']),
  merchantId: str(r['merchant_id']),
  deviceJwk: str(r['device_jwk']),
  deviceJkt: str(r['device_jkt']),
  readerSerial: str(r['reader_serial']),
  lastCounter: num(r['last_counter']),
  state: str(r['state']) as TerminalState,
  stateReason: strOrNull(r['state_reason']),
  intervalS: num(r['interval_s']),
  createdAt: num(r['created_at']),
  lastAttestedAt: numOrNull(r['last_attested_at']),
  stateChangedAt: numOrNull(r['state_changed_at']),
  nextDueAt: numOrNull(r['next_due_at']),
  staleAt: numOrNull(r['stale_at']),
  appVersion: strOrNull(r['app_version']),
  lastTier: strOrNull(r['last_tier']),
});
export const toChallenge = (r: Row): ChallengeRow => ({
  value: str(r['value']),
  terminalId: strOrNull(r['terminal_id']),
  expiresAt: num(r['expires_at']),
  createdAt: num(r['created_at']),
  usedAt: numOrNull(r['used_at']),
});
export const toCode = (r: Row): EnrollmentCodeRow => ({
  codeHash: str(r['code_hash']),
  merchantId: str(r['merchant_id']),
  expiresAt: num(r['expires_at']),
  createdAt: num(r['created_at']),
  createdBy: str(r['created_by']),
  usedAt: numOrNull(r['used_at']),
  terminalId: strOrNull(r['terminal_id']),
});
export const toKey = (r: Row): SigningKeyRow => ({
  kid: str(r['kid']),
  publicJwk: str(r['public_jwk']),
  encryptedPrivateKey: str(r['encrypted_private_key']),
  state: str(r['state']) as SigningKeyRow['state'],
  createdAt: num(r['created_at']),
  retiredAt: numOrNull(r['retired_at']),
  verifyUntil: numOrNull(r['verify_until']),
});
export const toPolicy = (r: Row): PolicyRow => ({
  version: str(r['version']),
  document: json(r['document']),
  role: str(r['role']) as PolicyRow['role'],
  createdAt: num(r['created_at']),
  createdBy: str(r['created_by']),
});
export const toAudit = (r: Row): AuditRow => ({
  seq: num(r['seq']),
  at: str(r['at']),
  actor: str(r['actor']),
  action: str(r['action']),
  subject: str(r['subject']),
  data: json(r['data']),
  prevHash: str(r['prev_hash']),
  hash: str(r['hash']),
});
export const toAttestation = (r: Row): AttestationRow => ({
  id: str(r['id']),
  terminalId: str(r['terminal_id']),
  at: num(r['at']),
  purpose: str(r['purpose']),
  counter: numOrNull(r['counter']),
  tier: str(r['tier']),
  policyVersion: str(r['policy_version']),
  evidenceHash: str(r['evidence_hash']),
  verdict: json(r['verdict']),
});
export const toTicket = (r: Row): TicketRow => ({
  jti: str(r['jti']),
  terminalId: str(r['terminal_id']),
  use: str(r['use']),
  kid: str(r['kid']),
  issuedAt: num(r['issued_at']),
  expiresAt: num(r['expires_at']),
});
export const toIssuedTicket = (r: Row): IssuedTicketRow => ({
  ...toTicket(r),
  usedAt: numOrNull(r['used_at']),
});
export const toTransaction = (r: Row): TransactionRow => ({
  id: str(r['id']),
  terminalId: str(r['terminal_id']),
  merchantId: str(r['merchant_id']),
  at: num(r['at']),
  amount: num(r['amount']),
  currency: str(r['currency']),
  approved: bool(r['approved']),
  code: strOrNull(r['code']),
  authCode: strOrNull(r['auth_code']),
  cardToken: strOrNull(r['card_token']),
  ticketJti: str(r['ticket_jti']),
});
export const toOperator = (r: Row): OperatorRow => ({
  id: str(r['id']),
  username: str(r['username']),
  passwordHash: str(r['password_hash']),
  role: str(r['role']) as OperatorRole,
  merchantId: strOrNull(r['merchant_id']),
  createdAt: num(r['created_at']),
  disabledAt: numOrNull(r['disabled_at']),
  loginEpoch: num(r['login_epoch']),
});
export const toToken = (r: Row): ApiTokenRow => ({
  id: str(r['id']),
  tokenHash: str(r['token_hash']),
  label: str(r['label']),
  role: str(r['role']) as OperatorRole,
  merchantId: strOrNull(r['merchant_id']),
  createdBy: strOrNull(r['created_by']),
  createdAt: num(r['created_at']),
  expiresAt: numOrNull(r['expires_at']),
  revokedAt: numOrNull(r['revoked_at']),
});
export const toSession = (r: Row): SessionRow => ({
  id: str(r['id']),
  tokenHash: str(r['token_hash']),
  csrfHash: str(r['csrf_hash']),
  operatorId: str(r['operator_id']),
  createdAt: num(r['created_at']),
  expiresAt: num(r['expires_at']),
  revokedAt: numOrNull(r['revoked_at']),
});
export const toHalt = (r: Row): HaltRow => ({
  id: str(r['id']),
  scope: str(r['scope']) as HaltScope,
  target: strOrNull(r['target']),
  reason: str(r['reason']),
  createdBy: str(r['created_by']),
  createdAt: num(r['created_at']),
  liftedAt: numOrNull(r['lifted_at']),
  liftedBy: strOrNull(r['lifted_by']),
});
export const toOutbox = (r: Row): OutboxRow => ({
  terminalId: str(r['terminal_id']),
  seq: num(r['seq']),
  kind: str(r['kind']) as OutboxKind,
  haltId: str(r['halt_id']),
  reason: str(r['reason']),
  createdAt: num(r['created_at']),
  sentAt: numOrNull(r['sent_at']),
  ackedAt: numOrNull(r['acked_at']),
});
export const toPushConnection = (r: Row): PushConnectionRow => ({
  terminalId: str(r['terminal_id']),
  connectionId: str(r['connection_id']),
  instanceId: str(r['instance_id']),
  connectedAt: num(r['connected_at']),
  seenAt: num(r['seen_at']),
});
