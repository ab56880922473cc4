/**
 * Demonstrations that teach the shipped tiny model the TIR format before any RL: a mix of
 * tool-integrated answers (a short lead-in, a ```python block, its real ```output, a boxed answer)
 * and direct answers written without a tool. The mix sets where RL starts: the model "knows the
 * format and sometimes writes code", and its own arithmetic (the direct answers) is unreliable, so
 * reward for correct answers teaches it to reach for Python.
 */
import type { Rng } from '../rng';
import { CODE_OPEN, CODE_CLOSE, OUTPUT_OPEN } from '../tir/format';
import type { Task } from './tasks';

/** Lead-ins of a tool-using answer. The first words decide "code or not": a choice RL can move. */
export const TOOL_OPENINGS = ['Use Python.', 'Let me compute it.'];
/** Lead-ins of a direct answer. */
export const DIRECT_OPENINGS = ['In my head:', 'Directly:'];

export interface Demonstration {
  question: string;
  response: string;
  usesTool: boolean;
}

/** The response text of a tool-integrated answer; `output` is the real stdout of the program. */
export function toolResponse(task: Pick<Task, 'program' | 'answer'>, output: string, opening: string): string {
  return `${opening}\n${CODE_OPEN}${task.program}\n${CODE_CLOSE}\n${OUTPUT_OPEN}${output.trimEnd()}\n${CODE_CLOSE}\nSo \\boxed{${task.answer}}.`;
}

/** The response text of a direct answer (the reference answer, stated without work). */
export function directResponse(task: Pick<Task, 'answer'>, opening: string): string {
  return `${opening} \\boxed{${task.answer}}.`;
}

/**
 * Builds demonstrations: each task once, written with the tool with probability `toolShare`.
 * `outputs` maps a program to its real stdout from the sandbox (tasks without one are written directly).
 */
export function buildDemonstrations(tasks: readonly Task[], outputs: ReadonlyMap<string, string>, toolShare: number, rng: Rng): Demonstration[] {
  return tasks.map((task) => {
    const output = outputs.get(task.program);
    const usesTool = output !== undefined && rng.next() < toolShare;
    const response = usesTool ? toolResponse(task, output, rng.pick(TOOL_OPENINGS)) : directResponse(task, rng.pick(DIRECT_OPENINGS));
    return { question: task.question, response, usesTool };
  });
}
