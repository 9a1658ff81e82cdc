import { defineConfig } from 'vitest/config';

// One run covers every workspace: each is a vitest project named after its folder.
export default defineConfig({
  test: {
    projects: ['shared', 'device-sim', 'backend', 'desktop', 'tools', 'test'].map((name) => ({
      extends: true,
      test: {
        name,
        root: `./${name}`,
        // `test/security/` (the top-level test workspace's OWASP API groups) sits beside its `test/`.
        include: ['test/**/*.test.ts', 'src/**/*.test.ts', 'security/**/*.test.ts'],
      },
    })),
    passWithNoTests: true,
    testTimeout: 30_000,
  },
});
