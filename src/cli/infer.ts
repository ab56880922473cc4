/** `npm run cli -- infer --question "..."`: one trajectory, printed with its code cells and outputs. */
import { sandboxChecker } from '../core/reward/sandbox-checker';
import { gradeRecords } from '../core/rl/grade';
import { defaultRunConfig } from '../core/run/config';
import { encodePrompt } from '../core/tir/prompt';
import { runRollouts } from '../core/tir/rollout';
import { rewardOptions, rolloutSettings } from '../core/rl/trainer';
import type { TrajectoryRecord } from '../core/rl/types';
import { LabError } from '../core/errors';
import { createNodePythonPool } from '../node/python';
import { loadModel, nodeBackend, parseBackend, DEFAULT_MODEL_DIR } from '../node/lab';
import { numberFlag, parseFlags } from './args';
import type { Subcommand } from './main';

const USAGE = 'infer --question "..." [--answer REF] [--model DIR] [--temperature T] [--seed N] [--self-correction] [--max-tool-calls C] [--json] [--backend wasm|webgpu|cpu]';

export const inferCommand: Subcommand = {
  summary: 'answer one question; print the trajectory with its code and outputs',
  usage: USAGE,
  run: async (args) => {
    const flags = parseFlags(
      args,
      {
        question: { type: 'string' },
        answer: { type: 'string' },
        model: { type: 'string' },
        temperature: { type: 'string' },
        seed: { type: 'string' },
        'self-correction': { type: 'boolean' },
        'max-tool-calls': { type: 'string' },
        instruction: { type: 'string' },
        json: { type: 'boolean' },
        backend: { type: 'string' },
      },
      USAGE,
    );
    if (!flags.question) throw new LabError('cli-args', 'no question', { field: '--question', expected: 'the question text', found: 'nothing', hint: `usage: npm run cli -- ${USAGE}` });
    const config = defaultRunConfig();
    await nodeBackend(parseBackend(flags.backend));
    const { model, tokenizer } = await loadModel(flags.model ?? DEFAULT_MODEL_DIR);
    const pool = await createNodePythonPool({ size: 1, timeoutMs: config.rollout.toolTimeoutMs });
    try {
      const settings = {
        ...rolloutSettings(config, numberFlag(flags.seed, '--seed', 0)!),
        temperature: numberFlag(flags.temperature, '--temperature', 0)!,
        maxToolCalls: numberFlag(flags['max-tool-calls'], '--max-tool-calls', config.rollout.maxToolCalls)!,
        selfCorrection: flags['self-correction'] ? { ...config.selfCorrection } : undefined,
      };
      const prompt = encodePrompt(tokenizer, flags.question, flags.instruction ?? config.rollout.instruction);
      const { records } = await runRollouts(
        { model, tokenizer, executor: pool },
        [{ id: 'infer', groupId: 'infer', level: 'trajectory', problemId: 'cli', question: flags.question, reference: flags.answer ?? '', promptTokens: prompt }],
        settings,
      );
      const record = records[0];
      if (flags.answer !== undefined) await gradeRecords(records, rewardOptions(config), sandboxChecker(pool));
      console.log(flags.json ? JSON.stringify(record) : renderTrajectory(record, flags.answer !== undefined));
      return 0;
    } finally {
      model.dispose();
      await pool.close();
    }
  },
};

/** A terminal rendering: reasoning as is, code and output cells framed, discarded attempts marked. */
export function renderTrajectory(r: TrajectoryRecord, graded: boolean): string {
  const lines: string[] = [`Q: ${r.question}`, ''];
  for (const d of r.discarded) lines.push(`[self-correction: discarded attempt ${d.retry}, ${d.execution.status}: ${d.execution.observation}]`);
  for (const seg of r.segments) {
    if (seg.kind === 'text') lines.push(seg.text.replace(/<\|eos\|>$/, ''));
    else if (seg.kind === 'code') lines.push('┌─ python ─────────', seg.text.replace(/^```python\n/, '').replace(/\n?```$/, ''), '└──────────────────');
    else lines.push('┌─ output ─────────', seg.text.replace(/^\n?```output\n/, '').replace(/\n```\n?$/, ''), '└──────────────────');
  }
  lines.push('', `finished: ${r.finishReason}, ${r.tokens.length} tokens, ${r.executions.length} tool call(s)`);
  if (graded) lines.push(`answer: ${r.finalAnswer ?? '(none)'}  reference: ${r.reference}  ${r.correct ? 'correct' : 'wrong'}`);
  return lines.join('\n');
}
