/**
 * The word that pauses or stops the running job. In a browser it lives in a SharedArrayBuffer the
 * page and the policy worker share (when the page is cross-origin isolated): the worker reads it
 * between decoding steps without waiting for a message, so a stop lands within one token even on
 * backends whose awaits never yield to the event loop. In Node it is a plain word the CLI sets on
 * Ctrl-C. The constants are a module of their own so the page imports three numbers, no engine.
 */
export const CONTROL = { run: 0, pause: 1, stop: 2 } as const;

export type ControlValue = (typeof CONTROL)[keyof typeof CONTROL];
export type ControlRequest = 'run' | 'pause' | 'stop';

/** Thrown inside a job when the word asks it to pause or stop. */
export class Interrupted extends Error {
  constructor(readonly kind: 'pause' | 'stop') {
    super(kind === 'stop' ? 'stopped' : 'paused');
  }
}

export class ControlWord {
  private wake: (() => void) | undefined;

  constructor(private word: Int32Array = new Int32Array(1)) {}

  /** Shares another word from now on (the page's SharedArrayBuffer). */
  adopt(word: Int32Array): void {
    this.word = word;
  }

  set(value: ControlValue): void {
    Atomics.store(this.word, 0, value);
    if (value !== CONTROL.pause) this.wake?.();
  }

  requested(): ControlRequest {
    const v = Atomics.load(this.word, 0);
    return v === CONTROL.stop ? 'stop' : v === CONTROL.pause ? 'pause' : 'run';
  }

  /** Resolves when the word leaves "pause" (go on, or stop). */
  async whilePaused(): Promise<void> {
    while (this.requested() === 'pause') {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        // A shared word may change without a message: look again now and then.
        setTimeout(resolve, 250);
      });
      this.wake = undefined;
    }
  }

  /** An abort signal that fires when the word asks for one of `kinds`; check() looks at the word. */
  watch(kinds: readonly ('pause' | 'stop')[]): { signal: AbortSignal; check(): void } {
    const controller = new AbortController();
    return {
      signal: controller.signal,
      check: () => {
        const r = this.requested();
        if (r !== 'run' && kinds.includes(r) && !controller.signal.aborted) controller.abort(new Interrupted(r));
      },
    };
  }
}
