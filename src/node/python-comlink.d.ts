/** Types for Comlink's Node adapter (the package ships them as node-adapter.d.ts, unseen next to the .mjs). */
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink';
  import type { MessagePort, Worker } from 'node:worker_threads';

  /** A worker_threads Worker (parent side) or parentPort (worker side). */
  export type NodeEndpoint = Pick<Worker | MessagePort, 'postMessage' | 'on' | 'off'> & { start?: () => void };

  export default function nodeEndpoint(endpoint: NodeEndpoint): Endpoint;
}
