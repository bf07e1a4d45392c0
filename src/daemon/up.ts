// `tundra up CONFIG`: a convenience that brings up an interface from a wg-quick
// file in this process, for machines without wg-quick. It sets the keys, peers,
// addresses, MTU and routes; DNS, hooks and SaveConfig are wg-quick's business and
// are reported as ignored. Use wg-quick (with WG_QUICK_USERSPACE_IMPLEMENTATION)
// for the full behaviour, including default routes through the tunnel.
import { spawnSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { basename } from 'node:path';
import { readConfigFile, type WireGuardConfig } from '../config/wg-config.js';
import { Logger, type LogLevel } from '../log.js';
import { settingsFromEnv } from './settings.js';
import { formatPrefix } from '../routing/prefix.js';
import type { SetRequest } from '../uapi/protocol.js';
import { startInterface } from './foreground.js';

const INTERFACE_NAME = /^[a-zA-Z0-9_=+.-]{1,15}$/;

export class UpError extends Error {}

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new UpError(`ip ${args.join(' ')}: ${(r.stderr || r.error?.message || 'failed').trim()}`);
}

async function toSetRequest(cfg: WireGuardConfig): Promise<SetRequest> {
  const peers = await Promise.all(cfg.peers.map(async (peer) => {
    let endpoint: { address: string; port: number } | undefined;
    if (peer.endpoint !== undefined) {
      try {
        endpoint = { address: (await lookup(peer.endpoint.host)).address, port: peer.endpoint.port };
      } catch (err) {
        throw new UpError(`cannot resolve endpoint "${peer.endpoint.host}": ${(err as Error).message}`);
      }
    }
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
  }));
  return {
    ...(cfg.interface.privateKey === undefined ? {} : { privateKey: cfg.interface.privateKey }),
    ...(cfg.interface.listenPort === undefined ? {} : { listenPort: cfg.interface.listenPort }),
    ...(cfg.interface.fwMark === undefined ? {} : { fwmark: cfg.interface.fwMark }),
    replacePeers: true,
    peers,
  };
}

/** Brings the interface up and resolves when it has shut down again. */
export async function up(configPath: string, logLevel: LogLevel): Promise<void> {
  const name = basename(configPath).replace(/\.conf$/, '');
  const logger = new Logger(name, logLevel);
  if (!INTERFACE_NAME.test(name)) {
    throw new UpError(`${configPath}: the file name must be the interface name (1-15 of a-z A-Z 0-9 _=+.-) plus ".conf"`);
  }
  const cfg = await readConfigFile(configPath, 'wg-quick');
  const request = await toSetRequest(cfg);
  const settings = settingsFromEnv(process.env);
  const running = await startInterface(name, logger, { ...settings, ...(cfg.interface.mtu === undefined ? {} : { mtu: cfg.interface.mtu }) });
  try {
    await running.device.set(request);
    for (const address of cfg.interface.addresses) {
      ip([`-${address.family}`, 'address', 'add', formatPrefix(address), 'dev', name]);
    }
    ip(['link', 'set', 'dev', name, 'up']);
    const table = cfg.interface.table;
    if (table !== 'off') {
      for (const prefix of cfg.peers.flatMap((p) => p.allowedIPs)) {
        if (prefix.bits === 0) {
          logger.error(`not routing ${formatPrefix(prefix)} through ${name}: default routes need wg-quick's policy routing`);
          continue;
        }
        ip([`-${prefix.family}`, 'route', 'replace', formatPrefix(prefix), 'dev', name, ...(table === undefined || table === 'auto' ? [] : ['table', table])]);
      }
    }
  } catch (err) {
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
  await running.done;
}
