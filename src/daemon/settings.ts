// tundra's own settings (docs/design.md §9): each is a flag and an environment variable.
// The daemon reads only the environment — a flag is checked and copied into its
// variable — so the same settings work after detaching and under wg-quick, which
// starts the daemon itself. A flag wins over its variable.
import { availableParallelism } from 'node:os';
import { parseCryptoBackend, type CryptoBackendName } from '../crypto/backends.js';
import { parseOffloadSettings, type OffloadSettings } from '../offload/settings.js';
import { parseStageSpecs, type StageSpec } from '../stages/user-host.js';
import { parseMetricsListen, type MetricsEndpoint } from '../metrics/server.js';
import { REKEY_AFTER_TIME, REKEY_TIMEOUT } from '../protocol/constants.js';
import { SettingError } from '../errors.js';
import { DEFAULT_AQM, type AqmSettings } from '../dataplane/codel.js';

export interface TundraSettings {
  readonly offload: OffloadSettings;
  readonly crypto: CryptoBackendName;
  readonly stages: readonly StageSpec[];
  readonly queues: number;
  readonly workers: number;
  /** Where /metrics is served; undefined (the default): no metrics endpoint. */
  readonly metricsListen: MetricsEndpoint | undefined;
  /** Series per peer in the metrics (default true). */
  readonly metricsPeers: boolean;
  /** A testing knob: seconds after which the initiator rekeys; undefined (the default): REKEY_AFTER_TIME, 120 s. */
  readonly rekeyAfterSeconds: number | undefined;
  /** The receive queue's CoDel (dataplane/codel.ts); targetMs 0: off. */
  readonly aqm: AqmSettings;
  /** The data path threads' nice value (dataplane/priority.ts); undefined (the default): the process's. */
  readonly nice: number | undefined;
}

/**
 * Queue workers when neither --queues nor TUNDRA_QUEUES says: one, or the inline mode
 * on a single core, where a worker's thread wake-ups cost more than they free (README,
 * "The data path on worker threads", has the measurements).
 */
export const DEFAULT_QUEUES = availableParallelism() > 1 ? 1 : 0;
/** More queues than this is a typo (the kernel allows 256 TUN queues; every queue is a thread). */
export const MAX_QUEUES = 64;

/** Crypto pool workers when neither --workers nor TUNDRA_WORKERS says (README has the measurement behind it). */
export const DEFAULT_WORKERS = 0;
export const MAX_WORKERS = 64;

function count(value: string): number {
  const text = value.trim();
  return /^\d+$/.test(text) ? Number(text) : NaN;
}

/** Parses a queue count: 0 (the inline mode: the data path on the main thread) to MAX_QUEUES. */
export function parseQueues(value: string, source: string): number {
  const n = count(value);
  if (!(n >= 0 && n <= MAX_QUEUES)) {
    throw new SettingError(`${source}: "${value}" is not a queue count (0 for the inline mode, or 1 to ${MAX_QUEUES} queue workers)`);
  }
  return n;
}

/** Parses a crypto pool size: 0 (each queue worker seals and opens its own batches) to MAX_WORKERS. */
export function parseWorkers(value: string, source: string): number {
  const n = count(value);
  if (!(n >= 0 && n <= MAX_WORKERS)) {
    throw new SettingError(`${source}: "${value}" is not a crypto worker count (0 for none, or 1 to ${MAX_WORKERS})`);
  }
  return n;
}

/** Whole seconds between REKEY_TIMEOUT (5, the least time between two initiations) and REKEY_AFTER_TIME (120). */
export function parseRekeyAfterSeconds(value: string, source: string): number {
  const n = count(value);
  const [min, max] = [REKEY_TIMEOUT / 1000, REKEY_AFTER_TIME / 1000];
  if (!(n >= min && n <= max)) {
    throw new SettingError(`${source}: "${value}" is not a rekey interval (whole seconds, ${min} to ${max}; a testing knob, unset by default)`);
  }
  return n;
}

/** The AQM's bounds: a target of 0 switches it off; an interval is at least a millisecond. */
export const AQM_MAX_TARGET_MS = 1000;
export const AQM_MAX_INTERVAL_MS = 10_000;

function milliseconds(value: string, source: string, min: number, max: number, what: string): number {
  const text = value.trim();
  const n = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) throw new SettingError(`${source}: "${value}" is not ${what} (milliseconds, ${min} to ${max})`);
  return n;
}

/** Parses the AQM's target: the queueing delay it lets stand, in ms (0: no AQM). */
export function parseAqmTarget(value: string, source: string): number {
  return milliseconds(value, source, 0, AQM_MAX_TARGET_MS, 'an AQM target (0 switches the AQM off)');
}

/** Parses the AQM's interval: how long the delay must stand above target before it acts, in ms. */
export function parseAqmInterval(value: string, source: string): number {
  return milliseconds(value, source, 1, AQM_MAX_INTERVAL_MS, 'an AQM interval');
}

/** Parses a nice value, -20 (the highest priority) to 19. */
export function parseNice(value: string, source: string): number {
  const text = value.trim();
  const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= -20 && n <= 19)) throw new SettingError(`${source}: "${value}" is not a nice value (-20, the highest priority, to 19)`);
  return n;
}

/** Parses on/off (also yes/no, true/false, 1/0). */
export function parseSwitch(value: string, source: string): boolean {
  const text = value.trim().toLowerCase();
  if (['on', 'yes', 'true', '1'].includes(text)) return true;
  if (['off', 'no', 'false', '0'].includes(text)) return false;
  throw new SettingError(`${source}: "${value}" is not on or off (also yes/no, true/false, 1/0)`);
}

interface Setting {
  readonly flag: string;
  readonly variable: string;
  /** Given more than once, the values are joined with commas (the variable holds a list). */
  readonly repeatable: boolean;
  /** Throws a SettingError naming `source` when the text is bad. */
  readonly check: (text: string, source: string) => unknown;
}

export const SETTINGS: readonly Setting[] = [
  { flag: '--offload', variable: 'TUNDRA_OFFLOAD', repeatable: false, check: parseOffloadSettings },
  { flag: '--crypto', variable: 'TUNDRA_CRYPTO', repeatable: false, check: parseCryptoBackend },
  { flag: '--stage', variable: 'TUNDRA_STAGES', repeatable: true, check: parseStageSpecs },
  { flag: '--queues', variable: 'TUNDRA_QUEUES', repeatable: false, check: parseQueues },
  { flag: '--workers', variable: 'TUNDRA_WORKERS', repeatable: false, check: parseWorkers },
  { flag: '--metrics-listen', variable: 'TUNDRA_METRICS_LISTEN', repeatable: false, check: parseMetricsListen },
  { flag: '--metrics-peers', variable: 'TUNDRA_METRICS_PEERS', repeatable: false, check: parseSwitch },
  { flag: '--rekey-after-seconds', variable: 'TUNDRA_REKEY_AFTER_SECONDS', repeatable: false, check: parseRekeyAfterSeconds },
  { flag: '--aqm-target', variable: 'TUNDRA_AQM_TARGET', repeatable: false, check: parseAqmTarget },
  { flag: '--aqm-interval', variable: 'TUNDRA_AQM_INTERVAL', repeatable: false, check: parseAqmInterval },
  { flag: '--nice', variable: 'TUNDRA_NICE', repeatable: false, check: parseNice },
];

/** A setting's environment variable: `fallback` when it is unset or blank, else what `parse` makes of it. */
function fromEnv<T, F>(env: NodeJS.ProcessEnv, variable: string, fallback: F, parse: (value: string, source: string) => T): T | F {
  const value = env[variable];
  return value === undefined || value.trim() === '' ? fallback : parse(value, variable);
}

export function settingsFromEnv(env: NodeJS.ProcessEnv): TundraSettings {
  return {
    offload: parseOffloadSettings(env.TUNDRA_OFFLOAD, 'TUNDRA_OFFLOAD'),
    crypto: fromEnv(env, 'TUNDRA_CRYPTO', 'native', (value, source) => parseCryptoBackend(value.trim(), source)),
    stages: parseStageSpecs(env.TUNDRA_STAGES ?? '', 'TUNDRA_STAGES'),
    queues: fromEnv(env, 'TUNDRA_QUEUES', DEFAULT_QUEUES, parseQueues),
    workers: fromEnv(env, 'TUNDRA_WORKERS', DEFAULT_WORKERS, parseWorkers),
    metricsListen: fromEnv(env, 'TUNDRA_METRICS_LISTEN', undefined, parseMetricsListen),
    metricsPeers: fromEnv(env, 'TUNDRA_METRICS_PEERS', true, parseSwitch),
    rekeyAfterSeconds: fromEnv(env, 'TUNDRA_REKEY_AFTER_SECONDS', undefined, parseRekeyAfterSeconds),
    aqm: {
      targetMs: fromEnv(env, 'TUNDRA_AQM_TARGET', DEFAULT_AQM.targetMs, parseAqmTarget),
      intervalMs: fromEnv(env, 'TUNDRA_AQM_INTERVAL', DEFAULT_AQM.intervalMs, parseAqmInterval),
    },
    nice: fromEnv(env, 'TUNDRA_NICE', undefined, parseNice),
  };
}

/**
 * Takes tundra's flags out of `argv` (as `--flag=value` or `--flag value`), checks each
 * and copies it into its variable in `env`; returns the other arguments. Throws a
 * SettingError for a bad value, or an Error for a flag without one.
 */
// Bounds: i < argv.length, the loop's condition.
export function takeSettingFlags(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const rest: string[] = [];
  const given = new Map<Setting, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const setting = SETTINGS.find((s) => arg === s.flag || arg.startsWith(`${s.flag}=`));
    if (setting === undefined) {
      rest.push(arg);
      continue;
    }
    const value = arg === setting.flag ? argv[++i] : arg.slice(setting.flag.length + 1);
    if (value === undefined) throw new Error(`${setting.flag} needs a value`);
    setting.check(value, setting.flag);
    const values = given.get(setting) ?? [];
    values.push(value);
    given.set(setting, setting.repeatable ? values : [value]);
  }
  for (const [setting, values] of given) env[setting.variable] = values.join(',');
  return rest;
}
