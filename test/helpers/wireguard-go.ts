// Starting a wireguard-go peer for a test. Debian's wireguard-go 0.0.20220316 sometimes
// ends by itself right after it starts, before anything was configured: "Failed to
// listen on uapi socket: no such file or directory", or "Device closing" straight
// after "Interface up requested". It was seen in about one full suite run in eight on
// this machine; the cause is not found (a guess: its UAPI listener watches the shared
// /var/run/wireguard directory, where the other tests' daemons come and go). It took
// its TUN with it, so it is started once more; a second failure fails the test.
import type { ChildProcess } from 'node:child_process';
import { captureOutput, waitFor, type TwoHosts } from './netns.js';

export async function startWireguardGo(
  hosts: TwoHosts, ns: string, cmd: string, name: string, env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; output: () => string }> {
  for (let attempt = 1; ; attempt++) {
    const child = hosts.spawn(ns, cmd, ['-f', name], env);
    const output = captureOutput(child);
    try {
      await waitFor(`${cmd} to serve ${name}`, () => {
        if (child.exitCode !== null) throw new Error(`${cmd} exited: ${output()}`);
        try {
          hosts.exec(ns, 'wg', ['show', name]);
          return true;
        } catch {
          return false;
        }
      });
      return { child, output };
    } catch (err) {
      if (attempt === 2 || child.exitCode === null) throw err;
    }
  }
}
