// ESLint flat config: @eslint/js + typescript-eslint, type-aware for the TypeScript sources.
// Formatting is Prettier's job (.prettierrc.json); nothing here checks layout.
// Import cycles and layering are dependency-cruiser's job (.dependency-cruiser.cjs).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: ['dist/', 'node_modules/', '.cache/', '.data/', 'test-output/', 'test-results/', 'coverage/', 'tools/', 'docs/'],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },

  js.configs.recommended,
  tseslint.configs.recommended,

  // Type-aware rules: each .ts file is checked with the tsconfig nearest to it
  // (tsconfig.json for src, queues, processors, dashboard, scripts, test; web/tsconfig.json for web/app).
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Promises: the bugs a job system cannot afford (a lost rejection, a handler whose promise nobody awaits).
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-for-in-array': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/no-implied-eval': 'error',
      // Left out on purpose: no-unnecessary-type-assertion (style, ~7 s of the run) and switch-exhaustiveness-check
      // (the code handles some kinds in a switch and the rest after it). The rest of recommendedTypeChecked
      // (no-unsafe-*) would flag every deliberate `any` at the mongoose/zod/SDK boundaries.
    },
  },

  // Rules for the whole tree.
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrors: 'all',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // `any` is used deliberately at boundaries (mongoose documents, route tables, SDK payloads, test doubles);
      // strict tsc already refuses implicit any. The type-aware promise rules above are the ones that catch bugs.
      '@typescript-eslint/no-explicit-any': 'off',
      // The house style already marks type-only imports (`import type`); keep it consistent. Autofixed by lint:fix.
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'separate-type-imports', disallowTypeAnnotations: false }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // Shipped code logs through pino (src/logger.ts); it has no console.* today. Tests and scripts may print.
      'no-console': 'error',
    },
  },

  // Node code (CommonJS build).
  {
    files: ['src/**', 'queues/**', 'processors/**', 'dashboard/**', 'scripts/**', 'test/**', '*.js', '*.cjs', '*.mjs'],
    languageOptions: { globals: { ...globals.node } },
  },
  // Browser code: DOM, no Node.
  {
    files: ['web/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  // Tests.
  {
    files: ['test/**'],
    languageOptions: { globals: { ...globals.jest } },
  },
  {
    files: ['test/**', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
  // Plain JS config files at the root are CommonJS.
  {
    files: ['*.js', '*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
