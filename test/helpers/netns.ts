// Test hosts in network namespaces (docs/design.md §11), built by testnet/: names start
// with `tdr-`, the test makes and removes them itself, underlay 198.18.0.0/15, overlay
// 100.96.0.0/16 and fd7a:7d0::/48. Only processes started here are ended, by pid.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { run as runArgv, TestNet } from '../../testnet/testnet.js';

const IN_CI = process.env.CI === 'true';

/**
 * Why network tests cannot run here, or false when they can: pass it as the `skip`
 * option of the test or suite. Outside CI a missing capability skips with that
 * reason; in CI it throws, so a green CI always means the network tests ran.
 */
export function networkTestsUnavailable(tools: string[]): string | false {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const tool of tools) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) missing.push(tool);
  }
  if (missing.length === 0) return false;
  const reason = `needs ${missing.join(', ')}`;
  if (IN_CI) throw new Error(`network test cannot run in CI: ${reason}`);
  return reason;
}

export function run(cmd: string, args: string[], input?: string): string {
  return runArgv([cmd, ...args], input);
}

/** Two namespaces, `a` and `b`, joined by a veth pair with 198.18.0.1/24 and 198.18.0.2/24 (testnet/). */
export class TwoHosts extends TestNet {
  /** `far`: ThreeHosts' b–c subnet. */
  constructor(tag: string, far?: number) {
    super(`${tag}${process.pid % 100000}`, far);
  }
}

/** Collects a child's output for error messages. */
export function captureOutput(child: ChildProcess): () => string {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  return () => out;
}

export { waitFor } from './wait.js';
