// The /metrics endpoint: an HTTP server on the address --metrics-listen names.
import { createServer, type Server } from 'node:http';
import type { MetricsRegistry } from './metrics.js';
import { SettingError } from '../errors.js';

export interface MetricsEndpoint {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses ADDR:PORT (`127.0.0.1:9587`, `[::1]:9587`, `:9587` for every address).
 * Throws a SettingError naming `source` for anything else.
 */
export function parseMetricsListen(value: string, source: string): MetricsEndpoint {
  const text = value.trim();
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || !(port >= 1 && port <= 65535)) {
    throw new SettingError(`${source}: "${value}" is not ADDR:PORT (e.g. 127.0.0.1:9587, [::1]:9587, or :9587 for every address)`);
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '::' : host, port };
}

export interface MetricsServer {
  /** Where it listens (the port the kernel gave, for port 0 in tests). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/** Serves `GET /metrics` (and `/` with a pointer to it); rejects with a SettingError that names the address. */
export async function startMetricsServer(endpoint: MetricsEndpoint, registry: MetricsRegistry, log: (message: string) => void): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(path === '/' ? 200 : 404, { 'Content-Type': 'text/plain' }).end(path === '/' ? 'tundra: metrics are at /metrics\n' : 'not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        log(`metrics: ${(err as Error).message}`);
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics failed\n');
      },
    );
  });
  // A scraper that keeps connections open must not keep the daemon from exiting.
  server.keepAliveTimeout = 5000;
  const shown = endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the address is in use (another interface or exporter has it: give each its own port)'
        : err.code === 'EADDRNOTAVAIL' ? 'no interface has that address (give one of this host\'s, or :PORT for every address)' : err.message;
      reject(new SettingError(`cannot serve metrics on ${shown}: ${why}`));
    });
    server.listen({ host: endpoint.host, port: endpoint.port, ipv6Only: false }, resolve);
  });
  server.on('error', (err) => log(`metrics server: ${err.message}`));
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : endpoint.port;
  return {
    address: { host: endpoint.host, port },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
