/** The codes a desktop-core result may carry: its own registry's, those of @pos/shared, and any passed through. */
import type { SharedErrorCode } from '@pos/shared';
import type { DesktopErrorCode } from '../errors';

export type DesktopCode = DesktopErrorCode | SharedErrorCode | `POS_ERR_${string}`;
