/**
 * The lab service of this tab, as the page sees it: the LabApi of the policy worker. Jobs and models
 * go to the worker over Comlink (event callbacks cross as proxies); the stored runs are read from the
 * same IndexedDB the worker writes, so the Runs panel answers at once even while the worker is busy
 * decoding.
 */
import * as Comlink from 'comlink';
import type { EventSink, LabApi, LabConnection } from '../core/lab/api';
import { encodeRunFile } from '../core/run/runfile';
import { importRun, noSuchRun, type RunStore } from '../core/run/store';
import { RunTokenTexts } from '../core/run/token-texts';
import { openRunStore } from './runstore';

/** Starts the policy worker and returns the lab service it serves. */
export function connectPolicyWorker(): LabConnection {
  const worker = new Worker(new URL('../../workers/policy.worker.ts', import.meta.url), { type: 'module', name: 'policy' });
  const remote = Comlink.wrap<LabApi>(worker);
  let store: Promise<RunStore> | undefined;
  const runs = () => (store ??= openRunStore());
  const sink = (onEvent: EventSink | undefined) => (onEvent ? Comlink.proxy(onEvent) : undefined);
  const tokenTexts = new RunTokenTexts(runs);
  const api: LabApi = {
    init: (options) => remote.init(options),
    sandboxStatus: () => remote.sandboxStatus(),
    sandboxWarm: () => remote.sandboxWarm(),
    memory: () => remote.memory(),
    setControl: (value) => remote.setControl(value),
    runningJob: () => remote.runningJob(),
    resourceUrls: () => remote.resourceUrls(),
    model: () => remote.model(),
    loadModel: (source, onEvent) => remote.loadModel(source, sink(onEvent)),
    createModel: (size, seed) => remote.createModel(size, seed),
    measureSpeed: (request, onEvent) => remote.measureSpeed(request, sink(onEvent)),
    exportModel: () => remote.exportModel(),
    saveModel: (name) => remote.saveModel(name),
    infer: (request, onEvent) => remote.infer(request, sink(onEvent)),
    evaluate: (request, onEvent) => remote.evaluate(request, sink(onEvent)),
    checkFit: (problems, settings) => remote.checkFit(problems, settings),
    tirgen: (request, onEvent) => remote.tirgen(request, sink(onEvent)),
    train: (request, onEvent) => remote.train(request, sink(onEvent)),
    listRuns: async () => (await runs()).list(),
    runDetail: async (id) => (await runs()).getDetail(id),
    runRolloutSteps: async (id) => (await runs()).rolloutSteps(id),
    runRollouts: async (id, step) => (await runs()).getRollouts(id, step),
    runTokenTexts: (id, ids) => tokenTexts.texts(id, ids),
    // Deleting goes through the service, which refuses to delete the run it is training.
    deleteRun: (id) => remote.deleteRun(id),
    importRun: async (bytes, fileName) => importRun(await runs(), bytes, fileName),
    exportRun: async (id) => {
      const run = await (await runs()).get(id);
      if (!run) throw noSuchRun(id);
      return encodeRunFile(run);
    },
  };
  return {
    api,
    onError(listener) {
      worker.addEventListener('error', (e) => listener(e.message || 'the policy worker failed to start or crashed'));
      worker.addEventListener('messageerror', () => listener('a message from the policy worker could not be read'));
    },
    terminate() {
      remote[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}

/** Fetches the modules split off the page's first download, so they are there offline later. */
export function warmPageModules(): void {
  void import('../core/tokenizer/index');
}
