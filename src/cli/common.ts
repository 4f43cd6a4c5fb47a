import { parseArgs, type ParseArgsConfig } from "node:util";

/** A usage error: printed without a stack, exit code 2. */
export class UsageError extends Error {}

export type Out = { out: (s: string) => void; err: (s: string) => void };

export function parse<O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O, command: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`skillbox ${command}: ${(err as Error).message.split("\n")[0]}\nRun \`skillbox --help\` for usage.`);
  }
}
