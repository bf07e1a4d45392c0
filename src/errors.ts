// tundra's errors, as undici has them: one module of classes, each with a stable
// `code` that callers may test instead of the class or the message (messages say
// what to do, and change). Imports nothing from src/'s folders: every folder uses it.
import { constants } from 'node:os';

const { EIO } = constants.errno;

export abstract class TundraError extends Error {
  abstract readonly code: string;

  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A bad flag or TUNDRA_… value; the message names the flag or variable and what it takes. */
export class SettingError extends TundraError { readonly code = 'TUNDRA_SETTING'; }

/**
 * A configuration file's problem, shown as `file:line: Key: what is wrong`. Without
 * `file` it is a bad value not yet placed: the parser adds file, line and key.
 */
export class ConfigError extends TundraError {
  readonly code = 'TUNDRA_CONFIG';

  constructor(
    /** What is wrong, without the place. */
    readonly detail: string,
    readonly file?: string,
    /** 1-based; undefined when the problem is not on one line (e.g. an unreadable file). */
    readonly line?: number,
    /** The key concerned, in its canonical spelling, or undefined. */
    readonly key?: string,
  ) {
    super(`${file === undefined ? '' : `${file}${line === undefined ? '' : `:${line}`}: `}${key === undefined ? '' : `${key}: `}${detail}`);
  }
}

/** A malformed address or prefix; `reason` says what is wrong with `input`. */
export class PrefixError extends TundraError {
  readonly code = 'TUNDRA_PREFIX';

  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`"${input}": ${reason}`);
  }
}

/** Text that is not a key (the message never quotes it: it may be a secret one). */
export class KeyFormatError extends TundraError { readonly code = 'TUNDRA_KEY_FORMAT'; }

/** Every peer number is taken (the UAPI answers ENOSPC). */
export class PeerTableFullError extends TundraError { readonly code = 'TUNDRA_PEER_TABLE_FULL'; }

/** A failed UAPI request with its Linux errno (positive, e.g. EINVAL); the answer carries it negated. */
export class UapiError extends TundraError {
  readonly code = 'TUNDRA_UAPI';

  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

/** `tundra up` could not bring the interface up (a failed `ip` command, an unresolved endpoint, a bad file name). */
export class UpError extends TundraError { readonly code = 'TUNDRA_UP'; }

/** `tundra stats` got no counters from the daemon. */
export class StatsError extends TundraError { readonly code = 'TUNDRA_STATS'; }

/**
 * The errno of a failure, positive: a UapiError's, or a node system error's (which
 * node gives negative); `otherwise` when it carries none.
 */
export function errnoOf(err: unknown, otherwise = EIO): number {
  const errno = (err as { errno?: unknown } | null)?.errno;
  return typeof errno === 'number' && Number.isInteger(errno) && errno !== 0 ? Math.abs(errno) : otherwise;
}
