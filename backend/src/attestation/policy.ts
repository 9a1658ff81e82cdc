/**
 * Policy: versioned rules as data (JSON, validated with zod). The verifiers give each outcome and an
 * AR4SI vector; a policy may only make the verdict stricter (escalate a category to warning or
 * contraindicated, add a reason) and names the verifiers that must pass for `affirming`. It can never
 * turn a failure, an unknown or an error into a pass: fail closed.
 *
 * Tier, in order: any verifier error → contraindicated; any category contraindicated →
 * contraindicated; a failure that makes the evidence unappraisable (AR4SI none range) → none; any
 * category warning → warning; a required verifier (the core ones and the policy's own) that did not
 * pass, or any other outcome that is not a pass (an `unknown` included) → `unmet` (warning or none);
 * otherwise affirming. `contraindicated` halts.
 *
 * One narrow exception, named in the policy: `tolerateUnknown` lists environment hints (a virtual
 * machine, screen-capture protection) that the machine cannot show. When the environment verifier's
 * only finding is that some of those were reported `unknown`, and the policy does not require that
 * verifier, the outcome does not cap the tier (its reason is still given). A failed hint, an absent
 * one, or any other verifier's unknown still does. The development policy uses it so a container or a
 * VM without DMI strings can take a test sale; the production policy does not.
 */
import { err, ok, TRUST_TIERS, type Result, type TrustTier } from '@pos/shared';
import { z } from 'zod';
import { AR4SI, AR4SI_CATEGORIES, emptyVector, moreSevere, tierOfValue, type Ar4siCategory } from './ar4si';
import { outcomeValue, vectorOf } from './appraise';
import { reasonText } from './reasons';
import { ENVIRONMENT_SIGNALS } from './verifiers';
import type { Appraisal, Verdict, VerifierOutcome } from './types';

/** The measurements a policy may list in `tolerateUnknown`: environment hints, nothing else. */
export const TOLERABLE_UNKNOWNS = ['virtual-machine', 'screen-capture-protection'] as const;

const name = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/);
const reasonCode = z.string().regex(/^[A-Z][A-Z0-9_]{2,63}$/);

export type Condition =
  | {
      verifier: string;
      status?: ('pass' | 'fail' | 'unknown' | 'error')[] | undefined;
      code?: string[] | undefined;
    }
  | { measurement: string; status: ('ok' | 'fail' | 'unknown')[] }
  | { shell: ('electron' | 'browser' | 'headless')[] }
  | { build: ('release' | 'development')[] }
  | { purpose: ('enrollment' | 'startup' | 'periodic' | 'pre-transaction' | 'pre-pin')[] }
  | { appVersion: string[] }
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition };

export const ConditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    z.strictObject({
      verifier: name,
      status: z
        .array(z.enum(['pass', 'fail', 'unknown', 'error']))
        .min(1)
        .optional(),
      code: z.array(reasonCode).min(1).max(32).optional(),
    }),
    z.strictObject({ measurement: name, status: z.array(z.enum(['ok', 'fail', 'unknown'])).min(1) }),
    z.strictObject({ shell: z.array(z.enum(['electron', 'browser', 'headless'])).min(1) }),
    z.strictObject({ build: z.array(z.enum(['release', 'development'])).min(1) }),
    z.strictObject({
      purpose: z.array(z.enum(['enrollment', 'startup', 'periodic', 'pre-transaction', 'pre-pin'])).min(1),
    }),
    z.strictObject({ appVersion: z.array(z.string().min(1).max(64)).min(1).max(64) }),
    z.strictObject({ all: z.array(ConditionSchema).min(1).max(16) }),
    z.strictObject({ any: z.array(ConditionSchema).min(1).max(16) }),
    z.strictObject({ not: ConditionSchema }),
  ]),
);

export const PolicyRuleSchema = z
  .strictObject({
    id: name,
    when: ConditionSchema,
    /** A rule can only make things stricter. */
    effect: z.enum(['warn', 'contraindicate']),
    category: z.enum(AR4SI_CATEGORIES),
    /** The AR4SI claim value; must lie in the effect's range (warning 32-95, contraindicated 96-127). */
    value: z.number().int().min(32).max(127).optional(),
    reason: z.strictObject({ code: reasonCode, text: z.string().min(1).max(300) }),
  })
  .refine((r) => r.value === undefined || (r.effect === 'warn' ? r.value <= 95 : r.value >= 96), {
    message: 'the value is outside the range of the effect',
    path: ['value'],
  });
export type PolicyRule = z.infer<typeof PolicyRuleSchema>;

export const PolicySchema = z.strictObject({
  /** Schema version of the policy language. */
  schema: z.literal(1),
  /** The policy's own version: unique, immutable once stored. */
  version: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  description: z.string().max(500).optional(),
  /** Verifiers that must pass (not fail, not unknown, not be absent) for an affirming verdict. */
  requiredVerifiers: z.array(name).max(32),
  /** The tier when everything else is fine but a required verifier did not pass. */
  unmet: z.enum(['warning', 'none']),
  rules: z.array(PolicyRuleSchema).max(256),
  /**
   * Environment hints whose reported `unknown` this policy accepts for `affirming` (see the module
   * comment). Only these two names are allowed; no core verifier's outcome can be tolerated.
   */
  tolerateUnknown: z
    .array(z.enum(TOLERABLE_UNKNOWNS))
    .max(TOLERABLE_UNKNOWNS.length)
    .refine((a) => new Set(a).size === a.length, { message: 'duplicate names' })
    .optional(),
});
export type Policy = z.infer<typeof PolicySchema>;

/** The deepest condition nesting a policy may use (`not`, `all`, `any` inside one another). */
export const MAX_POLICY_CONDITION_DEPTH = 16;
/** The deepest JSON nesting a policy document may have at all (a rule's condition sits 4 levels down). */
const MAX_POLICY_JSON_DEPTH = 4 + 2 * MAX_POLICY_CONDITION_DEPTH;

/**
 * True when a policy document nests deeper than the policy language allows: a condition more than
 * `MAX_POLICY_CONDITION_DEPTH` levels deep, or any JSON more than `MAX_POLICY_JSON_DEPTH` levels deep.
 * Iterative with an explicit stack, so a hostile 5,000-level document costs a linear walk and never the
 * call stack; run it before the (recursive) zod schema sees the document.
 */
export function policyTooDeep(doc: unknown): boolean {
  const stack: { value: unknown; depth: number; conditionDepth: number }[] = [
    { value: doc, depth: 1, conditionDepth: 0 },
  ];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value, depth, conditionDepth } = item;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_POLICY_JSON_DEPTH || conditionDepth > MAX_POLICY_CONDITION_DEPTH) return true;
    if (Array.isArray(value)) {
      for (const child of value) stack.push({ value: child, depth: depth + 1, conditionDepth });
      continue;
    }
    const record = value as Record<string, unknown>;
    for (const [key, child] of Object.entries(record)) {
      let nextCondition = conditionDepth;
      // A rule's `when` (policy 1, rules 2, rule 3) is a condition; in one, `not`, `all`, `any` hold more.
      if (key === 'when' && depth === 3) nextCondition = 1;
      else if (conditionDepth > 0 && (key === 'not' || key === 'all' || key === 'any'))
        nextCondition = conditionDepth + 1;
      stack.push({ value: child, depth: depth + 1, conditionDepth: nextCondition });
    }
  }
  return false;
}

/** Parses a policy document from outside (operator upload, file). */
export function parsePolicy(
  doc: unknown,
): Result<{ policy: Policy }, 'POS_ERR_POLICY_INVALID' | 'POS_ERR_POLICY_TOO_DEEP'> {
  if (policyTooDeep(doc)) {
    return err(
      'POS_ERR_POLICY_TOO_DEEP',
      `the policy nests conditions deeper than ${MAX_POLICY_CONDITION_DEPTH} levels`,
    );
  }
  const parsed = PolicySchema.safeParse(doc);
  if (!parsed.success) {
    const where = parsed.error.issues[0]?.path.map(String).join('.') ?? '';
    return err(
      'POS_ERR_POLICY_INVALID',
      `the policy does not match the policy schema${where === '' ? '' : ` (at ${where})`}`,
    );
  }
  return ok({ policy: parsed.data });
}

/**
 * The core verifiers: every policy is evaluated as if it required them (the union with its own
 * `requiredVerifiers`), so no policy can be less strict than the core; an upload that leaves one out is
 * refused (`missingCoreVerifiers`).
 */
export const CORE_REQUIRED_VERIFIERS: readonly string[] = [
  'format',
  'signature',
  'subject',
  'challenge',
  'counter',
  'clock',
  'purpose',
  'reader',
  'release',
  'shell',
  'runtime',
];
const CORE_REQUIRED = [...CORE_REQUIRED_VERIFIERS];

/** The core verifiers a policy's `requiredVerifiers` leaves out (an operator upload must name them all). */
export function missingCoreVerifiers(policy: Pick<Policy, 'requiredVerifiers'>): string[] {
  return CORE_REQUIRED_VERIFIERS.filter((v) => !policy.requiredVerifiers.includes(v));
}

/** The verifiers a policy is evaluated with: the core ones and its own, never fewer than the core. */
export function effectiveRequiredVerifiers(policy: Pick<Policy, 'requiredVerifiers'>): string[] {
  return [...new Set([...CORE_REQUIRED_VERIFIERS, ...policy.requiredVerifiers])];
}

/** The development policy: the browser shell may take PINs when the release allows it. */
export const DEFAULT_POLICY: Policy = {
  schema: 1,
  version: 'dev-2',
  description:
    'Development: every verifier runs; the browser shell is allowed where the release allows it; a machine that cannot show whether it is virtual, or whether screen capture is blocked, may still take a test sale.',
  requiredVerifiers: CORE_REQUIRED,
  unmet: 'warning',
  tolerateUnknown: ['virtual-machine', 'screen-capture-protection'],
  rules: [
    {
      id: 'remote-session-warns',
      when: { measurement: 'remote-session', status: ['fail'] },
      effect: 'warn',
      category: 'runtime-opaque',
      reason: { code: 'REMOTE_SESSION', text: 'The computer is controlled through a remote session.' },
    },
  ],
};

/** The production policy: no PIN entry from the browser shell, no development builds, no remote sessions. */
export const PRODUCTION_POLICY: Policy = {
  schema: 1,
  version: 'prod-1',
  description:
    'Production: no PIN entry from the browser shell; development builds and remote sessions halt.',
  requiredVerifiers: [...CORE_REQUIRED, 'fuses', 'executable', 'environment'],
  unmet: 'warning',
  rules: [
    {
      id: 'no-pin-in-browser',
      when: { shell: ['browser'] },
      effect: 'warn',
      category: 'configuration',
      value: AR4SI.WARNING,
      reason: {
        code: 'BROWSER_SHELL_NO_PIN',
        text: 'PIN entry is not allowed from a web browser; use the desktop app.',
      },
    },
    {
      id: 'no-development-builds',
      when: { build: ['development'] },
      effect: 'contraindicate',
      category: 'executables',
      reason: { code: 'DEVELOPMENT_BUILD', text: 'A development build of the app may not take payments.' },
    },
    {
      id: 'remote-session-halts',
      when: { measurement: 'remote-session', status: ['fail'] },
      effect: 'contraindicate',
      category: 'runtime-opaque',
      reason: { code: 'REMOTE_SESSION', text: 'The computer is controlled through a remote session.' },
    },
  ],
};

function matches(c: Condition, a: Appraisal): boolean {
  const claims = a.claims;
  if ('all' in c) return c.all.every((x) => matches(x, a));
  if ('any' in c) return c.any.some((x) => matches(x, a));
  if ('not' in c) return !matches(c.not, a);
  if ('verifier' in c) {
    return a.outcomes.some(
      (o) =>
        o.verifier === c.verifier &&
        (c.status === undefined || c.status.includes(o.status)) &&
        (c.code === undefined || (o.code !== undefined && c.code.includes(o.code))),
    );
  }
  if (claims === undefined) return false;
  if ('measurement' in c) {
    const m = claims.measurements.find((x) => x.name === c.measurement);
    return c.status.includes(m?.status ?? 'unknown');
  }
  if ('shell' in c) return c.shell.includes(claims.shell);
  if ('build' in c) return c.build.includes(claims.app.build);
  if ('purpose' in c) return c.purpose.includes(claims.purpose);
  return c.appVersion.includes(claims.app.version);
}

interface Evaluated {
  tier: TrustTier;
  trustVector: Record<Ar4siCategory, number>;
  reasons: { code: string; text: string }[];
  halt: boolean;
}

function isUnappraisable(o: VerifierOutcome): boolean {
  return o.status === 'fail' && tierOfValue(outcomeValue(o)) === 'none';
}

/**
 * True when `o` is the environment verifier's `unknown`, every environment hint the evidence reports
 * is `ok` or a reported `unknown` that the policy tolerates (none absent, none failed, at least one
 * such unknown), and the policy does not require the environment verifier.
 */
function toleratedUnknown(policy: Policy, appraisal: Appraisal, o: VerifierOutcome): boolean {
  const tolerate: readonly string[] = policy.tolerateUnknown ?? [];
  if (tolerate.length === 0 || o.verifier !== 'environment' || o.status !== 'unknown') return false;
  if (effectiveRequiredVerifiers(policy).includes('environment')) return false;
  const claims = appraisal.claims;
  if (claims === undefined) return false;
  let explained = false;
  for (const signal of ENVIRONMENT_SIGNALS) {
    const m = claims.measurements.find((x) => x.name === signal);
    if (m === undefined || m.status === 'fail') return false;
    if (m.status === 'unknown') {
      if (!tolerate.includes(signal)) return false;
      explained = true;
    }
  }
  // The unknown must be explained by a tolerated hint the evidence reports as unknown.
  return explained;
}

function evaluateOne(policy: Policy, appraisal: Appraisal): Evaluated {
  const reasons: { code: string; text: string }[] = [];
  const addReason = (code: string, text: string): void => {
    if (!reasons.some((r) => r.code === code)) reasons.push({ code, text });
  };
  // The vector from the outcomes themselves, never less severe than the one the appraisal carries.
  const vector = vectorOf(appraisal.outcomes);
  for (const c of AR4SI_CATEGORIES) {
    const given = appraisal.trustVector[c];
    if (typeof given === 'number' && Number.isInteger(given)) vector[c] = moreSevere(vector[c], given);
  }
  for (const o of appraisal.outcomes) {
    if (o.status !== 'pass' && o.code !== undefined) addReason(o.code, reasonText(o.code));
  }
  if (appraisal.outcomes.some((o) => o.status === 'error')) {
    addReason('POS_ERR_ATTEST_VERIFIER_ERROR', reasonText('POS_ERR_ATTEST_VERIFIER_ERROR'));
    return { tier: 'contraindicated', trustVector: vector, reasons, halt: true };
  }
  for (const rule of policy.rules) {
    if (!matches(rule.when, appraisal)) continue;
    const value = rule.value ?? (rule.effect === 'warn' ? AR4SI.WARNING : AR4SI.CONTRAINDICATED);
    vector[rule.category] = moreSevere(vector[rule.category], value);
    addReason(rule.reason.code, rule.reason.text);
  }
  const tiers = Object.values(vector).map(tierOfValue);
  let tier: TrustTier;
  if (tiers.includes('contraindicated')) tier = 'contraindicated';
  else if (appraisal.claims === undefined || appraisal.outcomes.some(isUnappraisable)) tier = 'none';
  else if (tiers.includes('warning')) tier = 'warning';
  else {
    // The core verifiers are required whatever the policy lists (a policy only adds to them).
    const unmet = effectiveRequiredVerifiers(policy).filter((v) => {
      const mine = appraisal.outcomes.filter((o) => o.verifier === v);
      return mine.length === 0 || mine.some((o) => o.status !== 'pass');
    });
    // Any outcome that is not a pass (an unknown in a verifier the policy does not require included)
    // caps the tier at `unmet` (warning or none): only an all-pass appraisal is affirming, but for an
    // environment hint the policy names in `tolerateUnknown`.
    const failedAny = appraisal.outcomes.some(
      (o) => o.status !== 'pass' && !toleratedUnknown(policy, appraisal, o),
    );
    if (unmet.length > 0 || failedAny) {
      tier = policy.unmet;
      if (reasons.length === 0)
        addReason('POS_ERR_ATTEST_INCOMPLETE', reasonText('POS_ERR_ATTEST_INCOMPLETE'));
    } else tier = 'affirming';
  }
  return { tier, trustVector: vector, reasons, halt: tier === 'contraindicated' };
}

function safeEvaluate(policy: Policy, appraisal: Appraisal): Evaluated {
  try {
    const e = evaluateOne(policy, appraisal);
    if (!TRUST_TIERS.includes(e.tier)) throw new Error('tier');
    return e;
  } catch {
    return {
      tier: 'contraindicated',
      trustVector: { ...emptyVector(), ...appraisal.trustVector },
      reasons: [{ code: 'POS_ERR_ATTEST_POLICY_ERROR', text: reasonText('POS_ERR_ATTEST_POLICY_ERROR') }],
      halt: true,
    };
  }
}

/**
 * The verdict of `policy` on an appraisal, with each shadow policy evaluated and reported but not
 * enforced. Never throws: a policy that fails to evaluate yields contraindicated.
 */
export function evaluatePolicy(
  policy: Policy,
  appraisal: Appraisal,
  shadowPolicies: readonly Policy[] = [],
): Verdict {
  const main = safeEvaluate(policy, appraisal);
  const shadow = shadowPolicies.map((p) => {
    const e = safeEvaluate(p, appraisal);
    return { policyVersion: p.version, tier: e.tier, halt: e.halt };
  });
  return {
    tier: main.tier,
    trustVector: main.trustVector,
    reasons: main.reasons,
    policyVersion: policy.version,
    halt: main.halt,
    shadow,
    appraisedAt: appraisal.appraisedAt,
    ...(appraisal.claims === undefined ? {} : { purpose: appraisal.claims.purpose }),
  };
}
