/**
 * The word the page and the policy worker share to pause or stop a running job. Its own module, so
 * the page imports these three numbers and nothing of the engine.
 */
export const CONTROL = { run: 0, pause: 1, stop: 2 } as const;

export type ControlValue = (typeof CONTROL)[keyof typeof CONTROL];
