/** @type {import('jest').Config} */
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.tsx?$': ['ts-jest', { useESM: true, diagnostics: { warnOnly: false } }] },
  moduleNameMapper: {
    // The built-in plugins import the package's public entry, as a third party does.
    '^stagepost/plugin-api$': '<rootDir>/src/plugin-api.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testTimeout: 60000,
  maxWorkers: 2,
};
