/**
 * Redraws that take turns: each animation frame runs one queued draw, so many charts updating at
 * once spread their work over frames instead of holding the main thread in one long task.
 */
const queue: (() => void)[] = [];
let frame = 0;

function next(): void {
  frame = 0;
  queue.shift()?.();
  if (queue.length > 0) frame = requestAnimationFrame(next);
}

/** Queues a draw; returns a function that takes it off the queue. */
export function scheduleDraw(draw: () => void): () => void {
  queue.push(draw);
  if (!frame) frame = requestAnimationFrame(next);
  return () => {
    const i = queue.indexOf(draw);
    if (i >= 0) queue.splice(i, 1);
  };
}
