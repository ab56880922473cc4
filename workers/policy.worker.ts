/**
 * The policy worker: the lab service (model, generation, training, evaluation, with its Python
 * sandbox workers started from here, so tool calls never touch the page), exposed over Comlink.
 */
import * as Comlink from 'comlink';
import { browserLabEnv } from '../src/browser/env';
import { LabService } from '../src/core/lab/service';

Comlink.expose(new LabService(browserLabEnv()));
