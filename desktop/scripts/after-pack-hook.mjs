// electron-builder loads hooks as JavaScript modules: this one loads the TypeScript hook through tsx.
import { register } from 'tsx/esm/api';

register();
const { afterPack } = await import('./after-pack.ts');

export { afterPack };
export default afterPack;
