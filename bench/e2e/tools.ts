// The external programs the benchmark runs: where they are, and what to tell the user
// when one is missing (the runner skips the cells that need it, with this message).
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { Unavailable } from './errors.js';

/** The Debian package of each command the benchmark may need. */
export const DEBIAN_PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  iperf3: 'iperf3',
  sockperf: 'sockperf',
  ping: 'iputils-ping',
  ip: 'iproute2',
  ss: 'iproute2',
  wg: 'wireguard-tools',
  ethtool: 'ethtool',
  nft: 'nftables',
  sysctl: 'procps',
  'wireguard-go': 'wireguard-go',
});

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of `cmd`, searched on PATH as a shell would (no shell run), or null. A
 *  command with a slash is taken as a path: it must exist and be executable. */
export function which(cmd: string): string | null {
  if (cmd === '') return null;
  if (cmd.includes('/')) return isExecutableFile(cmd) ? resolve(cmd) : null;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue; // an empty entry would mean the working directory: not searched
    const path = join(dir, cmd);
    if (isExecutableFile(path)) return resolve(path);
  }
  return null;
}

export function missingToolMessage(cmd: string): string {
  if (cmd === 'secnetperf') {
    return 'secnetperf is not on PATH: it is not packaged for Debian; build it from msquic ' +
      '(https://github.com/microsoft/msquic: apt-get install -y cmake build-essential git; ' +
      'git clone --recurse-submodules https://github.com/microsoft/msquic.git; ' +
      'cmake -S msquic -B msquic/build -DCMAKE_BUILD_TYPE=Release -DQUIC_BUILD_PERF=ON; ' +
      'cmake --build msquic/build --target secnetperf -j; the binary is msquic/build/bin/Release/secnetperf) and put it on PATH';
  }
  const pkg = DEBIAN_PACKAGES[cmd];
  return pkg === undefined ? `${cmd} is not on PATH` : `${cmd} is not installed (Debian: apt-get install -y ${pkg})`;
}

/** The path of `cmd`; throws Unavailable saying how to get it when it is missing. */
export function requireTool(cmd: string): string {
  const path = which(cmd);
  if (path === null) throw new Unavailable(missingToolMessage(cmd));
  return path;
}
