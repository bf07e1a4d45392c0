// The TypeScript fuzz targets' shape, and the engine that runs them: seeded
// mutations of a corpus (coverage-free: see fuzz/README.md for why not Jazzer.js).
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prng, randInt } from '../../test/helpers/prng.js';

export interface TsTarget {
  name: string;
  /** Strings worth inserting whole (keys, separators): mutations rarely spell them. */
  dictionary: string[];
  /** Runs one input; throws only on a finding (an unexpected exception or a broken invariant). */
  run(input: Uint8Array): void;
}

/** Throws a finding unless cond holds. */
export function require(cond: boolean, what: string): asserts cond {
  if (!cond) throw new Error(`invariant failed: ${what}`);
}

/** Runs fn; an error of one of the allowed classes is the documented way to refuse input. */
export function allowing(classes: Function[], fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!classes.some((c) => err instanceof c)) throw err;
  }
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x0a, 0x3d, 0x20, 0x2c, 0x2f, 0x3a, 0x5b, 0x5d, 0x23];

/** One to eight random edits of input: bytes flipped, set, inserted, deleted, spliced from another entry. */
export function mutate(rnd: () => number, input: Uint8Array, corpus: Uint8Array[], dictionary: Uint8Array[]): Uint8Array {
  let b = Array.from(input);
  const ops = 1 + randInt(rnd, 8);
  for (let k = 0; k < ops; k++) {
    const at = randInt(rnd, b.length + 1);
    switch (randInt(rnd, 9)) {
      case 0: if (b.length > 0) b[at % b.length]! ^= 1 << randInt(rnd, 8); break;
      case 1: if (b.length > 0) b[at % b.length] = randInt(rnd, 256); break;
      case 2: if (b.length > 0) b[at % b.length] = INTERESTING[randInt(rnd, INTERESTING.length)]!; break;
      case 3: b.splice(at, 0, ...Array.from({ length: 1 + randInt(rnd, 8) }, () => randInt(rnd, 256))); break;
      case 4: b.splice(at, 1 + randInt(rnd, 16)); break;
      case 5: { // a range repeated
        const len = randInt(rnd, 32);
        b.splice(at, 0, ...b.slice(randInt(rnd, b.length + 1)).slice(0, len));
        break;
      }
      case 6: { // a piece of another entry
        const other = corpus[randInt(rnd, corpus.length)]!;
        const from = randInt(rnd, other.length + 1);
        b.splice(at, randInt(rnd, 16), ...other.subarray(from, from + randInt(rnd, 64)));
        break;
      }
      case 7: if (dictionary.length > 0) b.splice(at, 0, ...dictionary[randInt(rnd, dictionary.length)]!); break;
      default: b = b.slice(0, at); break;
    }
  }
  return Uint8Array.from(b);
}

export interface TsRunOptions {
  runs: number;
  seed: number;
  corpusDir: string;
  regressionsDir: string;
  /** Where a failing input is written. */
  crashDir: string;
}

export interface TsRunResult {
  executions: number;
  seconds: number;
}

function files(dir: string): Uint8Array[] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return names.map((name) => new Uint8Array(readFileSync(join(dir, name))));
}

/** Replays every regression input, then runs `runs` mutated corpus inputs. Throws at the first finding. */
export function runTsTarget(target: TsTarget, o: TsRunOptions): TsRunResult {
  const started = process.hrtime.bigint();
  const fail = (input: Uint8Array, err: unknown): never => {
    mkdirSync(o.crashDir, { recursive: true });
    const path = join(o.crashDir, `crash-${createHash('sha1').update(input).digest('hex')}`);
    writeFileSync(path, input);
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    throw new Error(`fuzz target ${target.name}: finding on the input saved as ${path}:\n${text}`);
  };
  const attempt = (input: Uint8Array) => {
    try {
      target.run(input);
    } catch (err) {
      fail(input, err);
    }
  };
  const regressions = files(o.regressionsDir);
  for (const input of regressions) attempt(input);
  const corpus = [...files(o.corpusDir), ...regressions];
  if (corpus.length === 0) corpus.push(new Uint8Array(0));
  const dictionary = target.dictionary.map((s) => new TextEncoder().encode(s));
  const rnd = prng(o.seed);
  for (let i = 0; i < o.runs; i++) attempt(mutate(rnd, corpus[randInt(rnd, corpus.length)]!, corpus, dictionary));
  return { executions: regressions.length + o.runs, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
