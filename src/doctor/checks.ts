// The checks of `tundra doctor`, as pure functions of what was read (probe.ts reads
// it): each returns one finding that names what it read, and for a problem why it
// matters and the command that fixes it, written so that it works pasted into sh.

export type Status = 'ok' | 'problem' | 'skipped';

export interface Finding {
  check: string;
  status: Status;
  message: string;
  /** Why a problem matters (and how to make its fix permanent). */
  why?: string;
  /** A command that fixes it, for sh. */
  fix?: string;
  /** The WireGuard interface a per-interface check looked at. */
  interface?: string;
}

/** A sysctl as read: its name, its file and its value (undefined: the file is not there). */
export interface Sysctl {
  name: string;
  path: string;
  value: string | undefined;
}

export interface Link {
  name: string;
  mtu: number;
  up: boolean;
  loopback: boolean;
  /** `ip -d link`'s info_kind: tun, veth, wireguard, … (undefined for a plain device). */
  kind: string | undefined;
  /** For a TUN: whether it was opened with IFF_VNET_HDR (offloads possible at all). */
  vnetHeader: boolean | undefined;
}

/** ethtool -k: feature name to on/off ([fixed] and [requested on] dropped). */
export type Features = ReadonlyMap<string, boolean>;

/** Which process serves an interface's UAPI socket, read from /proc. */
export interface Daemon {
  pid: number;
  kind: 'tundra' | 'wireguard-go' | 'other';
  /** Its /proc/PID/cmdline. */
  argv: string[];
  /** The offload switch it runs with (--offload wins over TUNDRA_OFFLOAD), and where it came from. */
  offload: { text: string; source: string } | undefined;
}

export const SYSCTL_FILE = '/etc/sysctl.d/99-tundra.conf';

/** Quotes one word for sh, only when it needs it. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The sysctl name of a per-interface setting: a dot in an interface name (eth0.100) becomes a slash. */
export function confName(family: 'ipv4' | 'ipv6', dev: string, key: string): string {
  return `net.${family}.conf.${dev.replace(/\./g, '/')}.${key}`;
}

function permanently(lines: string[]): string {
  return `To keep it after a reboot, put ${lines.map((l) => `"${l}"`).join(' and ')} in ${SYSCTL_FILE} (then sysctl --system).`;
}

/** 1. IPv4 / IPv6 forwarding. */
export function checkForwarding(family: 'ipv4' | 'ipv6', s: Sysctl): Finding {
  const check = `${family}-forwarding`;
  const label = family === 'ipv4' ? 'IPv4' : 'IPv6';
  if (s.value === undefined) return { check, status: 'skipped', message: `${s.path} is not there (${label} disabled in this namespace?)` };
  const read = `${s.name} = ${s.value} (${s.path})`;
  if (s.value.trim() === '1') return { check, status: 'ok', message: `${label} forwarding is on: ${read}` };
  return {
    check, status: 'problem',
    message: `${label} forwarding is off: ${read}`,
    why: `a subnet router or exit node passes its peers' ${label} packets on to other interfaces; with forwarding off the kernel drops them. `
      + permanently([`${s.name} = 1`]),
    fix: `sysctl -w ${s.name}=1`,
  };
}

/**
 * 2. rp_filter: the value in force on a device is max(all, device); 1 (strict) drops a
 * packet whose source would be routed back out of another interface.
 */
export function checkRpFilter(all: Sysctl, devices: { dev: string; role: string; sysctl: Sysctl }[]): Finding {
  const check = 'rp-filter';
  if (all.value === undefined) return { check, status: 'skipped', message: `${all.path} is not there` };
  const allValue = Number(all.value);
  const parts = [`${all.name} = ${allValue}`];
  const strict: string[] = [];
  const toSet = new Set<string>();
  if (allValue === 1) toSet.add(all.name);
  for (const { dev, role, sysctl } of devices) {
    if (sysctl.value === undefined) continue;
    const own = Number(sysctl.value);
    const effective = Math.max(allValue, own);
    parts.push(`${dev} (${role}) ${own}, in force max(all, ${dev}) = ${effective}`);
    if (effective === 1) {
      strict.push(dev);
      if (own === 1) toSet.add(sysctl.name);
    }
  }
  const read = `${parts.join('; ')} (/proc/sys/net/ipv4/conf/*/rp_filter)`;
  if (strict.length === 0 && allValue !== 1) return { check, status: 'ok', message: `rp_filter is not strict: ${read}` };
  const names = [...toSet];
  return {
    check, status: 'problem',
    message: `strict reverse-path filtering (rp_filter 1)${strict.length > 0 ? ` on ${strict.join(', ')}` : ' on all'}: ${read}`,
    why: 'strict mode drops a packet when the route back to its source leaves by another interface: forwarded and '
      + 'asymmetric traffic (a peer sending from its LAN\'s addresses, an exit node\'s replies) disappears without a trace. '
      + 'Loose mode (2) still drops packets from sources that have no route at all. '
      + permanently([...names.map((n) => `${n} = 2`), 'net.ipv4.conf.default.rp_filter = 2']),
    fix: `sysctl -w ${names.map((n) => `${n}=2`).join(' ')}`,
  };
}

/** WireGuard's overhead per packet: outer IP header + UDP 8 + WireGuard 32 (header 16, tag 16). */
export const OVERHEAD = { ipv4: 60, ipv6: 80 } as const;

/** 3a. The tunnel's packets, sealed, must fit the default-route interface's MTU. */
export function checkMtu(tun: Link, uplink: Link | undefined, outer: { family: 'ipv4' | 'ipv6'; reason: string }): Finding {
  const check = 'mtu';
  if (uplink === undefined) return { check, status: 'skipped', message: 'no default route: no uplink to fit the tunnel\'s packets into (ip route show default)' };
  const overhead = OVERHEAD[outer.family];
  const need = tun.mtu + overhead;
  const sum = `${tun.name}'s MTU ${tun.mtu} + ${overhead} (WireGuard over ${outer.family === 'ipv4' ? 'IPv4' : 'IPv6'}: ${outer.reason}) = ${need}`;
  if (need <= uplink.mtu) return { check, status: 'ok', message: `${sum} fits ${uplink.name}'s MTU ${uplink.mtu} (the default route's interface; ip link)` };
  return {
    check, status: 'problem',
    message: `${sum} does not fit ${uplink.name}'s MTU ${uplink.mtu} (the default route's interface; ip link)`,
    why: `a full-size packet in the tunnel becomes a UDP datagram of ${need} bytes, more than ${uplink.name} carries: it is `
      + 'fragmented or dropped, and TCP stalls on large transfers. Lower the tunnel\'s MTU (MTU = in the wg-quick file) '
      + `or raise ${uplink.name}'s.`,
    fix: `ip link set dev ${tun.name} mtu ${uplink.mtu - overhead}`,
  };
}

/** Where a TCP MSS clamp was found, or why none could be looked for. */
export interface ClampSearch {
  /** The rule found, e.g. "nft: tcp option maxseg size set rt mtu". */
  found: string | undefined;
  /** What was read, e.g. "nft list ruleset; iptables-save: not installed". */
  read: string;
}

/** The nft commands that clamp the MSS of TCP connections forwarded out of `dev` to its route's MTU. */
export function clampRule(dev: string): string {
  return `nft 'add table inet tundra; add chain inet tundra forward { type filter hook forward priority mangle; policy accept; }; `
    + `add rule inet tundra forward oifname "${dev}" tcp flags syn tcp option maxseg size set rt mtu'`;
}

/** 3b. A forwarding router whose tunnel MTU is below its LAN's needs the MSS clamped. */
export function checkMss(tun: Link, forwarding: boolean, lan: Link[], clamp: ClampSearch): Finding {
  const check = 'mss-clamp';
  if (!forwarding) return { check, status: 'skipped', message: 'forwarding is off: no TCP is forwarded into the tunnel' };
  const bigger = lan.filter((l) => l.mtu > tun.mtu).sort((x, y) => y.mtu - x.mtu);
  const [biggest] = bigger;
  if (biggest === undefined) {
    return { check, status: 'ok', message: `no other interface that is up has an MTU above ${tun.name}'s ${tun.mtu}: nothing to clamp (ip link)` };
  }
  const lanText = bigger.map((l) => `${l.name} ${l.mtu}`).join(', ');
  if (clamp.found !== undefined) return { check, status: 'ok', message: `TCP MSS clamping is there (${clamp.found}) for ${tun.name} (MTU ${tun.mtu}) and ${lanText}` };
  return {
    check, status: 'problem',
    message: `no TCP MSS clamping, with ${tun.name}'s MTU ${tun.mtu} below ${lanText} (read: ${clamp.read})`,
    why: `LAN hosts offer an MSS for ${biggest.mtu}-byte packets; their segments do not fit the tunnel and get through only `
      + 'if the ICMP "fragmentation needed" reaches them, which firewalls often drop: connections hang after the handshake. '
      + 'Put the rule into /etc/nftables.conf to keep it.',
    fix: clampRule(tun.name),
  };
}

/** The TUN features TUNSETOFFLOAD turns on: CSUM, TSO4, TSO6, USO4+USO6. */
export const TUN_FEATURES = ['tx-checksum-ip-generic', 'tx-tcp-segmentation', 'tx-tcp6-segmentation', 'tx-udp-segmentation'] as const;

/** Linux release to [major, minor], or undefined when it does not start with them. */
export function kernelVersion(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function hasUso(release: string): boolean | undefined {
  const v = kernelVersion(release);
  return v === undefined ? undefined : v[0] > 6 || (v[0] === 6 && v[1] >= 2);
}

/** The daemon's command line again, without offload switches and in the background: the restart command. */
export function restartCommand(daemon: Daemon, name: string, tundra: string[]): string {
  const wait = `kill ${daemon.pid} && timeout 10 tail --pid=${daemon.pid} -f /dev/null`;
  let argv: string[];
  if (daemon.kind === 'tundra') {
    argv = [];
    const a = daemon.argv;
    for (let k = 0; k < a.length; k++) {
      const arg = a[k];
      if (arg === '--offload') k++;
      else if (arg !== undefined && !arg.startsWith('--offload=') && arg !== '-f' && arg !== '--foreground') argv.push(arg);
    }
  } else {
    argv = [...tundra, name];
  }
  return `${wait}; env -u TUNDRA_OFFLOAD -u WG_PROCESS_FOREGROUND ${argv.map(shellQuote).join(' ')}`;
}

/** 4. The TUN's offloads, as ethtool shows them, and why the ones that are off are off. */
export function checkTunOffloads(tun: Link, features: Features | undefined, daemon: Daemon | undefined, release: string, tundra: string[]): Finding {
  const check = 'tun-offloads';
  if (features === undefined) return { check, status: 'skipped', message: `ethtool -k ${tun.name} gave nothing (is ethtool installed?)` };
  const off = TUN_FEATURES.filter((f) => features.get(f) !== true);
  const read = `(ethtool -k ${tun.name})`;
  const groNote = 'TUN GRO (coalesced writes) is no ethtool feature: the daemon\'s start-up log (LOG_LEVEL=verbose) lists it';
  if (off.length === 0) return { check, status: 'ok', message: `${TUN_FEATURES.join(', ')} on ${read}; ${groNote}` };
  const offText = `${off.join(', ')} off ${read}`;
  const restart = 'Its keys and peers go with it: configure it again (wg setconf, or wg-quick down/up); if wg-quick or a '
    + `service manager starts it, ${daemon?.kind === 'tundra' ? 'remove the switch there' : 'make it start tundra there (WG_QUICK_USERSPACE_IMPLEMENTATION=tundra)'} instead.`;
  if (daemon === undefined) {
    return { check, status: 'problem', message: `${offText}; no process seen holding /var/run/wireguard/${tun.name}.sock (looking needs root, and the daemon in this namespace), so why cannot be told`, why: 'without TSO/USO on the TUN every packet is read on its own, which costs most of the throughput.' };
  }
  if (daemon.kind !== 'tundra') {
    return {
      check, status: 'problem',
      message: `${offText}: not a tundra interface: ${tun.name} is served by ${daemon.kind === 'wireguard-go' ? 'wireguard-go' : daemon.argv[0] ?? '?'} (pid ${daemon.pid})`
        + (tun.vnetHeader === false ? ', which opened the TUN without a vnet header (no offloads possible)' : ''),
      why: 'without TSO/USO on the TUN every packet is read and sealed on its own, which costs most of the throughput. '
        + `Serve it with tundra instead. ${restart}`,
      fix: restartCommand(daemon, tun.name, tundra),
    };
  }
  if (daemon.offload !== undefined) {
    return {
      check, status: 'problem',
      message: `${offText}: switched off by ${daemon.offload.source}=${daemon.offload.text} of the daemon (pid ${daemon.pid})`,
      why: `without TSO/USO on the TUN every packet is read on its own, which costs most of the throughput. Restart it without the switch. ${restart}`,
      fix: restartCommand(daemon, tun.name, tundra),
    };
  }
  if (off.length === 1 && off[0] === 'tx-udp-segmentation' && hasUso(release) === false) {
    return {
      check, status: 'problem',
      message: `${offText}: Linux ${release} has no USO on TUN (Linux 6.2+)`,
      why: 'UDP sent through the tunnel (QUIC, other tunnels) is read one packet at a time; install a Linux 6.2+ kernel.',
    };
  }
  return {
    check, status: 'problem',
    message: `${offText}: the kernel refused them to tundra (pid ${daemon.pid}); its start-up log (LOG_LEVEL=verbose) names the errno`,
    why: 'without TSO/USO on the TUN every packet is read on its own, which costs most of the throughput.',
  };
}

/** 5. The default-route interface: GRO'd UDP must stay whole when forwarded, and not be fraglist GRO. */
export function checkUplinkOffloads(uplink: Link | undefined, features: Features | undefined, tuneScript: string): Finding {
  const check = 'uplink-offloads';
  if (uplink === undefined) return { check, status: 'skipped', message: 'no default route: no uplink (ip route show default)' };
  if (features === undefined) return { check, status: 'skipped', message: `ethtool -k ${uplink.name} gave nothing (is ethtool installed?)` };
  const fwd = features.get('rx-udp-gro-forwarding');
  const list = features.get('rx-gro-list');
  if (fwd === undefined) return { check, status: 'skipped', message: `${uplink.name} has no rx-udp-gro-forwarding feature (ethtool -k ${uplink.name}; Linux 6.2+)` };
  const read = `rx-udp-gro-forwarding ${fwd ? 'on' : 'off'}, rx-gro-list ${list ? 'on' : 'off'} on ${uplink.name}, the default route's interface (ethtool -k ${uplink.name})`;
  const changes = [...(fwd ? [] : ['rx-udp-gro-forwarding on']), ...(list === true ? ['rx-gro-list off'] : [])];
  if (changes.length === 0) return { check, status: 'ok', message: read };
  return {
    check, status: 'problem',
    message: read,
    why: 'with rx-udp-gro-forwarding off the kernel does not coalesce the UDP it forwards (QUIC, DNS coming back from '
      + 'the Internet to the peers), so it reaches the TUN, and tundra, one packet at a time instead of as UDP super-packets '
      + '(USO); rx-gro-list on makes fraglist GRO packets, which are split again before the TUN. '
      + `${tuneScript} does the same and records what it changed (--revert puts it back); neither survives a reboot: `
      + 'run it from the interface\'s up hook.',
    fix: `ethtool -K ${uplink.name} ${changes.join(' ')}`,
  };
}

/** 6. USO (and UDP GRO forwarding) need Linux 6.2. */
export function checkKernel(release: string): Finding {
  const check = 'kernel-version';
  const uso = hasUso(release);
  if (uso === undefined) return { check, status: 'skipped', message: `cannot read a version from the kernel release "${release}" (uname -r)` };
  if (uso) return { check, status: 'ok', message: `Linux ${release} has UDP segmentation offload on TUN (6.2+; uname -r)` };
  return {
    check, status: 'problem',
    message: `Linux ${release} is older than 6.2: no UDP segmentation offload (USO) on TUN (uname -r)`,
    why: 'UDP through the tunnel is read and written one packet at a time, and the uplink cannot keep forwarded UDP GRO packets '
      + 'whole; TCP offloads still work. Install a Linux 6.2+ kernel (Debian 12: from bookworm-backports) and reboot.',
  };
}

/** The kernel's WireGuard: loaded, built in, loadable as a module, or none. */
export interface ModuleState {
  state: 'loaded' | 'builtin' | 'loadable' | 'absent';
  /** What said so: /sys/module/wireguard, modules.builtin, modinfo. */
  source: string;
}

/** 7. The kernel's WireGuard module makes wg-quick use it instead of tundra. */
export function checkWireguardModule(m: ModuleState): Finding {
  const check = 'wireguard-module';
  if (m.state === 'absent') return { check, status: 'ok', message: `the kernel has no WireGuard module (${m.source}): wg-quick uses the userspace implementation` };
  const what = { loaded: 'is loaded', builtin: 'is built into the kernel', loadable: 'is installed (modprobe loads it on demand)' }[m.state];
  const choose = 'Run tundra itself (tundra up /etc/wireguard/wg0.conf, or tundra wg0 then wg setconf)';
  if (m.state === 'builtin') {
    return {
      check, status: 'problem', message: `the kernel's WireGuard ${what} (${m.source})`,
      why: `wg-quick makes a kernel WireGuard interface whenever it can, and only then falls back to WG_QUICK_USERSPACE_IMPLEMENTATION: wg-quick up runs the kernel's WireGuard, not tundra. ${choose}; a built-in cannot be blacklisted.`,
    };
  }
  return {
    check, status: 'problem', message: `the kernel's WireGuard ${what} (${m.source})`,
    why: 'wg-quick makes a kernel WireGuard interface whenever it can, and only then falls back to '
      + `WG_QUICK_USERSPACE_IMPLEMENTATION: wg-quick up runs the kernel's WireGuard, not tundra. ${choose}, or keep the module out `
      + 'with the fix (after ip link del of any kernel WireGuard interface).',
    fix: `printf 'blacklist wireguard\\ninstall wireguard /bin/false\\n' > /etc/modprobe.d/tundra-no-wireguard.conf${m.state === 'loaded' ? ' && modprobe -r wireguard' : ''}`,
  };
}

/** 8. The interface: there, served by a UAPI socket, up. */
export function checkInterface(name: string, link: Link | undefined, socket: boolean, tundra: string[]): Finding {
  const check = 'interface';
  const sock = `/var/run/wireguard/${name}.sock`;
  if (link === undefined) {
    return {
      check, status: 'problem', message: `no interface ${name} in this network namespace (ip link show)`,
      why: 'nothing can be checked or carried on it.', fix: [...tundra, name].map(shellQuote).join(' '),
    };
  }
  if (!socket) {
    return {
      check, status: 'problem',
      message: `not a userspace WireGuard interface: start it with tundra ${name} (${name} is ${link.kind === undefined ? 'a device' : `a ${link.kind} device`}, and ${sock} is not there)`,
      why: `tundra makes the interface itself; the ${link.kind ?? 'existing'} device of that name has to go first (ip link del ${name}).`,
    };
  }
  if (!link.up) {
    return {
      check, status: 'problem', message: `${name} is down (ip link show ${name}), served by ${sock}`,
      why: 'nothing goes through a link that is down; wg-quick and tundra up bring it up themselves.',
      fix: `ip link set dev ${name} up`,
    };
  }
  return { check, status: 'ok', message: `${name} is up and served by ${sock}` };
}
