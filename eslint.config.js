// Lint rules that carry the code's habits: no floating promises, no `export *`; the proxy never
// imports controller code or the Kubernetes client; runtime/ (shared by both) imports neither either.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'api/generated/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportAllDeclaration', message: 'Name the public surface explicitly; no `export *`.' },
      ],
    },
  },
  {
    files: ['proxy/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/controller/**'], message: 'The proxy must not import controller code; share api/ (the contract) and runtime/ (logger, admin, listen, process life).' },
            { group: ['@kubernetes/*'], message: 'The proxy must not depend on the Kubernetes client.' },
          ],
        },
      ],
    },
  },
  {
    // Both processes import runtime/, so it must pull in nothing the proxy may not: no controller
    // code, no Kubernetes client, no gRPC; nor api/ (which imports runtime/) or the proxy.
    files: ['runtime/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/controller/**', '**/proxy/**', '**/api/**'], message: 'runtime/ is shared by the proxy and the controller: it imports neither, nor api/.' },
            { group: ['@kubernetes/*'], message: 'runtime/ must not pull the Kubernetes client into the proxy.' },
            { group: ['@grpc/*'], message: 'runtime/ must not pull gRPC (the controller\'s server) into the proxy.' },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Fakes stand in for async APIs without awaiting anything.
      '@typescript-eslint/require-await': 'off',
    },
  },
  { files: ['eslint.config.js', 'vitest.config.ts'], ...tseslint.configs.disableTypeChecked },
);
