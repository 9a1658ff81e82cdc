/**
 * The one place the service imports the domain modules from (Engineer D's: evidence verifiers,
 * policy, tickets, audit chain, acquirer host). Routes import only from here.
 */
export {
  appraiseEvidence,
  createReaderStatusVerifier,
  evaluatePolicy,
  missingCoreVerifiers,
  parsePolicy,
  policyTooDeep,
  MAX_POLICY_CONDITION_DEPTH,
  DEFAULT_POLICY,
  PRODUCTION_POLICY,
  PolicySchema,
  type Appraisal,
  type AppraisalOptions,
  type ChallengeContext,
  type Policy,
  type ReaderStatusReport,
  type ReaderStatusVerifier,
  type ReferenceValues,
  type SignedReaderStatus,
  type TerminalContext,
  type Verdict,
} from '../attestation/index';
export { signTicket, ticketClaims, type TicketSigner } from '../tickets/index';
export {
  chainAuditEntry,
  signAuditCheckpoint,
  verifyAuditChain,
  type AuditCheckpoint,
  type AuditDraft,
  type AuditEntry,
} from '../audit/index';
export {
  createAcquirerHost,
  developmentBdks,
  type AcquirerHost,
  type AuthorizationResult,
  type VelocityStore,
} from '../acquirer/index';
