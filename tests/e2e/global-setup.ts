/**
 * Builds the app once, as it ships (a production build, whatever NODE_ENV the test runner set), and
 * serves it with `vite preview` (COOP/COEP headers) on a free localhost port for the browser tests.
 * The URL reaches the tests through `inject('appUrl')`.
 */
import { build, preview, type PreviewServer } from 'vite';
import type { TestProject } from 'vitest/node';

let server: PreviewServer | undefined;

/** Vitest sets NODE_ENV to "test", which makes Svelte compile in dev mode: build with "production", then put it back. */
async function productionBuild(): Promise<void> {
  const previous = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ mode: 'production', logLevel: 'warn' });
  } finally {
    if (previous === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = previous;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await productionBuild();
  server = await preview({ preview: { port: 0, host: '127.0.0.1', strictPort: false }, logLevel: 'warn' });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview did not report a URL');
  project.provide('appUrl', url);
  return async () => {
    await server?.close();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    appUrl: string;
  }
}
