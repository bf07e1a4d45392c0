// The host of user stages (src/stages/user-stage.ts): parses `--stage` / TUNDRA_STAGES,
// imports the modules, creates one instance per thread that runs a direction's in-order
// consumer, runs them over batches and keeps their counters in shared memory, so the
// main thread can read the counters of every thread's instances without a message.
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CreateStage, Direction, Stage, StageBatch, StageInit } from './user-stage.js';
import { SettingError } from '../errors.js';

export type { CreateStage, Direction, Stage, StageBatch, StageInit } from './user-stage.js';

export interface StageSpec {
  /** A path (resolved against the working directory) or a package name. */
  module: string;
  /** The text after the first '=' of the entry, if any. */
  config: string | undefined;
}

/**
 * Parses a comma-separated list of MODULE[=CONFIG] entries; an empty (or blank) value is [].
 * A comma inside an entry (a config such as `dir=/x,maxBytes=N`) is written `\,`, a
 * backslash before a comma `\\`. `source` names where the text came from ("--stage",
 * "TUNDRA_STAGES") for the error message.
 */
export function parseStageSpecs(value: string, source: string): StageSpec[] {
  if (value.trim() === '') return [];
  const hint = 'give MODULE[=CONFIG] entries separated by commas (write a comma inside CONFIG as \\,)';
  return splitUnescaped(value).map((item, index) => {
    const entry = item.trim();
    if (entry === '') throw new SettingError(`${source}: entry ${index + 1} of "${value}" is empty; ${hint}`);
    const eq = entry.indexOf('=');
    const module = (eq < 0 ? entry : entry.slice(0, eq)).trim();
    if (module === '') throw new SettingError(`${source}: "${entry}" names no module before "="; ${hint}`);
    return { module, config: eq < 0 ? undefined : entry.slice(eq + 1) };
  });
}

// Bounds: i < value.length, the loop's condition.
function splitUnescaped(value: string): string[] {
  const items: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    const next = value[i + 1];
    if (c === '\\' && (next === ',' || next === '\\')) {
      current += next;
      i++;
    } else if (c === ',') {
      items.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  items.push(current);
  return items;
}

/** One stage's counters in shared memory, as handed to another thread (structured-cloneable). */
export interface SharedStageEntry {
  readonly name: string;
  /** The declared reasons, then 'error'; drops holds one Float64 per entry, in this order. */
  readonly dropReasons: readonly string[];
  readonly drops: SharedArrayBuffer;
  /** The names given to counters(); counters holds one Float64 per name. */
  readonly counterNames: readonly string[];
  readonly counters: SharedArrayBuffer;
}

/** The counters of one UserStages instance (one thread's), from share(). */
export interface SharedStageCounters {
  readonly thread: string;
  readonly stages: readonly SharedStageEntry[];
}

export interface StageSnapshot {
  drops: Record<string, number>;
  counters: Record<string, number>;
}

const NAME = /^[a-z0-9_]+$/;
const ERROR_REASON = 'error';

/** The host's reusable per-stage batch view; its fields are set before each call. */
class StageView implements StageBatch {
  data: Uint8Array = new Uint8Array(0);
  offsets: Uint32Array = new Uint32Array(0);
  lengths: Uint32Array = new Uint32Array(0);
  peers: Int32Array = new Int32Array(0);
  count = 0;
  /** marks[i] === epoch: packet i was dropped in this call. */
  marks: Uint32Array = new Uint32Array(0);
  epoch = 0;
  dropped = 0;

  constructor(
    readonly direction: Direction,
    private readonly stageName: string,
    private readonly reasonIndex: ReadonlyMap<string, number>,
    private readonly dropCounts: Float64Array,
  ) {}

  // Bounds: i is checked against the batch, and k comes from reasonIndex, which has an index below dropCounts.length for each reason.
  drop(i: number, reason: string): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      throw new RangeError(`stage ${this.stageName}: drop(${i}) is outside the batch [0, ${this.count})`);
    }
    const k = this.reasonIndex.get(reason);
    if (k === undefined) {
      throw new TypeError(`stage ${this.stageName}: drop reason "${reason}" is not in its dropReasons`);
    }
    if (this.marks[i] === this.epoch) return;
    this.marks[i] = this.epoch;
    this.dropCounts[k]! += 1;
    this.dropped++;
  }
}

interface LoadedStage {
  readonly stage: Stage;
  readonly module: string;
  readonly shared: SharedStageEntry;
  readonly drops: Float64Array;
  readonly errorIndex: number;
  readonly outboundView: StageView | undefined;
  readonly inboundView: StageView | undefined;
  loggedError: boolean;
}

const defaultLog = (line: string): void => console.error(line);

export class UserStages {
  /** Stages loaded, in spec order; 0 = nothing to run (callers skip run() entirely). */
  readonly size: number;
  private outbound: LoadedStage[];
  private inbound: LoadedStage[];
  private readonly shared: SharedStageCounters;
  private readonly attached: SharedStageCounters[] = [];
  private marks = new Uint32Array(256);
  private epoch = 0;
  private closed = false;

  private constructor(
    private readonly loaded: readonly LoadedStage[],
    readonly thread: string,
    private readonly log: (line: string) => void,
  ) {
    this.size = loaded.length;
    this.outbound = loaded.filter((s) => s.outboundView !== undefined);
    this.inbound = loaded.filter((s) => s.inboundView !== undefined);
    this.shared = Object.freeze({ thread, stages: Object.freeze(loaded.map((s) => s.shared)) });
  }

  /**
   * Imports each module and calls its createStage with the entry's config, in order.
   * A missing module, a missing export, a createStage that throws or a stage that breaks
   * the contract (bad name, bad dropReasons, two stages of one name) throws an Error that
   * names the module and what to do; the stages made so far are closed first.
   * `log` receives the one line logged when a stage first throws on a batch, and close errors.
   */
  static async load(
    specs: readonly StageSpec[],
    thread: string,
    log: (line: string) => void = defaultLog,
  ): Promise<UserStages> {
    const loaded: LoadedStage[] = [];
    try {
      for (const spec of specs) loaded.push(await loadOne(spec, thread, loaded));
    } catch (err) {
      for (const s of loaded) closeStage(s, log);
      throw err;
    }
    return new UserStages(loaded, thread, log);
  }

  has(direction: Direction): boolean {
    return (direction === 'outbound' ? this.outbound : this.inbound).length > 0;
  }

  /**
   * Runs the stages of `direction` in spec order over packets [0, count), removes dropped
   * packets keeping order (compacting offsets, lengths and peers), returns the new count.
   * Each stage sees only what the ones before it kept; none is called with no packets.
   * A stage that throws has that call's packets dropped (those it had not dropped itself
   * are counted as stage_<name>_error), and the stages after it are not called for them.
   * No allocation per call or per packet (the drop marks grow once to the largest batch).
   * Bounds: errorIndex = dropReasons.length − 1 and drops has one float64 per reason (loadStage).
   */
  run(
    direction: Direction,
    data: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    peers: Int32Array,
    count: number,
  ): number {
    const list = direction === 'outbound' ? this.outbound : this.inbound;
    for (const entry of list) {
      if (count === 0) break;
      const view = (direction === 'outbound' ? entry.outboundView : entry.inboundView)!;
      if (count > this.marks.length) this.marks = new Uint32Array(2 ** Math.ceil(Math.log2(count)));
      if (++this.epoch === 0xffffffff) {
        // Marks of old calls could equal a reused epoch: start again from clean marks.
        this.marks.fill(0);
        this.epoch = 1;
      }
      view.data = data;
      view.offsets = offsets;
      view.lengths = lengths;
      view.peers = peers;
      view.count = count;
      view.marks = this.marks;
      view.epoch = this.epoch;
      view.dropped = 0;
      try {
        if (direction === 'outbound') entry.stage.outbound!(view);
        else entry.stage.inbound!(view);
      } catch (err) {
        entry.drops[entry.errorIndex]! += count - view.dropped;
        if (!entry.loggedError) {
          entry.loggedError = true;
          this.log(
            `stage ${entry.stage.name} (${entry.module}) on ${this.thread} threw on an ${direction} batch: ${describe(err)}; ` +
              `its batches are dropped when it throws, counted as stage_${entry.stage.name}_error (logged once)`,
          );
        }
        view.count = 0;
        return 0;
      }
      view.count = 0;
      if (view.dropped > 0) count = compact(this.marks, this.epoch, offsets, lengths, peers, count);
    }
    return count;
  }

  /** Drops by reason (`stage_<name>_<reason>`) and counters (`stage_<name>_<counter>`), summed over this instance and every one attached. */
  snapshot(): StageSnapshot {
    return UserStages.snapshotOf([this.shared, ...this.attached]);
  }

  /** The shared counter buffers of this instance, for another thread to attach() or snapshotOf(). */
  share(): SharedStageCounters {
    return this.shared;
  }

  /**
   * Adds another instance's counters (from its share(), e.g. a worker's, posted here) to
   * snapshot(). Attach each instance once; keep a restarted worker's old counters attached
   * so that the sums never go back.
   */
  attach(shared: SharedStageCounters): void {
    this.attached.push(shared);
  }

  /**
   * Sums counters by name over instances; every declared reason and counter appears, 0 or not.
   * Bounds: the drop and counter buffers hold one float64 per reason and per counter name (loadStage, counters()).
   */
  static snapshotOf(shared: readonly SharedStageCounters[]): StageSnapshot {
    const drops: Record<string, number> = {};
    const counters: Record<string, number> = {};
    for (const instance of shared) {
      for (const e of instance.stages) {
        const d = new Float64Array(e.drops);
        for (const [k, reason] of e.dropReasons.entries()) {
          const key = `stage_${e.name}_${reason}`;
          drops[key] = (drops[key] ?? 0) + d[k]!;
        }
        const c = new Float64Array(e.counters);
        for (const [k, name] of e.counterNames.entries()) {
          const key = `stage_${e.name}_${name}`;
          counters[key] = (counters[key] ?? 0) + c[k]!;
        }
      }
    }
    return { drops, counters };
  }

  /** Calls each stage's close() once (errors are logged, not thrown); run() passes batches through unchanged afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.outbound = [];
    this.inbound = [];
    for (const s of this.loaded) closeStage(s, this.log);
  }
}

/**
 * Moves the packets not marked with `epoch` to the front, in order; returns how many there are.
 * Bounds: j ≤ i < count, the batch's count, which the stages checked ≤ its slots (PacketBatch.checkedCount), the arrays' length.
 */
function compact(
  marks: Uint32Array,
  epoch: number,
  offsets: Uint32Array,
  lengths: Uint32Array,
  peers: Int32Array,
  count: number,
): number {
  let j = 0;
  for (let i = 0; i < count; i++) {
    if (marks[i] === epoch) continue;
    if (j !== i) {
      offsets[j] = offsets[i]!;
      lengths[j] = lengths[i]!;
      peers[j] = peers[i]!;
    }
    j++;
  }
  return j;
}

function closeStage(s: LoadedStage, log: (line: string) => void): void {
  try {
    s.stage.close?.();
  } catch (err) {
    log(`stage ${s.stage.name} (${s.module}): close failed: ${describe(err)}`);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function loadOne(spec: StageSpec, thread: string, before: readonly LoadedStage[]): Promise<LoadedStage> {
  const where = `stage module ${spec.module}`;
  const create = await importCreateStage(spec.module);

  let counterNames: readonly string[] = [];
  let counterBuffer = new SharedArrayBuffer(0);
  let creating = true;
  let counted = false;
  const init: StageInit = Object.freeze({
    config: spec.config,
    thread,
    counters(names: readonly string[]): Float64Array {
      if (!creating) throw new Error(`${where}: counters() may only be called during createStage`);
      if (counted) throw new Error(`${where}: counters() may be called only once; pass every name in one call`);
      checkNames(names, `${where}: counters()`, 'counter name');
      counted = true;
      counterNames = Object.freeze([...names]);
      counterBuffer = new SharedArrayBuffer(8 * names.length);
      return new Float64Array(counterBuffer);
    },
  });

  let stage: Stage;
  try {
    stage = await create(init);
  } catch (err) {
    throw new Error(`${where}: createStage failed: ${describe(err)}`, { cause: err });
  } finally {
    creating = false;
  }

  if (typeof stage !== 'object' || stage === null) {
    throw new Error(`${where}: createStage returned ${stage === null ? 'null' : typeof stage}, not a stage object { name, outbound?, inbound?, ... }`);
  }
  if (typeof stage.name !== 'string' || !NAME.test(stage.name)) {
    throw new Error(`${where}: the stage's name ${JSON.stringify(stage.name)} is not made of a-z, 0-9 and _ (it is used in counter names)`);
  }
  const other = before.find((s) => s.stage.name === stage.name);
  if (other) {
    throw new Error(`${where}: a stage named "${stage.name}" is already loaded (from ${other.module}); stage names must be unique, their counters would mix`);
  }
  for (const method of ['outbound', 'inbound', 'close'] as const) {
    if (stage[method] !== undefined && typeof stage[method] !== 'function') {
      throw new Error(`${where}: the stage's ${method} is a ${typeof stage[method]}, not a function`);
    }
  }
  const declared = stage.dropReasons ?? [];
  if (!Array.isArray(declared)) throw new Error(`${where}: the stage's dropReasons is not an array of names`);
  checkNames(declared, `${where}: dropReasons`, 'drop reason');
  if (declared.includes(ERROR_REASON)) {
    throw new Error(`${where}: drop reason "${ERROR_REASON}" is the host's own (a stage that throws); choose another name`);
  }

  const dropReasons = Object.freeze([...declared, ERROR_REASON]);
  const dropBuffer = new SharedArrayBuffer(8 * dropReasons.length);
  const drops = new Float64Array(dropBuffer);
  const reasonIndex = new Map(declared.map((r, k) => [r, k] as const));
  const view = (direction: Direction) => new StageView(direction, stage.name, reasonIndex, drops);
  return {
    stage,
    module: spec.module,
    shared: Object.freeze({ name: stage.name, dropReasons, drops: dropBuffer, counterNames, counters: counterBuffer }),
    drops,
    errorIndex: dropReasons.length - 1,
    outboundView: stage.outbound ? view('outbound') : undefined,
    inboundView: stage.inbound ? view('inbound') : undefined,
    loggedError: false,
  };
}

function checkNames(names: readonly unknown[], where: string, what: string): void {
  if (!Array.isArray(names)) throw new Error(`${where}: expected an array of ${what}s`);
  const seen = new Set<unknown>();
  for (const n of names) {
    if (typeof n !== 'string' || !NAME.test(n)) {
      throw new Error(`${where}: ${what} ${JSON.stringify(n)} is not made of a-z, 0-9 and _`);
    }
    if (seen.has(n)) throw new Error(`${where}: ${what} "${n}" is given twice`);
    seen.add(n);
  }
}

const isPathLike = (m: string): boolean =>
  m.startsWith('/') || m.startsWith('./') || m.startsWith('../') || m === '.' || m === '..';

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Finds and imports a stage module: a path (absolute, ./, ../, or a file that exists
 * relative to the working directory), else a package found from the working directory,
 * else a package next to tundra.
 */
async function importCreateStage(module: string): Promise<CreateStage> {
  const where = `stage module ${module}`;
  const cwd = process.cwd();
  const path = resolve(cwd, module);
  let url: string;
  if (isPathLike(module) || isFile(path)) {
    if (!isFile(path)) {
      throw new Error(`${where}: there is no file ${path} (a path is resolved against the working directory ${cwd}); give the path of the stage's .js file`);
    }
    url = pathToFileURL(path).href;
  } else {
    try {
      url = pathToFileURL(createRequire(join(cwd, 'package.json')).resolve(module)).href;
    } catch {
      url = module; // not installed under the working directory: try tundra's own node_modules
    }
  }

  let ns: Record<string, unknown>;
  try {
    ns = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (url === module && (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') && describe(err).includes(`'${module}'`)) {
      throw new Error(
        `${where}: not found: no file ${path}, and no package "${module}" under ${cwd} or next to tundra; ` +
          `give a path (./my-stage.js) or install the package`,
        { cause: err },
      );
    }
    if (code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?ts$/.test(module)) {
      throw new Error(`${where}: is TypeScript; tundra loads JavaScript: compile it (tsc) and give the .js file`, { cause: err });
    }
    throw new Error(`${where}: failed to load: ${describe(err)}`, { cause: err });
  }
  const create = typeof ns.createStage === 'function' ? ns.createStage : ns.default;
  if (typeof create !== 'function') {
    throw new Error(
      `${where}: exports no createStage function; a stage module exports ` +
        `"export function createStage(init) { return { name: 'my_stage', outbound(batch) { ... } }; }" (or it as the default export)`,
    );
  }
  return create as CreateStage;
}
