// The implementations a benchmark runs: how to start each one.

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
