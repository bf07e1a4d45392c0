// The implementations a benchmark runs, and how to start each one: the built-in names,
// and `--impl NAME=COMMAND` for any daemon that behaves like wireguard-go (creates the
// interface, stays in the foreground, serves the UAPI socket).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { missingToolMessage, which } from './tools.js';

export interface ImplSpec {
  /** "tundra", "wireguard-go", or the user's NAME: [A-Za-z0-9._@+-]+ */
  label: string;
  kind: 'userspace' | 'kernel';
  /** userspace: the daemon's argv with %IF% where the interface name goes; it stays in the
   *  foreground, creates the TUN and serves /var/run/wireguard/%IF%.sock. kernel: [] */
  argv: string[];
  /** extra environment for the daemon */
  env: Record<string, string>;
}

export const TUNDRA_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** Upstream wireguard-go (with offloads), when its binary is named; .ci/run names ../shared/peers'. */
export const UPSTREAM_ENV = 'TUNDRA_UPSTREAM_WIREGUARD_GO';

const LABEL = /^[A-Za-z0-9._@+-]{1,32}$/;

export const BUILTIN_NAMES = ['tundra', 'tundra-nooffload', 'wireguard-go', 'wireguard-go-upstream', 'kernel'] as const;

/** A built-in implementation by name; undefined for a name that is not one. */
export function builtinImpl(name: string, env: NodeJS.ProcessEnv = process.env): ImplSpec | undefined {
  const tundra = [process.execPath, TUNDRA_MAIN, '-f', '%IF%'];
  switch (name) {
    case 'tundra':
      return { label: name, kind: 'userspace', argv: tundra, env: {} };
    case 'tundra-nooffload':
      return { label: name, kind: 'userspace', argv: tundra, env: { TUNDRA_OFFLOAD: 'none' } };
    case 'wireguard-go':
      return { label: name, kind: 'userspace', argv: ['wireguard-go', '-f', '%IF%'], env: {} };
    case 'wireguard-go-upstream': {
      const path = env[UPSTREAM_ENV];
      if (path === undefined || path === '') {
        throw new Error(`wireguard-go-upstream: name its binary with ${UPSTREAM_ENV}=PATH (or give it as --impl NAME='PATH -f %IF%')`);
      }
      return { label: name, kind: 'userspace', argv: [path, '-f', '%IF%'], env: {} };
    }
    case 'kernel':
      return { label: name, kind: 'kernel', argv: [], env: {} };
    default:
      return undefined;
  }
}

/**
 * `--impl` as given: a built-in name, or NAME=COMMAND where COMMAND is split on white space
 * (no quoting), may start with `env VAR=VALUE ...`, must contain %IF%, and whose program
 * `tundra` means this checkout's tundra (so `tundra-q2=env TUNDRA_QUEUES=2 tundra -f %IF%`).
 */
export function parseImpl(text: string, env: NodeJS.ProcessEnv = process.env): ImplSpec {
  const eq = text.indexOf('=');
  if (eq < 0) {
    const builtin = builtinImpl(text, env);
    if (builtin === undefined) {
      throw new Error(`--impl ${text}: not a built-in implementation (${BUILTIN_NAMES.join(', ')}); give others as NAME=COMMAND`);
    }
    return builtin;
  }
  const label = text.slice(0, eq);
  if (!LABEL.test(label)) throw new Error(`--impl ${text}: the name must be 1 to 32 letters, digits or . _ @ + -`);
  const words = text.slice(eq + 1).trim().split(/\s+/).filter((w) => w !== '');
  const extra: Record<string, string> = {};
  if (words[0] === 'env') {
    words.shift();
    while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!)) {
      const w = words.shift()!;
      extra[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
    }
  }
  if (words.length === 0) throw new Error(`--impl ${text}: no command after ${label}=`);
  if (!words.some((w) => w.includes('%IF%'))) {
    throw new Error(`--impl ${text}: the command has no %IF% (where the interface name goes), e.g. ${label}='wireguard-go -f %IF%'`);
  }
  const argv = words[0] === 'tundra' ? [process.execPath, TUNDRA_MAIN, ...words.slice(1)] : words;
  return { label, kind: 'userspace', argv, env: extra };
}

/** Why this implementation cannot run here (its program is missing), or undefined. */
export function implProblem(impl: ImplSpec): string | undefined {
  if (impl.kind === 'kernel') return undefined; // Topology.up finds out, by trying
  const program = impl.argv[0]!;
  if (which(program) === null) return `${impl.label}: ${missingToolMessage(program)}`;
  if (impl.argv[1] === TUNDRA_MAIN && !existsSync(TUNDRA_MAIN)) {
    return `${impl.label}: ${TUNDRA_MAIN} is not built: run npm run build`;
  }
  return undefined;
}
