/** One subcommand of `npm run cli`. */
export interface Subcommand {
  /** One line for the help text. */
  summary: string;
  usage: string;
  /** Runs the subcommand; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}
