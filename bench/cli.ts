// What the network benchmarks' command lines share (bench/e2e, bench/peers, bench/soak):
// their flags, the usage and root checks before anything runs, and a run's id and folder.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;
type Flags<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; strict: true; allowPositionals: false; options: O }>>['values'];

/** The flags of `argv` (no positional arguments); a UsageError for anything parseArgs refuses. */
export function parseFlags<const O extends Options>(argv: string[], options: O): Flags<O> {
  try {
    return parseArgs({ args: argv, strict: true, allowPositionals: false, options }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * The plan of `argv`, or the exit status when there is nothing to run: 0 after --help
 * (the usage printed), 2 for bad usage (said, with the usage) or without root.
 */
export function planOrStatus<P>(argv: string[], parse: (argv: string[]) => P | 'help', usage: string, prefix: string, notRoot: string): P | number {
  let plan: P | 'help';
  try {
    plan = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${prefix}: ${e.message}\n${usage}\n`);
    return 2;
  }
  if (plan === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write(`${prefix}: ${notRoot}\n`);
    return 2;
  }
  return plan;
}

function stamp(d: Date): string {
  return d.toISOString().replace(/\..*$/, '').replace(/[-:]/g, '').replace('T', '-');
}

/** A new run: its id (4 characters [a-z0-9], in its namespaces' names) and its folder, `out` or bench-out/KIND-<time>-<id>, made. */
export function newRun(kind: string, out: string | undefined): { runId: string; started: Date; dir: string } {
  const runId = randomBytes(3).readUIntBE(0, 3).toString(36).padStart(4, '0').slice(-4);
  const started = new Date();
  const dir = out ?? join('bench-out', `${kind}-${stamp(started)}-${runId}`);
  mkdirSync(dir, { recursive: true });
  return { runId, started, dir };
}
