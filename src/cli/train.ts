/**
 * `npm run cli -- train`: an RL run (GRPO, or THOR with the step level) or an SFT run, driven by the
 * lab service's one training loop and kept as a run folder: run.json, config.json, metrics.jsonl,
 * evals.jsonl, rollouts/, checkpoint/ (weights and optimiser moments), data/, report.md. Ctrl-C stops
 * the run with a checkpoint of its last whole step; `--resume RUN_DIR` goes on from it, for a browser
 * export unpacked with tar -xf as for a run made here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { FieldMapping } from '../core/data/fields';
import { LabError } from '../core/errors';
import type { LabEvent } from '../core/lab/api';
import { CONTROL } from '../core/lab/control';
import { newRunId } from '../core/run/runfile';
import { readDemonstrationsJsonl, type Demonstration } from '../core/tir/demonstrations';
import { DEFAULT_RUNS_DIR, nodeLab, parseBackend } from '../node/lab';
import { DiskRunStore } from '../node/runstore';
import { parseRunConfig } from '../core/config/schema';
import { applySettings, settingsOf } from '../core/config/settings';
import { configFrom, mappingFrom, MAPPING_OPTIONS, parseFlags, settingsFrom } from './args';
import type { Subcommand } from './command';
import { loadCliModel } from './model-source';

const USAGE =
  'train [--config FILE.json] [--set section.key=value ...] [--mode rl|sft] [--steps N] [--sft-file DEMOS.jsonl] [--question-field F] [--answer-field F] [--id-field F] [--model DIR|hf:OWNER/NAME[@REV] [--weights f32|f16]] [--out RUN_DIR] [--name NAME] [--resume RUN_DIR] [--backend wasm|webgpu|cpu]';

export const trainCommand: Subcommand = {
  summary: 'train a model (RL: GRPO / THOR, or SFT) into a run folder; Ctrl-C stops with a checkpoint, --resume goes on',
  usage: USAGE,
  run: async (args) => {
    const flags = parseFlags(
      args,
      {
        config: { type: 'string' },
        set: { type: 'string', multiple: true },
        mode: { type: 'string' },
        steps: { type: 'string' },
        'sft-file': { type: 'string' },
        ...MAPPING_OPTIONS,
        model: { type: 'string' },
        weights: { type: 'string' },
        out: { type: 'string' },
        name: { type: 'string' },
        resume: { type: 'string' },
        backend: { type: 'string' },
      },
      USAGE,
    );
    const demonstrations = flags['sft-file'] ? readDemonstrations(flags['sft-file']) : undefined;
    const given = (mode: string) => ({
      file: flags.config,
      sets: flags.set,
      flags: [
        { flag: '--mode', path: 'mode', value: flags.mode },
        // --steps counts the steps of the run's mode.
        { flag: '--steps', path: mode === 'sft' ? 'sft.steps' : 'steps', value: flags.steps },
      ],
    });

    let store: DiskRunStore;
    let request;
    let mapping: FieldMapping | undefined;
    if (flags.resume) {
      if (flags.out || flags.model || flags.mode) throw new LabError('cli-args', 'a resumed run keeps its folder, its model and its mode', { field: flags.out ? '--out' : flags.model ? '--model' : '--mode', hint: 'leave it out with --resume' });
      const found = await DiskRunStore.forRunFolder(flags.resume);
      store = found.store;
      const stored = (await store.getDetail(found.id))!;
      // The changes asked for, checked on the stored config before any work, errors naming the flags.
      const { input, labels } = settingsFrom(given(stored.state?.mode ?? 'rl'));
      parseRunConfig(applySettings(stored.config, settingsOf(input, '--set')), { source: join(flags.resume, 'config.json'), labels });
      request = { resume: { runId: found.id }, config: input, demonstrations };
      // A resumed run reads task.file only when it kept no questions.
      mapping = mappingFrom(flags, { given: true, by: '--set task.file=FILE' });
    } else {
      const mode = String(settingsFrom(given('rl')).input.mode ?? 'rl');
      const { config, input } = configFrom(given(mode), 'run');
      mapping = mappingFrom(flags, { given: config.task.source === 'file', by: '--set task.source=file --set task.file=FILE' });
      const out = flags.out ?? join(DEFAULT_RUNS_DIR, newRunId());
      if (existsSync(out)) throw new LabError('cli-args', 'the run folder exists already', { field: '--out', found: out, hint: 'go on with it with --resume, or pick another folder' });
      if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(basename(out))) throw new LabError('cli-args', 'the run folder needs a plain name (it becomes the run id)', { field: '--out', expected: 'letters, digits, ".", "_" and "-"', found: basename(out) });
      store = new DiskRunStore(dirname(out));
      request = { config: input, runId: basename(out), name: flags.name ?? basename(out), demonstrations };
    }

    const lab = await nodeLab({ backend: parseBackend(flags.backend), store, mapping });
    let interrupts = 0;
    const onSigint = () => {
      if (++interrupts > 1) process.exit(130);
      console.error('\nstopping: the run keeps a checkpoint of its last whole step (Ctrl-C again to quit at once)');
      void lab.setControl(CONTROL.stop);
    };
    process.on('SIGINT', onSigint);
    try {
      if (!flags.resume) await loadCliModel(lab, flags.model, flags.weights);
      const printer = eventPrinter();
      const outcome = await lab.train(request, printer);
      const dir = await store.dirOf(outcome.runId);
      if (outcome.state === 'stopped') console.log(`stopped after step ${outcome.steps}; go on with: npm run cli -- train --resume ${dir}`);
      else console.log(`finished ${outcome.steps} steps; report: ${join(dir, 'report.md')}`);
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
      await lab.close();
    }
  },
};

function readDemonstrations(file: string): Demonstration[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LabError('files', `cannot read the demonstrations: ${(e as Error).message}`, { file });
  }
  const { demonstrations, skipped } = readDemonstrationsJsonl(text, basename(file));
  for (const s of skipped.slice(0, 5)) console.error(`skipped ${file} line ${s.line}: ${s.message}`);
  if (skipped.length > 5) console.error(`... and ${skipped.length - 5} more skipped lines`);
  if (demonstrations.length === 0) throw new LabError('files', 'no usable demonstration', { file, expected: 'JSON lines {"question": ..., "response": ...}', found: `${skipped.length} bad line(s)` });
  return demonstrations;
}

const fmt = (v: unknown, digits = 3) => (typeof v === 'number' ? v.toFixed(digits) : '—');

/** Prints a run's events as lines: steps with an ETA, held-out evaluations, messages, state changes. */
function eventPrinter(): (e: LabEvent) => void {
  let started = 0;
  let fromStep = 0;
  let total = 0;
  let mode: 'rl' | 'sft' = 'rl';
  const tty = process.stderr.isTTY;
  return (e) => {
    if (e.type === 'run') {
      ({ fromStep, totalSteps: total, mode } = e);
      started = Date.now();
      console.log(`run ${e.name} (${e.id}): ${mode === 'rl' ? 'RL' : 'SFT'}, ${fromStep > 0 ? `going on from step ${fromStep} to ` : ''}${total} steps`);
    } else if (e.type === 'step') {
      const eta = ((Date.now() - started) / Math.max(1, e.step - fromStep)) * (total - e.step);
      const m = e.metrics;
      const figures =
        mode === 'rl'
          ? `reward ${fmt(m.reward_mean)}  acc ${fmt(m.accuracy)}  code ${fmt(m.code_ratio)}  pass ${fmt(m.pass_ratio)}  len ${fmt(m.response_length_mean, 0)}`
          : `loss ${fmt(m.loss, 4)}  lr ${fmt(m.lr, 5)}`;
      if (tty) process.stderr.write('\r\x1b[K');
      console.log(`step ${e.step}/${total}  ${figures}  ${fmt(m.time_step_s, 1)} s  ETA ${(eta / 60000).toFixed(1)} min`);
    } else if (e.type === 'heldout') {
      if (tty) process.stderr.write('\r\x1b[K');
      console.log(`held-out @${e.step} (${e.figures.heldout_questions} questions): accuracy ${fmt(e.figures.heldout_accuracy)}  code ratio ${fmt(e.figures.heldout_code_ratio)}  pass ratio ${fmt(e.figures.heldout_pass_ratio)}`);
    } else if (e.type === 'message') {
      console.log(e.text);
    } else if (e.type === 'progress' && tty) {
      process.stderr.write(`\r\x1b[K${e.phase} ${e.done}/${e.total}`);
    } else if (e.type === 'state' && e.state === 'failed') {
      console.error(`the run failed: ${e.message ?? ''}`);
    }
  };
}
