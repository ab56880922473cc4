/**
 * The policy worker: holds the model and runs generation, training and evaluation off the main
 * thread, with its Python sandbox workers started from here (tool calls never cross the page).
 * It only wires the lab service to its browser environment and exposes it over Comlink.
 */
import * as Comlink from 'comlink';
import { selectBrowserBackend } from '../src/app/lib/tfjs-browser';
import { openRunStore } from '../src/app/lib/runstore';
import { LabService } from '../src/app/services/lab-service';
import { startPythonSandbox } from '../src/app/services/python';
import { shippedModel } from '../src/app/services/shipped-model';

const service = new LabService({
  selectBackend: selectBrowserBackend,
  startPython: () => startPythonSandbox(),
  shippedModel: () => shippedModel(new URL(`${import.meta.env.BASE_URL}models/thor-tiny/`, location.href).href),
  openRunStore: () => openRunStore(),
});

export type PolicyWorkerApi = LabService;
Comlink.expose(service);
