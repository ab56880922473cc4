/** The policy worker: holds the model and runs generation and training off the main thread. */
import * as Comlink from 'comlink';
import * as tf from '@tensorflow/tfjs';
import { selectBrowserBackend } from '../src/app/lib/tfjs-browser';
import type { BackendInfo, BackendName } from '../src/core/backend';

const api = {
  async init(order?: BackendName[]): Promise<BackendInfo> {
    return selectBrowserBackend(order);
  },
  memory(): { numTensors: number; numBytes: number } {
    const m = tf.memory();
    return { numTensors: m.numTensors, numBytes: m.numBytes };
  },
};

export type PolicyWorkerApi = typeof api;
Comlink.expose(api);
