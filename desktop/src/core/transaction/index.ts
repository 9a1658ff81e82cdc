export * from './engine';
export * from './pin-buffer';
export * from './ports';
