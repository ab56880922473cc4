/**
 * Messages for the user about things that went wrong (a worker error, a failed import): collected
 * here from anywhere in the app and shown by the error banner, so a failure is a message and not a
 * dead page. Repeats of the same message are counted instead of stacked.
 */
import { errorToPlain } from '../../core/lab/index';

export interface LabMessage {
  id: number;
  /** Where it happened ("policy worker", "import", …). */
  context: string;
  text: string;
  count: number;
}

class Messages {
  list = $state<LabMessage[]>([]);
  private nextId = 1;

  report(error: unknown, context = 'app'): void {
    const text = errorToPlain(error).message;
    const same = this.list.find((m) => m.context === context && m.text === text);
    if (same) same.count++;
    else this.list.push({ id: this.nextId++, context, text, count: 1 });
  }

  dismiss(id: number): void {
    this.list = this.list.filter((m) => m.id !== id);
  }

  clear(): void {
    this.list = [];
  }
}

export const messages = new Messages();

/** Records an error for the banner; returns nothing so it fits in a .catch(). */
export function reportError(error: unknown, context?: string): void {
  messages.report(error, context);
}
