// One linter for the whole workspace. Besides typescript-eslint's type-aware rules it enforces where
// code runs (the VS Code way): shared/ touches neither Node nor the DOM, and only the Electron main
// and preload import `electron`.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'module',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'string_decoder',
  'timers',
  'tls',
  'tty',
  'url',
  'util',
  'v8',
  'vm',
  'worker_threads',
  'zlib',
];

const electronOnlyInMainAndPreload = {
  name: 'electron',
  message:
    'Only desktop/src/main and desktop/src/preload may import electron: everything else runs under plain Node.',
};

const noNodeInApi = 'desktop/src/api is shared by the renderer and the core: no Node built-ins, no DOM.';
const rendererMessage =
  'The renderer runs in a browser: no Node built-ins, no electron, and it reaches the core only through the UI API (desktop/src/api).';

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/coverage/**',
      'shared/test/vectors/**',
      'test-results/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    rules: {
      'no-restricted-imports': ['error', { paths: [electronOnlyInMainAndPreload] }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['shared/src/**/*.ts'],
    languageOptions: { globals: { ...globals['shared-node-browser'] } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            electronOnlyInMainAndPreload,
            ...nodeBuiltins.map((name) => ({
              name,
              message: 'shared/ has no I/O and runs in the browser too: no Node built-ins.',
            })),
          ],
          patterns: [
            {
              group: ['node:*'],
              message: 'shared/ has no I/O and runs in the browser too: no Node built-ins.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...[
          'process',
          'Buffer',
          'require',
          '__dirname',
          '__filename',
          'global',
          'window',
          'document',
          'navigator',
          'localStorage',
        ].map((name) => ({ name, message: 'shared/ touches neither Node nor the DOM.' })),
      ],
      'no-console': 'error',
    },
  },
  {
    // The UI API is imported by the renderer, the preload and the core: like shared/, no Node, no DOM.
    files: ['desktop/src/api/**/*.ts'],
    languageOptions: { globals: { ...globals['shared-node-browser'] } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            electronOnlyInMainAndPreload,
            ...nodeBuiltins.map((name) => ({ name, message: noNodeInApi })),
          ],
          patterns: [{ group: ['node:*'], message: noNodeInApi }],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['process', 'Buffer', 'require', 'global', 'window', 'document', 'localStorage'].map((name) => ({
          name,
          message: noNodeInApi,
        })),
      ],
    },
  },
  {
    // The renderer runs in a browser (or Electron's sandboxed renderer): browser globals only, and it
    // reaches the core through the UI API alone, never by importing the core.
    files: ['desktop/src/renderer/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            electronOnlyInMainAndPreload,
            ...nodeBuiltins.map((name) => ({ name, message: rendererMessage })),
          ],
          patterns: [
            { group: ['node:*'], message: rendererMessage },
            {
              group: [
                '**/core/**',
                '**/headless/**',
                '**/main/**',
                '**/preload/**',
                '**/cli/**',
                '@pos/backend/**',
              ],
              message: rendererMessage,
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['process', 'Buffer', 'require', '__dirname', '__filename', 'global'].map((name) => ({
          name,
          message: rendererMessage,
        })),
      ],
    },
  },
  {
    // The operator dashboard (React, built by Vite, served at /dashboard): a browser app that talks to
    // the back-end over HTTP only, never by importing it.
    files: ['backend/dashboard/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'The dashboard runs in a browser.' })),
          patterns: [
            { group: ['node:*'], message: 'The dashboard runs in a browser.' },
            {
              group: ['**/src/**', '@pos/backend/**'],
              message: 'The dashboard reaches the back-end over HTTP only.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['desktop/src/main/**/*.ts', 'desktop/src/preload/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  prettier,
);
