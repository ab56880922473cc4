/** The symbolic equivalence check run with sympy in the Python sandbox (the only place sympy lives). */
import type { Executor } from '../sandbox/types';
import type { SymbolicChecker } from './equivalence';
import { parseSymbolicOutput, symbolicCheckCode } from './sympy';

export function sandboxChecker(executor: Executor, timeoutMs = 10_000): SymbolicChecker {
  const cache = new Map<string, Promise<boolean | undefined>>();
  return {
    equivalent(a, b) {
      const code = symbolicCheckCode(a, b);
      if (code === undefined) return Promise.resolve(undefined);
      let verdict = cache.get(code);
      if (!verdict) {
        verdict = executor.run(code, { timeoutMs }).then((r) => (r.status === 'ok' ? parseSymbolicOutput(r.stdout) : undefined));
        cache.set(code, verdict);
      }
      return verdict;
    },
  };
}
