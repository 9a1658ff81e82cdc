/** The codes a reader-simulator result may carry: its own registry's and those of @pos/shared. */
import type { SharedErrorCode } from '@pos/shared';
import type { DeviceSimErrorCode } from './errors';

export type SimCode = DeviceSimErrorCode | SharedErrorCode | `POS_ERR_${string}`;
