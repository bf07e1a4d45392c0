// The UAPI Unix socket at /var/run/wireguard/<interface>.sock, where `wg` and
// `wg-quick` find a userspace WireGuard interface. It serves one UapiDevice; bad
// clients get an errno or a closed connection, never a crashed daemon.
import { watch, type FSWatcher, lstatSync, unlinkSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { interfaceNameProblem } from '../tun/tun.js';
import { constants } from 'node:os';
import { UapiError } from '../errors.js';
import {
  formatFailure,
  formatGetResponse,
  formatStatsResponse,
  SUCCESS_RESPONSE,
  UapiStream,
  type UapiCommand,
  type UapiDevice,
  type UapiLimits,
} from './protocol.js';

export const DEFAULT_SOCKET_DIRECTORY = '/var/run/wireguard';

export interface UapiServerOptions extends UapiLimits {
  /** Where the socket goes; created with mode 0755 when missing. */
  directory?: string;
  /** Told about failed requests and misbehaving clients; silent when not given. */
  log?: (message: string) => void;
}

export interface UapiServer {
  /** `<directory>/<interface>.sock` */
  readonly path: string;
  /**
   * Calls `callback` once when the socket file is deleted or replaced by another
   * file. wireguard-go exits then (that is how `rm /var/run/wireguard/wg0.sock` stops
   * it), and the daemon should do the same: close() and shut the interface down.
   */
  watchRemoval(callback: () => void): void;
  /** Stops listening, drops the connections, and removes the socket file if it is still ours. */
  close(): Promise<void>;
}

/**
 * Listens on `<directory>/<interfaceName>.sock`, mode 0600. Refuses when another
 * process answers on that path; replaces a stale socket (one nobody listens on).
 */
export async function startUapiServer(interfaceName: string, device: UapiDevice, options: UapiServerOptions = {}): Promise<UapiServer> {
  // The name becomes a file name.
  const problem = interfaceNameProblem(interfaceName);
  if (problem !== undefined) throw new Error(problem);
  const directory = options.directory ?? DEFAULT_SOCKET_DIRECTORY;
  const log = options.log ?? (() => {});
  const path = join(directory, `${interfaceName}.sock`);
  // mkdir's mode is masked by the umask: directories made here get wireguard-go's 0755
  // under any umask; an existing one is left as it is.
  const created = await mkdir(directory, { recursive: true, mode: 0o755 });
  for (let d = directory; created !== undefined; d = dirname(d)) {
    await chmod(d, 0o755);
    if (d === created || d === dirname(d)) break;
  }
  await refuseLiveSocket(path);

  // Bind inside a fresh 0700 directory, set the mode, then rename into place: nobody
  // can connect before the mode is 0600, no process-wide umask is touched, and a
  // stale socket is replaced atomically. It also keeps libuv, which unlinks the
  // bound path on close whatever is there by then, away from the public path.
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => serveConnection(socket, device, options, log, sockets));
  // Failed accepts (EMFILE, say) land here; the server keeps listening.
  server.on('error', (err) => log(`server error: ${err.message}`));
  const staging = await mkdtemp(join(directory, `.${interfaceName}-`));
  try {
    const bound = join(staging, 'uapi.sock');
    if (Buffer.byteLength(bound) > 107 || Buffer.byteLength(path) > 107) {
      throw new Error(`socket path in ${directory} is longer than a Unix socket address allows`);
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bound, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(bound, 0o600);
    await rename(bound, path);
  } catch (err) {
    server.close();
    throw err;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  const { dev, ino } = await lstat(path);
  return new ListeningUapiServer(path, server, sockets, () => isOurs(path, dev, ino));
}

class ListeningUapiServer implements UapiServer {
  private closed = false;
  private watcher: FSWatcher | undefined;
  private readonly callbacks: Array<() => void> = [];
  private removed = false;

  constructor(
    readonly path: string,
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    private readonly stillOurs: () => boolean,
  ) {}

  watchRemoval(callback: () => void): void {
    if (this.closed) return;
    this.callbacks.push(callback);
    if (this.watcher === undefined) {
      // The directory, not the file: inotify on the file would follow our inode, and a
      // replacement (another daemon renaming its socket over ours) shows only here.
      const name = basename(this.path);
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, filename) => {
        if (filename === null || filename === name) this.check();
      });
      // The directory itself went away, or the watch broke: look once more and stop.
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.check();
      });
    }
    // It may be gone already; answer after this call returns, as the watch would.
    queueMicrotask(() => this.check());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.close();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Another daemon may own the path by now; remove only our own file.
    if (this.stillOurs()) {
      try {
        unlinkSync(this.path);
      } catch {
        // gone meanwhile
      }
    }
  }

  private check(): void {
    if (this.closed || this.removed || this.stillOurs()) return;
    this.removed = true;
    this.watcher?.close();
    for (const callback of this.callbacks) callback();
  }
}

function isOurs(path: string, dev: number, ino: number): boolean {
  try {
    const st = lstatSync(path);
    return st.dev === dev && st.ino === ino;
  } catch {
    return false;
  }
}

/** Throws when something answers on `path` or it is not a socket; a stale socket is left for rename to replace. */
async function refuseLiveSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket`);
  await new Promise<void>((resolve, reject) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      reject(new Error(`${path} is in use: another daemon serves this interface`));
    });
    probe.once('error', (err: NodeJS.ErrnoException) => {
      // ECONNREFUSED: nobody listens (the daemon died); `wg` calls it stale too.
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve();
      else reject(new Error(`${path} cannot be checked: ${err.message}`));
    });
  });
}

/**
 * One client. Commands run one at a time, in order: reading pauses while a `set`
 * waits for the device or an answer waits for the client to read, so a client can
 * neither reorder requests nor make the daemon buffer without bound.
 */
function serveConnection(socket: Socket, device: UapiDevice, limits: UapiLimits, log: (message: string) => void, sockets: Set<Socket>): void {
  sockets.add(socket);
  const stream = new UapiStream(limits);
  let busy = false;
  let ended = false;

  const pump = async (): Promise<void> => {
    busy = true;
    socket.pause();
    try {
      for (let command = stream.next(); command !== undefined; command = stream.next()) {
        if (!(await run(command)) || socket.destroyed) return;
      }
    } finally {
      busy = false;
    }
    // A client that half-closed gets its answers, then the end.
    if (ended) socket.end();
    else socket.resume();
  };
  const start = (): void => {
    if (busy) return; // the running pump reads what just arrived
    pump().catch((err: unknown) => {
      // A bug, not a client's doing: drop this client, keep the daemon.
      socket.destroy();
      log(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    });
  };

  /** Carries out one command; false when the connection is done. */
  const run = async (command: UapiCommand): Promise<boolean> => {
    switch (command.kind) {
      case 'get': {
        let response: string;
        try {
          response = formatGetResponse(device.get());
        } catch (err) {
          log(`get failed: ${messageOf(err)}`);
          response = formatFailure(err);
        }
        await send(socket, response);
        return true;
      }
      case 'stats': {
        let response: string;
        try {
          if (device.stats === undefined) throw new UapiError(constants.errno.EINVAL, 'this device has no stats');
          response = formatStatsResponse(device.stats());
        } catch (err) {
          log(`stats failed: ${messageOf(err)}`);
          response = formatFailure(err);
        }
        await send(socket, response);
        return true;
      }
      case 'set': {
        let response = SUCCESS_RESPONSE;
        try {
          await device.set(command.request);
        } catch (err) {
          log(`set failed: ${messageOf(err)}`);
          response = formatFailure(err);
        }
        await send(socket, response);
        return true;
      }
      case 'error':
        // The stream's messages name keys, never values (protocol.ts).
        log(command.error.message);
        await send(socket, formatFailure(command.error));
        if (!command.close) return true;
        finish(socket);
        return false;
      case 'close':
        log(`${command.reason}; closing the connection`);
        finish(socket);
        return false;
    }
  };

  socket.on('data', (chunk: Buffer) => {
    stream.push(chunk);
    start();
  });
  socket.on('end', () => {
    // A request cut off by the end is dropped unapplied.
    ended = true;
    if (!busy) socket.end();
  });
  socket.on('error', () => {
    // The client went away (ECONNRESET, EPIPE); 'close' follows.
  });
  socket.on('close', () => sockets.delete(socket));
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Flushes what was written, then closes, even if the client never closes its side. */
function finish(socket: Socket): void {
  socket.end(() => socket.destroy());
}

/** Writes and, when the client is slow to read, waits until it catches up. */
function send(socket: Socket, text: string): Promise<void> {
  if (socket.destroyed || !socket.writable) return Promise.resolve();
  if (socket.write(text)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
