// Test hosts in network namespaces (docs/design.md §11): names start with `tdr-`, the
// test makes and removes them itself, underlay 198.18.0.0/15, overlay 100.96.0.0/16
// and fd7a:7d0::/48. Only processes started here are ended, by pid.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

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
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.error?.message || ''}`.trim());
  }
  return r.stdout;
}

/** Two namespaces, `a` and `b`, joined by a veth pair with 198.18.0.1/24 and 198.18.0.2/24. */
export class TwoHosts {
  readonly a: string;
  readonly b: string;
  readonly underlayA = '198.18.0.1';
  readonly underlayB = '198.18.0.2';
  /** The veth ends carrying the underlay addresses, in a and in b. */
  readonly vethA: string;
  readonly vethB: string;
  private readonly children: ChildProcess[] = [];
  private readonly onExit = (): void => this.destroy();

  constructor(tag: string) {
    const id = `${tag}${process.pid % 100000}`;
    this.a = `tdr-${id}-a`;
    this.b = `tdr-${id}-b`;
    const vethA = this.vethA = `tdr${id}va`.slice(0, 15);
    const vethB = this.vethB = `tdr${id}vb`.slice(0, 15);
    process.once('exit', this.onExit);
    try {
      run('ip', ['netns', 'add', this.a]);
      run('ip', ['netns', 'add', this.b]);
      run('ip', ['-n', this.a, 'link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB, 'netns', this.b]);
      run('ip', ['-n', this.a, 'addr', 'add', `${this.underlayA}/24`, 'dev', vethA]);
      run('ip', ['-n', this.b, 'addr', 'add', `${this.underlayB}/24`, 'dev', vethB]);
      for (const [ns, dev] of [[this.a, vethA], [this.b, vethB]] as const) {
        run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      }
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /** Runs a command inside a namespace and returns its standard output. */
  exec(ns: string, cmd: string, args: string[], input?: string): string {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], input);
  }

  /** Starts a long-running process inside a namespace; destroy() ends it. */
  spawn(ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    return child;
  }

  destroy(): void {
    process.removeListener('exit', this.onExit);
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try { process.kill(child.pid, 'SIGTERM'); } catch { /* already gone */ }
      }
    }
    // `ip netns exec` execs the command, so the pid above is the process itself;
    // give it a moment to close its TUN before the namespaces go.
    spawnSync('sleep', ['0.2']);
    for (const ns of [this.a, this.b]) spawnSync('ip', ['netns', 'del', ns]);
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
