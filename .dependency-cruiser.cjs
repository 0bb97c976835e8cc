/**
 * dependency-cruiser: the shape of the import graph. Run by `npm run lint` (lint:deps).
 *
 * tsPreCompilationDeps: true reads the TypeScript source before compilation, so type-only
 * imports (`import type`, `import { type X }`, imports TypeScript would elide, and `import('./x').T`
 * type expressions) are edges of the graph too: a cycle made only of types still fails.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles, type-only imports included. Break the cycle by moving the shared piece (often a type) into a module both can import.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'src-not-to-processors',
      severity: 'error',
      comment: 'src/ is the library the BullMQ processors are built on; processors/ wires it to queues. src/ must not reach back into processors/.',
      from: { path: '^src/' },
      to: { path: '^processors/' },
    },
    {
      name: 'src-not-to-test-or-scripts',
      severity: 'error',
      comment: 'Shipped code must not import the test suite, its support code, or the dev/bench scripts.',
      from: { path: '^src/' },
      to: { path: '^(test|scripts)/' },
    },
    {
      name: 'runtime-not-to-test-or-scripts',
      severity: 'error',
      comment: 'queues/, processors/ and dashboard/ run in production too: no test or script imports.',
      from: { path: '^(queues|processors|dashboard)/' },
      to: { path: '^(test|scripts)/' },
    },
    {
      name: 'web-stays-in-web',
      severity: 'error',
      comment: 'web/app is browser code bundled by esbuild: it must not pull in the Node side of the tree.',
      from: { path: '^web/' },
      to: { path: '^(src|queues|processors|dashboard|scripts|test)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to nothing on disk.',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'runtime-not-to-dev-dep',
      severity: 'error',
      comment: 'Production code must not need a devDependency at run time (the slug is installed without them). Type-only imports are fine.',
      from: { path: '^(src|queues|processors|dashboard)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'], pathNot: ['node_modules/@types/'] },
    },
    {
      name: 'runtime-not-to-undeclared-package',
      severity: 'error',
      comment: 'Production code must import only packages package.json declares, not ones that happen to be installed as a dependency of a dependency.',
      from: { path: '^(src|queues|processors|dashboard)/' },
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules'] },
    exclude: { path: ['^(dist|\\.cache|\\.data|test-output|coverage|tools|docs)/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['main', 'types', 'typings'],
      extensions: ['.ts', '.js', '.json', '.d.ts'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
    progress: { type: 'none' },
    cache: false,
  },
};
