/**
 * The text of each token id under the tokenizer of a stored run's checkpoint, for the token view of
 * its rollouts. The tokenizer of the run looked at last is kept (a live run's view asks again for
 * every new step), and its libraries are loaded on demand, out of the page's first download.
 */
import type { Tokenizer } from '../tokenizer/types';
import type { RunStore } from './store';

export class RunTokenTexts {
  private last: { id: string; load: Promise<Tokenizer | undefined> } | undefined;

  constructor(private readonly store: () => Promise<RunStore>) {}

  /** undefined when the run has no checkpoint, or one without a tokenizer (a LoRA run keeps its adapter only), or no such run. */
  async texts(id: string, ids: readonly number[]): Promise<string[] | undefined> {
    if (this.last?.id !== id) {
      const load = this.load(id);
      this.last = { id, load };
      // A failed load is not kept: the next call tries again.
      load.catch(() => {
        if (this.last?.load === load) this.last = undefined;
      });
    }
    const tokenizer = await this.last.load;
    return tokenizer && ids.map((t) => tokenizer.decode([t]));
  }

  private async load(id: string): Promise<Tokenizer | undefined> {
    const checkpoint = await (await this.store()).getCheckpoint(id);
    if (!checkpoint) return undefined;
    const tokenizers = await import('../tokenizer/index');
    return tokenizers.hasTokenizerFile(Object.keys(checkpoint)) ? tokenizers.checkpointTokenizer(checkpoint) : undefined;
  }
}
