// `tundra up CONFIG`: a convenience that brings up an interface from a wg-quick
// file in this process, for machines without wg-quick. It sets the keys, peers,
// addresses, MTU and routes; DNS, hooks and SaveConfig are wg-quick's business and
// are reported as ignored. Use wg-quick (with WG_QUICK_USERSPACE_IMPLEMENTATION)
// for the full behaviour, including default routes through the tunnel.
//
// SIGHUP re-reads the file and applies it as `wg syncconf` does: the interface's
// WireGuard keys and the peers, diffed against the running device so that peers
// that did not change (and their sessions) are left alone, and the routes of the
// allowed IPs added or removed. Address, MTU and Table are applied only at start.
import { spawnSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { basename } from 'node:path';
import { readConfigFile, worldAccessibleWarning, type PeerConfig, type WireGuardConfig } from '../config/wg-config.js';
import { clamp, encodeKey, sameKey } from '../crypto/keys.js';
import { KEY_SIZE } from '../crypto/sizes.js';
import { Logger, type LogLevel } from '../log.js';
import { settingsFromEnv } from './settings.js';
import { formatPrefix, type Prefix } from '../routing/prefix.js';
import { wipeSetRequest, type PeerChange, type SetRequest, type UapiEndpoint, type UapiInterfaceState } from '../uapi/protocol.js';
import { startInterface, type RunningInterface } from './foreground.js';
import { ConfigError, UpError } from '../errors.js';

const INTERFACE_NAME = /^[a-zA-Z0-9_=+.-]{1,15}$/;

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new UpError(`ip ${args.join(' ')}: ${(r.stderr || r.error?.message || 'failed').trim()}`);
}

/** Each peer's endpoint, resolved (a host name once, as wg does), in the file's order. */
async function resolveEndpoints(cfg: WireGuardConfig): Promise<(UapiEndpoint | undefined)[]> {
  return Promise.all(cfg.peers.map(async (peer) => {
    if (peer.endpoint === undefined) return undefined;
    try {
      return { address: (await lookup(peer.endpoint.host)).address, port: peer.endpoint.port };
    } catch (err) {
      throw new UpError(`cannot resolve endpoint "${peer.endpoint.host}": ${(err as Error).message}`);
    }
  }));
}

function fullPeer(peer: PeerConfig, endpoint: UapiEndpoint | undefined): PeerChange {
  return {
    publicKey: peer.publicKey,
    remove: false,
    updateOnly: false,
    ...(peer.presharedKey === undefined ? {} : { presharedKey: peer.presharedKey }),
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(peer.persistentKeepalive === undefined ? {} : { persistentKeepalive: peer.persistentKeepalive }),
    replaceAllowedIPs: true,
    allowedIPs: peer.allowedIPs.map((prefix) => ({ prefix, remove: false })),
  };
}

function toSetRequest(cfg: WireGuardConfig, endpoints: readonly (UapiEndpoint | undefined)[]): SetRequest {
  return {
    ...(cfg.interface.privateKey === undefined ? {} : { privateKey: clamp(cfg.interface.privateKey) }),
    ...(cfg.interface.listenPort === undefined ? {} : { listenPort: cfg.interface.listenPort }),
    ...(cfg.interface.fwMark === undefined ? {} : { fwmark: cfg.interface.fwMark }),
    replacePeers: true,
    peers: cfg.peers.map((peer, i) => fullPeer(peer, endpoints[i])),
  };
}

/** What was applied last: the file and its resolved endpoints (by public key). */
export interface AppliedConfig {
  readonly cfg: WireGuardConfig;
  readonly endpoints: ReadonlyMap<string, UapiEndpoint | undefined>;
}

export function appliedConfig(cfg: WireGuardConfig, endpoints: readonly (UapiEndpoint | undefined)[]): AppliedConfig {
  return { cfg, endpoints: new Map(cfg.peers.map((p, i) => [encodeKey(p.publicKey), endpoints[i]])) };
}

/** What a reload changes, for its log line. */
export interface SyncSummary {
  added: number;
  removed: number;
  updated: number;
  interfaceKeys: string[];
}

/**
 * The request that takes the running device `current` to the file `next`, as `wg
 * syncconf` does, but touching only what differs: peers not in the file are removed,
 * new ones added, and of the others only the fields that changed are sent (nothing,
 * for a peer that did not change). A key the file leaves out is left as it is. An
 * endpoint is sent when the file's changed since `previous` (or the peer is new), so
 * a peer that roamed keeps its current endpoint while its line stays the same.
 */
export function syncRequest(
  current: UapiInterfaceState, previous: AppliedConfig, next: WireGuardConfig, endpoints: readonly (UapiEndpoint | undefined)[],
): { request: SetRequest; summary: SyncSummary } {
  const request: SetRequest = { replacePeers: false, peers: [] };
  const summary: SyncSummary = { added: 0, removed: 0, updated: 0, interfaceKeys: [] };
  const iface = next.interface;
  if (iface.privateKey !== undefined && !sameKey(clamp(iface.privateKey), current.privateKey === undefined ? new Uint8Array(KEY_SIZE) : clamp(current.privateKey))) {
    request.privateKey = clamp(iface.privateKey);
    summary.interfaceKeys.push('PrivateKey');
  }
  // ListenPort = 0 (any port) is not a change from the port picked before.
  if (iface.listenPort !== undefined && iface.listenPort !== current.listenPort
    && !(iface.listenPort === 0 && (previous.cfg.interface.listenPort ?? 0) === 0)) {
    request.listenPort = iface.listenPort;
    summary.interfaceKeys.push('ListenPort');
  }
  if (iface.fwMark !== undefined && iface.fwMark !== current.fwmark) {
    request.fwmark = iface.fwMark;
    summary.interfaceKeys.push('FwMark');
  }
  const wanted = new Set(next.peers.map((p) => encodeKey(p.publicKey)));
  for (const peer of current.peers) {
    if (wanted.has(encodeKey(peer.publicKey))) continue;
    request.peers.push({ publicKey: peer.publicKey, remove: true, updateOnly: false, replaceAllowedIPs: false, allowedIPs: [] });
    summary.removed++;
  }
  const running = new Map(current.peers.map((p) => [encodeKey(p.publicKey), p]));
  next.peers.forEach((peer, i) => {
    const key = encodeKey(peer.publicKey);
    const endpoint = endpoints[i];
    const now = running.get(key);
    if (now === undefined) {
      request.peers.push(fullPeer(peer, endpoint));
      summary.added++;
      return;
    }
    const change: PeerChange = { publicKey: peer.publicKey, remove: false, updateOnly: true, replaceAllowedIPs: false, allowedIPs: [] };
    let changed = false;
    const psk = peer.presharedKey ?? new Uint8Array(KEY_SIZE);
    if (!sameKey(psk, now.presharedKey ?? new Uint8Array(KEY_SIZE))) {
      change.presharedKey = psk;
      changed = true;
    }
    const keepalive = peer.persistentKeepalive ?? 0;
    if (keepalive !== now.persistentKeepalive) {
      change.persistentKeepalive = keepalive;
      changed = true;
    }
    const before = previous.endpoints.get(key);
    if (endpoint !== undefined && (now.endpoint === undefined || before === undefined
      || before.address !== endpoint.address || before.port !== endpoint.port)) {
      change.endpoint = endpoint;
      changed = true;
    }
    if (!samePrefixes(peer.allowedIPs, now.allowedIPs)) {
      change.replaceAllowedIPs = true;
      change.allowedIPs = peer.allowedIPs.map((prefix) => ({ prefix, remove: false }));
      changed = true;
    }
    if (!changed) return;
    request.peers.push(change);
    summary.updated++;
  });
  return { request, summary };
}

function samePrefixes(a: readonly Prefix[], b: readonly Prefix[]): boolean {
  const left = new Set(a.map(formatPrefix));
  const right = new Set(b.map(formatPrefix));
  return left.size === right.size && [...left].every((p) => right.has(p));
}

/** The routes `tundra up` makes: every allowed IP but a default route (that needs wg-quick's policy routing). */
function routedPrefixes(cfg: WireGuardConfig): Map<string, Prefix> {
  const routes = new Map<string, Prefix>();
  for (const prefix of cfg.peers.flatMap((p) => p.allowedIPs)) if (prefix.bits > 0) routes.set(formatPrefix(prefix), prefix);
  return routes;
}

function routeArgs(verb: 'replace' | 'del', prefix: Prefix, name: string, table: string | undefined): string[] {
  return [`-${prefix.family}`, 'route', verb, formatPrefix(prefix), 'dev', name, ...(table === undefined || table === 'auto' ? [] : ['table', table])];
}

function logDefaultRoutes(cfg: WireGuardConfig, name: string, logger: Logger): void {
  if (cfg.interface.table === 'off') return;
  for (const prefix of cfg.peers.flatMap((p) => p.allowedIPs)) {
    if (prefix.bits === 0) logger.error(`not routing ${formatPrefix(prefix)} through ${name}: default routes need wg-quick's policy routing`);
  }
}

/**
 * Zeroes the keys read from the file and the request made of them, once the device has
 * its own copies: a config kept for the next reload then holds no key (the diff reads
 * the device's keys, not the last file's).
 */
function wipeKeys(cfg: WireGuardConfig, request: SetRequest): void {
  wipeSetRequest(request);
  cfg.interface.privateKey?.fill(0);
  for (const peer of cfg.peers) peer.presharedKey?.fill(0);
}

/** Reads the file as wg-quick would, after its warning when others can reach the file. */
async function readConfig(configPath: string, logger: Logger): Promise<WireGuardConfig> {
  const warning = await worldAccessibleWarning(configPath);
  if (warning !== undefined) logger.warning(warning);
  return readConfigFile(configPath, 'wg-quick');
}

/** Brings the interface up and resolves when it has shut down again. */
export async function up(configPath: string, logLevel: LogLevel): Promise<void> {
  const name = basename(configPath).replace(/\.conf$/, '');
  const logger = new Logger(name, logLevel);
  if (!INTERFACE_NAME.test(name)) {
    throw new UpError(`${configPath}: the file name must be the interface name (1-15 of a-z A-Z 0-9 _=+.-) plus ".conf"`);
  }
  // A SIGHUP before the interface is up must not kill the process (its default): it is applied once up.
  let earlyHangup = false;
  const onEarlyHangup = (): void => { earlyHangup = true; };
  process.on('SIGHUP', onEarlyHangup);
  let running: RunningInterface;
  let cfg: WireGuardConfig;
  let endpoints: (UapiEndpoint | undefined)[];
  try {
    cfg = await readConfig(configPath, logger);
    endpoints = await resolveEndpoints(cfg);
    const settings = settingsFromEnv(process.env);
    running = await startInterface(name, logger, { ...settings, ...(cfg.interface.mtu === undefined ? {} : { mtu: cfg.interface.mtu }) });
  } catch (err) {
    process.off('SIGHUP', onEarlyHangup);
    throw err;
  }
  let applied = appliedConfig(cfg, endpoints);
  try {
    const request = toSetRequest(cfg, endpoints);
    try {
      await running.device.set(request);
    } finally {
      wipeKeys(cfg, request);
    }
    for (const address of cfg.interface.addresses) {
      ip([`-${address.family}`, 'address', 'add', formatPrefix(address), 'dev', name]);
    }
    ip(['link', 'set', 'dev', name, 'up']);
    if (cfg.interface.table !== 'off') {
      logDefaultRoutes(cfg, name, logger);
      for (const prefix of routedPrefixes(cfg).values()) ip(routeArgs('replace', prefix, name, cfg.interface.table));
    }
  } catch (err) {
    process.off('SIGHUP', onEarlyHangup);
    running.shutdown('set-up failed');
    await running.done;
    throw err;
  }
  const ignored = [
    cfg.interface.dns.length > 0 ? 'DNS' : '',
    cfg.interface.preUp.length + cfg.interface.postUp.length + cfg.interface.preDown.length + cfg.interface.postDown.length > 0 ? 'PreUp/PostUp/PreDown/PostDown' : '',
    cfg.interface.saveConfig ? 'SaveConfig' : '',
  ].filter((k) => k !== '');
  if (ignored.length > 0) logger.error(`ignored (wg-quick handles these): ${ignored.join(', ')}`);

  let stopped = false;
  void running.done.then(() => { stopped = true; });
  // One reload at a time; a SIGHUP during one makes one more after it.
  let reloading = false;
  let again = false;
  const reload = async (): Promise<void> => {
    if (reloading) {
      again = true;
      return;
    }
    reloading = true;
    try {
      do {
        again = false;
        applied = await reloadOnce(configPath, name, running, applied, logger, () => stopped);
      } while (again && !stopped);
    } finally {
      reloading = false;
    }
  };
  const onHangup = (): void => {
    reload().catch((err: unknown) => logger.error(`reload of ${configPath} failed: ${(err as Error).message}`));
  };
  running.onReload(onHangup);
  process.off('SIGHUP', onEarlyHangup);
  if (earlyHangup) onHangup();
  await running.done;
}

/**
 * Applies the file once more; returns what is applied now. A file that does not parse
 * or resolve, or a set the device refuses, changes nothing and is logged.
 */
async function reloadOnce(
  configPath: string, name: string, running: RunningInterface, applied: AppliedConfig, logger: Logger, stopped: () => boolean,
): Promise<AppliedConfig> {
  let next: WireGuardConfig;
  let endpoints: (UapiEndpoint | undefined)[];
  try {
    next = await readConfig(configPath, logger);
    endpoints = await resolveEndpoints(next);
  } catch (err) {
    if (!(err instanceof ConfigError || err instanceof UpError)) throw err;
    logger.error(`reload: ${err.message}; nothing was changed`);
    return applied;
  }
  if (stopped()) return applied;
  const { request, summary } = syncRequest(running.device.get(), applied, next, endpoints);
  try {
    await running.device.set(request);
  } catch (err) {
    logger.error(`reload: ${configPath}: the interface refused the change (${(err as Error).message}); nothing was changed`);
    return applied;
  } finally {
    wipeKeys(next, request);
  }
  const prev = applied.cfg;
  // Routes as `tundra up` made them, in the table it started with.
  const table = prev.interface.table;
  const routes = { added: 0, removed: 0 };
  if (table !== 'off') {
    const before = routedPrefixes(prev);
    const after = routedPrefixes(next);
    const defaults = new Set(prev.peers.flatMap((p) => p.allowedIPs).filter((x) => x.bits === 0).map(formatPrefix));
    for (const prefix of next.peers.flatMap((p) => p.allowedIPs)) {
      if (prefix.bits === 0 && !defaults.has(formatPrefix(prefix))) {
        logger.error(`not routing ${formatPrefix(prefix)} through ${name}: default routes need wg-quick's policy routing`);
      }
    }
    for (const [text, prefix] of before) {
      if (after.has(text)) continue;
      try {
        ip(routeArgs('del', prefix, name, table));
        routes.removed++;
      } catch (err) {
        logger.error(`reload: ${(err as Error).message}`);
      }
    }
    for (const [text, prefix] of after) {
      if (before.has(text)) continue;
      try {
        ip(routeArgs('replace', prefix, name, table));
        routes.added++;
      } catch (err) {
        logger.error(`reload: ${(err as Error).message}`);
      }
    }
  }
  const restart = [
    formatAll(prev.interface.addresses) !== formatAll(next.interface.addresses) ? 'Address' : '',
    prev.interface.mtu !== next.interface.mtu ? 'MTU' : '',
    prev.interface.table !== next.interface.table ? 'Table' : '',
    prev.interface.dns.join(',') !== next.interface.dns.join(',') ? 'DNS' : '',
  ].filter((k) => k !== '');
  if (restart.length > 0) {
    logger.error(`reload: ${restart.join(', ')} changed in ${configPath} but not applied: tundra up sets Address, MTU and Table only at start`
      + ` (restart it), and DNS never (wg-quick's)`);
  }
  const keys = summary.interfaceKeys.length > 0 ? `; set ${summary.interfaceKeys.join(', ')}` : '';
  logger.verbose(`Reloaded ${configPath}: peers ${summary.added} added, ${summary.removed} removed, ${summary.updated} updated`
    + `, ${next.peers.length - summary.added - summary.updated} unchanged${keys}; routes ${routes.added} added, ${routes.removed} removed`);
  return appliedConfig(next, endpoints);
}

function formatAll(addresses: readonly Prefix[]): string {
  return addresses.map(formatPrefix).sort().join(',');
}
