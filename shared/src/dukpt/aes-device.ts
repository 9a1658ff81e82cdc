/**
 * AES DUKPT, device side (ANSI X9.24-3-2017 section 6, the device algorithm: Load_Initial_Key,
 * Generate_Working_Keys, Update_State_for_next_Transaction, Update_Derivation_Keys, Set_Shift_Register).
 *
 * The device never holds the BDK. It loads its initial key once, derives the 32 intermediate derivation
 * key registers from it ("future keys": register i holds the key for counter 2^i), and then wipes its copy
 * of the initial key. For each transaction with counter c, whose lowest one-bit is bit p:
 *
 * 1. The working keys come from register p with the full counter c (one derivation each).
 * 2. If c has fewer than 16 one-bits, registers p-1 .. 0 receive the keys for c | 2^(p-1) .. c | 2^0
 *    (at most 31 derivations), and the next counter is c + 1. A counter with 16 one-bits generates no
 *    future keys (they would have 17) and the next counter is c + 2^p.
 * 3. Register p is wiped, so the key for c can never be derived again.
 *
 * After counter 0xFFFF0000 (the largest with 16 one-bits) the device is exhausted.
 *
 * Register invariant, for a device whose next counter is c with lowest one-bit p: register i holds a key
 * exactly when i = p, or i > p and bit i of c is 0; that key belongs to counter (c with bits i..0 cleared)
 * + 2^i. `restore` checks this invariant exactly.
 */
import type { AesKsn } from '../brand';
import { parseHex, toHex, wipe } from '../bytes';
import { err, ok, type Result } from '../result';
import { checkAesDerivationKey, checkWorkingKeyRequest } from './aes';
import {
  deriveFor,
  keyTypeLength,
  usageCode,
  USAGE_KEY_DERIVATION,
  type AesDukptDeriveKeyType,
  type AesDukptKeyType,
  type DukptKeyUsage,
} from './aes-derive';
import {
  AES_IKID_LENGTH,
  AES_KSN_MAX_COUNTER,
  AES_KSN_MAX_ONE_BITS,
  isValidAesCounter,
  lowestSetBit,
  lowestSetBitIndex,
  makeAesKsn,
  oneBits,
} from './ksn';

/** Number of intermediate derivation key registers (one per counter bit). */
export const AES_DUKPT_REGISTERS = 32;
/** The `counter` of an exhausted device's state: one past the 32-bit range. */
export const AES_DUKPT_EXHAUSTED_COUNTER = 0x1_0000_0000;

/**
 * The state a reader persists between transactions. Secret: the registers are keys. `counter` is the
 * counter the next transaction will use (AES_DUKPT_EXHAUSTED_COUNTER = 2^32 once the device is used up,
 * with every register null). `registers[i]` is the upper-case hex of intermediate derivation key register
 * i, or null when the register is empty.
 */
export interface AesDukptDeviceState {
  readonly version: 1;
  readonly initialKeyId: string;
  readonly deriveKeyType: 'aes128' | 'aes192' | 'aes256';
  readonly counter: number;
  readonly registers: readonly (string | null)[];
}

/** Whether register i must hold a key when the next counter is `counter` (see the invariant above). */
function registerExpected(counter: number, i: number): boolean {
  if (counter === AES_DUKPT_EXHAUSTED_COUNTER) return false;
  const p = lowestSetBitIndex(counter);
  if (i === p) return true;
  return i > p && Math.floor(counter / 2 ** i) % 2 === 0;
}

function stateError(detail: string): Result<{ device: AesDukptDevice }> {
  return err('POS_ERR_DUKPT_DEVICE_STATE_INVALID', detail);
}

const STATE_KEYS = ['version', 'initialKeyId', 'deriveKeyType', 'counter', 'registers'] as const;

export class AesDukptDevice {
  readonly #initialKeyId: Uint8Array;
  readonly #deriveKeyType: AesDukptDeriveKeyType;
  #counter: number;
  readonly #registers: (Uint8Array | null)[];

  private constructor(
    initialKeyId: Uint8Array,
    deriveKeyType: AesDukptDeriveKeyType,
    counter: number,
    registers: (Uint8Array | null)[],
  ) {
    this.#initialKeyId = initialKeyId;
    this.#deriveKeyType = deriveKeyType;
    this.#counter = counter;
    this.#registers = registers;
  }

  /**
   * Load_Initial_Key: builds a fresh device (next counter 1) from its initial key and 8-byte initial key
   * ID. The key type (aes128/aes192/aes256) follows from the key length. The device works on a copy of
   * `initialKey` and wipes that copy once the 32 registers are derived; the caller still owns and must
   * wipe `initialKey` itself.
   */
  static load(initialKey: Uint8Array, initialKeyId: Uint8Array): Result<{ device: AesDukptDevice }> {
    const checked = checkAesDerivationKey(initialKey, 'initial key');
    if (!checked.ok) return checked;
    if (!(initialKeyId instanceof Uint8Array) || initialKeyId.length !== AES_IKID_LENGTH) {
      return err('POS_ERR_LENGTH', `the initial key ID must be ${AES_IKID_LENGTH} bytes`);
    }
    const type = checked.type;
    const ik = initialKey.slice();
    const ikid = initialKeyId.slice();
    const registers: (Uint8Array | null)[] = [];
    // Update_Derivation_Keys from the top register with counter 0: register i = key for counter 2^i.
    for (let i = 0; i < AES_DUKPT_REGISTERS; i++) {
      registers.push(deriveFor(ik, USAGE_KEY_DERIVATION, type, ikid, 2 ** i));
    }
    wipe(ik);
    return ok({ device: new AesDukptDevice(ikid, type, 1, registers) });
  }

  /**
   * Rebuilds a device from `exportState()` output. Checks the shape, the hex, the key lengths, the counter
   * and that exactly the registers the counter needs are present; anything else is
   * POS_ERR_DUKPT_DEVICE_STATE_INVALID. Never throws. The device copies what it keeps.
   */
  static restore(state: unknown): Result<{ device: AesDukptDevice }> {
    try {
      return AesDukptDevice.#restore(state);
    } catch {
      // Only reachable with exotic input (a getter or proxy that throws): still a Result, never a throw.
      return stateError('the device state could not be read');
    }
  }

  static #restore(state: unknown): Result<{ device: AesDukptDevice }> {
    if (typeof state !== 'object' || state === null || Array.isArray(state)) {
      return stateError('the device state must be an object');
    }
    const record = state as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!(STATE_KEYS as readonly string[]).includes(key)) {
        return stateError('the device state has a field version 1 does not define');
      }
    }
    if (record['version'] !== 1) return stateError('the device state version must be 1');
    const deriveKeyType = record['deriveKeyType'];
    if (deriveKeyType !== 'aes128' && deriveKeyType !== 'aes192' && deriveKeyType !== 'aes256') {
      return stateError('deriveKeyType must be aes128, aes192 or aes256');
    }
    const ikidText = record['initialKeyId'];
    if (typeof ikidText !== 'string') return stateError('initialKeyId must be a hex string');
    const ikid = parseHex(ikidText, AES_IKID_LENGTH, 'initialKeyId');
    if (!ikid.ok) return stateError(`initialKeyId must be ${AES_IKID_LENGTH} bytes of hex`);
    const counter = record['counter'];
    if (
      typeof counter !== 'number' ||
      (counter !== AES_DUKPT_EXHAUSTED_COUNTER && !isValidAesCounter(counter))
    ) {
      return stateError('counter must be 1..0xFFFF0000 with at most 16 one-bits, or 2^32 when exhausted');
    }
    const registersValue = record['registers'];
    if (!Array.isArray(registersValue) || registersValue.length !== AES_DUKPT_REGISTERS) {
      return stateError(`registers must be an array of ${AES_DUKPT_REGISTERS} entries`);
    }
    const keyLength = keyTypeLength(deriveKeyType);
    const registers: (Uint8Array | null)[] = [];
    const fail = (detail: string): Result<{ device: AesDukptDevice }> => {
      wipe(...registers.map((r) => r ?? undefined));
      return stateError(detail);
    };
    for (let i = 0; i < AES_DUKPT_REGISTERS; i++) {
      const entry: unknown = registersValue[i];
      const expected = registerExpected(counter, i);
      if (entry === null) {
        if (expected) return fail(`register ${i} is empty but counter needs it`);
        registers.push(null);
        continue;
      }
      if (typeof entry !== 'string') return fail(`register ${i} must be hex or null`);
      if (!expected) return fail(`register ${i} holds a key the counter does not allow`);
      const parsed = parseHex(entry, keyLength, `register ${i}`);
      if (!parsed.ok) return fail(`register ${i} must be ${keyLength} bytes of hex`);
      registers.push(parsed.bytes);
    }
    return ok({ device: new AesDukptDevice(ikid.bytes, deriveKeyType, counter, registers) });
  }

  /** The state to persist. Contains secret keys: store it as securely as the initial key. */
  exportState(): AesDukptDeviceState {
    return {
      version: 1,
      initialKeyId: toHex(this.#initialKeyId),
      deriveKeyType: this.#deriveKeyType,
      counter: this.#counter,
      registers: this.#registers.map((r) => (r === null ? null : toHex(r))),
    };
  }

  /** The KSN the next transaction will use, or undefined when the device is exhausted. */
  get currentKsn(): AesKsn | undefined {
    if (this.#counter === AES_DUKPT_EXHAUSTED_COUNTER) return undefined;
    return makeAesKsn(this.#initialKeyId, this.#counter);
  }

  /**
   * Derives the working keys for the current KSN, then advances the state (erasing the used register) so
   * that KSN can never be used again. The caller persists exportState() BEFORE using the keys
   * (write-ahead): if the process dies after this call, the restored device resumes at the next counter.
   * Each requested `keyType` defaults to the device's own type; a type stronger than it is
   * POS_ERR_DUKPT_KEY_TOO_STRONG. Requests are checked before anything changes, so a bad request does not
   * use up a counter. POS_ERR_KSN_EXHAUSTED after counter 0xFFFF0000.
   */
  nextTransaction(
    keys: readonly { usage: DukptKeyUsage; keyType?: AesDukptKeyType }[],
  ): Result<{ ksn: AesKsn; keys: Uint8Array[] }> {
    const counter = this.#counter;
    if (counter === AES_DUKPT_EXHAUSTED_COUNTER) {
      return err('POS_ERR_KSN_EXHAUSTED', 'the device has used its last AES DUKPT counter');
    }
    if (!Array.isArray(keys))
      return err('POS_ERR_DUKPT_KEY_USAGE_UNKNOWN', 'keys must be a list of requests');
    const requests: { usage: DukptKeyUsage; keyType: AesDukptKeyType }[] = [];
    for (const request of keys as readonly unknown[]) {
      const r = (typeof request === 'object' && request !== null ? request : {}) as Record<string, unknown>;
      const checked = checkWorkingKeyRequest(r['usage'], r['keyType'], this.#deriveKeyType);
      if (!checked.ok) return checked;
      requests.push({ usage: checked.usage, keyType: checked.keyType });
    }

    // Set_Shift_Register: the current key register is the lowest one-bit of the counter.
    const p = lowestSetBitIndex(counter);
    const base = this.#registers[p];
    if (base === null || base === undefined) {
      return err('POS_ERR_DUKPT_DEVICE_STATE_INVALID', `register ${p} is empty for the current counter`);
    }

    // Generate_Working_Keys: each from the current register with the full counter.
    const working = requests.map((req) =>
      deriveFor(base, usageCode(req.usage), req.keyType, this.#initialKeyId, counter),
    );

    // Update_State_for_next_Transaction.
    let next: number;
    if (oneBits(counter) < AES_KSN_MAX_ONE_BITS) {
      // Update_Derivation_Keys below the current register: register i = key for counter | 2^i.
      for (let i = p - 1; i >= 0; i--) {
        wipe(this.#registers[i] ?? undefined);
        this.#registers[i] = deriveFor(
          base,
          USAGE_KEY_DERIVATION,
          this.#deriveKeyType,
          this.#initialKeyId,
          counter + 2 ** i,
        );
      }
      next = counter + 1;
    } else {
      next = counter + lowestSetBit(counter);
    }
    wipe(base);
    this.#registers[p] = null;
    this.#counter = next > AES_KSN_MAX_COUNTER ? AES_DUKPT_EXHAUSTED_COUNTER : next;
    if (this.#counter === AES_DUKPT_EXHAUSTED_COUNTER) this.wipe();

    return ok({ ksn: makeAesKsn(this.#initialKeyId, counter), keys: working });
  }

  /** Wipes every register; the device is exhausted afterwards. */
  wipe(): void {
    for (let i = 0; i < this.#registers.length; i++) {
      wipe(this.#registers[i] ?? undefined);
      this.#registers[i] = null;
    }
    this.#counter = AES_DUKPT_EXHAUSTED_COUNTER;
  }
}
