// tcpdump on one interface of a test namespace: the UDP datagrams that crossed it, in
// the order they did, for tests that check where datagrams went (sticky sources,
// roaming).
import type { ChildProcess } from 'node:child_process';
import { captureOutput, waitFor, type TwoHosts } from './netns.js';

export interface Datagram {
  source: string;
  sourcePort: number;
  destination: string;
  destinationPort: number;
}

export class UdpCapture {
  private readonly child: ChildProcess;
  private readonly output: () => string;

  private constructor(hosts: TwoHosts, ns: string, dev: string, filter: string[]) {
    // -n: addresses as numbers; -l and --immediate-mode: each packet as it comes, not when a buffer fills.
    this.child = hosts.spawn(ns, 'tcpdump', ['-n', '-l', '--immediate-mode', '-i', dev, ...filter]);
    this.output = captureOutput(this.child);
  }

  /** Starts tcpdump in `ns` on `dev` with `filter` (tcpdump's words, e.g. `-Q in udp and port 51820`). */
  static async start(hosts: TwoHosts, ns: string, dev: string, filter: string[]): Promise<UdpCapture> {
    const c = new UdpCapture(hosts, ns, dev, filter);
    await waitFor('tcpdump to listen', () => {
      if (c.child.exitCode !== null) throw new Error(`tcpdump exited: ${c.output()}`);
      return c.output().includes('listening on');
    });
    return c;
  }

  /** What it printed so far. */
  datagrams(): Datagram[] {
    // "12:00:00.000000 IP 198.18.0.2.9997 > 198.18.0.1.51820: UDP, length 128" (IP6 likewise).
    return [...this.output().matchAll(/ IP6? (\S+)\.(\d+) > (\S+)\.(\d+): /g)].map((m) => ({
      source: m[1]!, sourcePort: Number(m[2]), destination: m[3]!, destinationPort: Number(m[4]),
    }));
  }

  /** Stops it, once it printed `enough` when given (or after a bounded wait); what it saw. */
  async stop(enough?: (datagrams: Datagram[]) => boolean): Promise<Datagram[]> {
    if (enough !== undefined) await waitFor('tcpdump to show the datagrams', () => enough(this.datagrams()), 5000).catch(() => undefined);
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    if (this.child.exitCode === null) process.kill(this.child.pid!, 'SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    return this.datagrams();
  }
}
