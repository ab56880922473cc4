/** The lab's tabs, in the order a session goes through them, and their place in the URL hash. */

export const TABS = [
  { id: 'overview', label: 'Overview' },
  { id: 'model', label: 'Model' },
  { id: 'data', label: 'Data' },
  { id: 'tirgen', label: 'TIRGen' },
  { id: 'train', label: 'Train' },
  { id: 'rollouts', label: 'Rollouts' },
  { id: 'inference', label: 'Inference' },
  { id: 'eval', label: 'Eval' },
  { id: 'runs', label: 'Runs' },
] as const;

export type TabId = (typeof TABS)[number]['id'];

const IDS: readonly string[] = TABS.map((t) => t.id);

/** The tab a hash names ("#train" → "train"); the first tab for an empty or unknown hash. */
export function tabFromHash(hash: string): TabId {
  const id = hash.replace(/^#\/?/, '').toLowerCase();
  return (IDS.includes(id) ? id : TABS[0].id) as TabId;
}

/** The tab `step` places away from `current`, wrapping around (arrow keys in the tab list). */
export function neighbourTab(current: TabId, step: number): TabId {
  const i = IDS.indexOf(current);
  return TABS[(i + step + TABS.length) % TABS.length].id;
}
