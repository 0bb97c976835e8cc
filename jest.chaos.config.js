/**
 * Fault tests (issue 6): real worker processes (the compiled build, so `npm run chaos` builds
 * first) against real Redis, a real MongoDB-compatible server and the Feishu-compatible server,
 * with a fault injected mid-delivery. One scenario at a time: they start processes and servers of
 * their own and measure timing, so running them side by side would only make them flaky.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/chaos'],
  testMatch: ['**/*.chaos.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }] },
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
  testTimeout: 600000,
  maxWorkers: 1,
};
