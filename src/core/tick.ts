/**
 * Resolves after pending macrotasks (worker messages, due timers) have had their turn. A message on
 * a fresh channel, not setTimeout(0): browsers clamp nested timeouts to 4 ms, and loops that yield
 * every decode step would pay that each time.
 */
export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
