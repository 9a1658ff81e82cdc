/**
 * The registry of `POS_ERR_*` codes raised by @pos/device-sim (the reader simulator and its CLI).
 * Codes of the reader protocol itself live in @pos/shared. Every code here is documented in
 * docs/errors.md.
 */
export const DEVICE_SIM_ERRORS = {
  POS_ERR_SIM_STATE_DIR: 'The state directory cannot be created, read or written.',
} as const satisfies Record<`POS_ERR_${string}`, string>;

export type DeviceSimErrorCode = keyof typeof DEVICE_SIM_ERRORS;
