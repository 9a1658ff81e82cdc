// electron-builder configuration of the merchant terminal (docs/electron.md). `npm run package -w
// desktop` (scripts/package.ts) bundles and stages dist/app first, then builds from it with this file.
// Fuses are flipped by the afterPack hook (scripts/after-pack.ts) from the one decision table in
// scripts/fuses.ts, not by `electronFuses`, so an undecided fuse stops the build.

/** @type {import('electron-builder').Configuration} */
const config = {
  appId: 'com.example.pos.terminal',
  productName: 'POS Terminal',
  copyright: 'POS',
  directories: {
    // The staged app (bundles, renderer, a package.json naming only the native dependencies).
    app: 'dist/app',
    output: 'dist/release',
  },
  files: ['**/*', '!**/*.map'],
  asar: true,
  // Native bindings cannot be loaded from inside an asar: the reader's serial and HID modules are
  // unpacked to app.asar.unpacked (still covered by the code-signing of the app on macOS/Windows, not
  // by the asar hash; docs/electron.md).
  asarUnpack: [
    'node_modules/@serialport/bindings-cpp/**',
    'node_modules/node-hid/**',
    'node_modules/**/*.node',
  ],
  // Rebuild the native modules for Electron's ABI.
  npmRebuild: true,
  buildDependenciesFromSource: false,
  afterPack: './scripts/after-pack-hook.mjs',
  publish: null,
  linux: {
    target: ['AppImage', 'deb'],
    category: 'Finance',
    executableName: 'pos-terminal',
  },
  deb: {
    // node-hid's Linux binding loads libusb at run time.
    depends: ['libusb-1.0-0'],
  },
  win: {
    target: ['nsis'],
  },
  nsis: {
    oneClick: false,
    perMachine: true,
    allowToChangeInstallationDirectory: false,
  },
  mac: {
    target: ['dmg'],
    category: 'public.app-category.finance',
    hardenedRuntime: true,
  },
};

export default config;
