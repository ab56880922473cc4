/**
 * How many threads a page may ask tfjs's threaded wasm build for (docs/engine.md#threads): the
 * pthread workers that build starts with. A module of its own so the page imports one number, no
 * engine.
 */
export const MAX_WASM_THREADS = 8;
