// Running one interface in this process: the device, its UAPI socket, and the
// ways it ends (SIGINT/SIGTERM, the socket file deleted, the interface deleted,
// also after a move to another network namespace, or with that namespace),
// as wireguard-go behaves, so wg-quick can drive it unchanged.
import { Device } from '../device/device.js';
import type { Logger } from '../log.js';
import type { OffloadSettings } from '../offload/settings.js';
import type { AqmSettings } from '../dataplane/codel.js';
import type { CryptoBackendName } from '../crypto/backends.js';
import type { StageSpec } from '../stages/user-host.js';
import { startUapiServer, type UapiServer } from '../uapi/server.js';
import { MetricsRegistry } from '../metrics/metrics.js';
import { startMetricsServer, type MetricsEndpoint, type MetricsServer } from '../metrics/server.js';

/** How often to look at the interface, wherever it lives: its MTU (wg-quick sets it) and whether it still exists. */
const LINK_CHECK_INTERVAL = 1000;

export interface RunningInterface {
  readonly device: Device;
  /** Resolves when the interface has shut down. */
  readonly done: Promise<void>;
  shutdown(reason: string): void;
  /**
   * Calls `reload` on each SIGHUP until the interface shuts down (`tundra up` re-reads its
   * file then). Without it, SIGHUP shuts the interface down as SIGTERM does.
   */
  onReload(reload: () => void): void;
}

export interface InterfaceOptions {
  mtu?: number;
  offload?: OffloadSettings;
  crypto?: CryptoBackendName;
  stages?: readonly StageSpec[];
  queues?: number;
  workers?: number;
  /** Serve /metrics here (default: no metrics endpoint). */
  metricsListen?: MetricsEndpoint | undefined;
  /** Per-peer metric series (default true). */
  metricsPeers?: boolean;
  /** A testing knob: seconds after which the initiator rekeys (default REKEY_AFTER_TIME, 120 s). */
  rekeyAfterSeconds?: number | undefined;
  /** The receive queue's AQM (default DEFAULT_AQM; targetMs 0: off). */
  aqm?: AqmSettings;
  /** The data path threads' nice value (default: the process's). */
  nice?: number | undefined;
}

export async function startInterface(name: string, logger: Logger, options: InterfaceOptions = {}): Promise<RunningInterface> {
  // A stage module that does not load fails the start with its own message.
  const device = await Device.start({ name, logger, ...options });
  let uapi: UapiServer;
  let metrics: MetricsServer | undefined;
  try {
    uapi = await startUapiServer(name, device, { log: (message) => logger.error(`UAPI: ${message}`) });
    if (options.metricsListen !== undefined) {
      const registry = new MetricsRegistry(() => device.metrics(), { perPeer: options.metricsPeers ?? true });
      try {
        metrics = await startMetricsServer(options.metricsListen, registry, (message) => logger.error(message));
      } catch (err) {
        await uapi.close();
        throw err;
      }
      logger.verbose(`Metrics at http://${options.metricsListen.host.includes(':') ? `[${metrics.address.host}]` : metrics.address.host}:${metrics.address.port}/metrics`);
    }
  } catch (err) {
    await device.close();
    throw err;
  }
  let finish!: () => void;
  const done = new Promise<void>((resolve) => { finish = resolve; });
  let stopped = false;

  // Through the TUN fd, not the name here: the interface may be moved to another network
  // namespace (a container's) and keeps working there; it ends with its deletion, there too.
  const linkCheck = setInterval(() => {
    let mtu: number | undefined;
    try {
      mtu = device.pollLink();
    } catch (err) {
      logger.error(`Cannot look at the interface: ${(err as Error).message}`);
      return;
    }
    if (mtu === undefined) shutdown('interface was removed');
    else if (mtu > 0) device.setMtu(mtu);
  }, LINK_CHECK_INTERVAL);
  const onSignal = (signal: NodeJS.Signals): void => shutdown(`received ${signal}`);
  // SIGUSR1 prints the counters as one JSON line (`tundra stats` asks over the UAPI socket).
  const onStats = (): void => {
    process.stdout.write(`${JSON.stringify(device.stats())}\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGUSR1', onStats);
  uapi.watchRemoval(() => shutdown('UAPI socket was removed'));
  // SIGHUP reloads where a reload is registered (`tundra up`), else stops cleanly (its default
  // action would leave the UAPI socket file behind). Stays installed after shutdown, as a
  // no-op: a SIGHUP while closing must not kill the process half-way.
  let reload: (() => void) | undefined;
  const onHangup = (): void => {
    if (stopped) return;
    if (reload !== undefined) reload();
    else shutdown('received SIGHUP');
  };
  process.on('SIGHUP', onHangup);

  function shutdown(reason: string): void {
    if (stopped) return;
    stopped = true;
    logger.verbose(`Shutting down: ${reason}`);
    clearInterval(linkCheck);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGUSR1', onStats);
    void Promise.allSettled([device.close(), uapi.close(), metrics?.close()]).finally(finish);
  }

  logger.verbose('Device started');
  if (options.rekeyAfterSeconds !== undefined) logger.verbose(`Rekeying after ${options.rekeyAfterSeconds} s, not 120 s (a testing knob)`);
  const onReload = (callback: () => void): void => {
    reload = callback;
  };
  return { device, done, shutdown, onReload };
}
