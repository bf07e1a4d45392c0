// The cross-platform configuration protocol (wireguard.com/xplatform) as wireguard-go
// speaks it on its Unix socket, and `wg` expects: parsing `set` requests, formatting
// `get` responses, and cutting a byte stream into operations. Pure: no I/O, no clock.
import { clamp, encodeKeyHex, isZeroKey } from '../crypto/keys.js';
import { KEY_SIZE } from '../crypto/sizes.js';
import { constants } from 'node:os';
import { formatAddress, formatPrefix, parseAddress, parsePrefix, type Prefix } from '../routing/prefix.js';
import { errnoOf, UapiError } from '../errors.js';

// Failures carry a Linux errno, which travels negated (`errno=-22`), as wireguard-go
// sends it; `wg` takes any non-zero value as failure.
const { EINVAL, EIO, EPROTO } = constants.errno;
/** What wireguard-go answers for a failure without an errno of its own; node's table lacks it. */
export const ENOANO = 55;

/** An IP literal (IPv6 without brackets or zone) and a UDP port. */
export interface UapiEndpoint {
  address: string;
  port: number;
}

export interface UapiPeerState {
  publicKey: Uint8Array;
  presharedKey: Uint8Array | undefined;
  endpoint: UapiEndpoint | undefined;
  /** Wall-clock time of the last completed handshake in ms since the epoch; 0 = never. */
  lastHandshakeWallMs: number;
  rxBytes: number;
  txBytes: number;
  /** Seconds; 0 = off. */
  persistentKeepalive: number;
  allowedIPs: Prefix[];
}

export interface UapiInterfaceState {
  privateKey: Uint8Array | undefined;
  /** The port actually bound (after `listen_port=0` picked one); 0 = none. */
  listenPort: number;
  fwmark: number;
  peers: UapiPeerState[];
}

export interface AllowedIPChange {
  prefix: Prefix;
  /** `allowed_ip=-prefix`: take the prefix away from this peer. */
  remove: boolean;
}

/**
 * What one `public_key=` section asks. wireguard-go applies lines one at a time;
 * these fields hold the same outcome:
 * - `remove`: the lines after `remove=true` are checked but ignored, so nothing else is set.
 * - `updateOnly`: skip the whole entry when the peer does not exist yet.
 * - `replace_allowed_ips=true` drops the prefixes listed before it in the same
 *   section, so `allowedIPs` holds only what comes after it; apply it in order.
 * - A peer whose key is the interface's own public key is ignored (the device's job:
 *   it knows the key).
 */
export interface PeerChange {
  publicKey: Uint8Array;
  remove: boolean;
  updateOnly: boolean;
  /** All zero clears it. */
  presharedKey?: Uint8Array;
  endpoint?: UapiEndpoint;
  persistentKeepalive?: number;
  replaceAllowedIPs: boolean;
  allowedIPs: AllowedIPChange[];
}

/** A whole `set` operation. Apply the interface fields, then `replacePeers`, then the peers in order. */
export interface SetRequest {
  /** Clamped, as wireguard-go stores it; null = clear (an all-zero key was given). */
  privateKey?: Uint8Array | null;
  /** 0 = pick a free port. */
  listenPort?: number;
  /** 0 = clear. */
  fwmark?: number;
  replacePeers: boolean;
  peers: PeerChange[];
}

export interface UapiDevice {
  get(): UapiInterfaceState;
  /** tundra's own counters (drops, offloads, queues), for `tundra stats`: any JSON value. */
  stats?(): unknown;
  /** Applies a validated request in order; throws UapiError (e.g. EADDRINUSE when the port is taken). */
  set(request: SetRequest): Promise<void>;
}

/** The answer to a request that succeeded. */
export const SUCCESS_RESPONSE = 'errno=0\n\n';

/**
 * The answer to a failed request: its errno, negated (a UapiError's, or a system
 * error's such as a failed bind); ENOANO, as wireguard-go answers, when it carries none.
 */
export function formatFailure(err: unknown): string {
  return `errno=-${errnoOf(err, ENOANO)}\n\n`;
}

// ---------------------------------------------------------------------------------
// get

/** The whole answer to `get=1`: keys in wireguard-go's order, then `errno=0` and a blank line. */
export function formatGetResponse(state: UapiInterfaceState): string {
  // One string built by appending: `wg show` asks for all of it, ~350 bytes a peer.
  let text = '';
  if (state.privateKey !== undefined && !isZeroKey(state.privateKey)) text += `private_key=${encodeKeyHex(state.privateKey)}\n`;
  if (state.listenPort !== 0) text += `listen_port=${decimal(state.listenPort)}\n`;
  if (state.fwmark !== 0) text += `fwmark=${decimal(state.fwmark)}\n`;
  for (const peer of state.peers) {
    // wireguard-go always sends the preshared key, all zero when there is none; `wg` reads zero as none.
    text += `public_key=${encodeKeyHex(peer.publicKey)}\npreshared_key=${peer.presharedKey === undefined ? ZERO_KEY_HEX : encodeKeyHex(peer.presharedKey)}\nprotocol_version=1\n`;
    if (peer.endpoint !== undefined) text += `endpoint=${formatEndpoint(peer.endpoint)}\n`;
    const ms = Math.max(0, peer.lastHandshakeWallMs);
    const seconds = Math.floor(ms / 1000);
    text += `last_handshake_time_sec=${decimal(seconds)}\nlast_handshake_time_nsec=${decimal((ms - seconds * 1000) * 1e6)}\n`
      + `tx_bytes=${decimal(peer.txBytes)}\nrx_bytes=${decimal(peer.rxBytes)}\npersistent_keepalive_interval=${decimal(peer.persistentKeepalive)}\n`;
    for (const prefix of peer.allowedIPs) text += `allowed_ip=${formatPrefix(prefix)}\n`;
  }
  return text + SUCCESS_RESPONSE;
}

const ZERO_KEY_HEX = '0'.repeat(2 * KEY_SIZE);

export function formatEndpoint(endpoint: UapiEndpoint): string {
  return endpoint.address.includes(':') ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`;
}

/** A non-negative integer in plain decimal: `wg` reads digits only, never `1e+21`. */
function decimal(n: number): string {
  if (!(n > 0) || !Number.isFinite(n)) return '0';
  const whole = Math.floor(n);
  // Below 2^53 String() is exact and plain digits; BigInt is for the rare huge one (String gives 1e+21).
  return whole <= Number.MAX_SAFE_INTEGER ? String(whole) : BigInt(whole).toString();
}

// ---------------------------------------------------------------------------------
// set

/**
 * Parses the lines of a `set` operation (after `set=1`, without the blank line that
 * ends it). Throws a UapiError for the first bad line, as wireguard-go would answer.
 */
export function parseSetRequest(lines: Iterable<string>): SetRequest {
  const parser = new SetRequestParser();
  for (const line of lines) parser.line(line);
  return parser.finish();
}

/**
 * Collects a `set` operation line by line. Unlike wireguard-go, which applies each
 * line as it reads it and so leaves a half-applied configuration behind a bad line,
 * nothing reaches the device until the whole request has parsed: a malformed request
 * changes nothing.
 */
class SetRequestParser {
  private readonly request: SetRequest = { replacePeers: false, peers: [] };
  private peer: PeerChange | undefined;
  private error: UapiError | undefined;

  line(line: string): void {
    if (this.error !== undefined) return; // the first error is the answer; the rest is only read
    try {
      this.apply(line);
    } catch (err) {
      // Not an unexpected error's own message: it may quote the line.
      const name = err instanceof Error ? err.name : 'error';
      this.error = err instanceof UapiError ? err : new UapiError(EINVAL, `a line with key ${describeKey(line.slice(0, Math.max(0, line.indexOf('='))))} cannot be read (${name})`);
    }
  }

  finish(): SetRequest {
    if (this.error !== undefined) throw this.error;
    return this.request;
  }

  private apply(line: string): void {
    const eq = line.indexOf('=');
    if (eq < 0) throw new UapiError(EPROTO, 'a line without "=" (not shown)');
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'public_key') {
      this.peer = { publicKey: parseKey(key, value), remove: false, updateOnly: false, replaceAllowedIPs: false, allowedIPs: [] };
      this.request.peers.push(this.peer);
    } else if (this.peer === undefined) {
      this.interfaceLine(key, value);
    } else {
      // After remove=true wireguard-go still checks the peer's lines but ignores them.
      const target = this.peer.remove ? { ...this.peer, allowedIPs: [] } : this.peer;
      peerLine(target, key, value);
    }
  }

  private interfaceLine(key: string, value: string): void {
    switch (key) {
      case 'private_key': {
        const privateKey = parseKey(key, value);
        this.request.privateKey = isZeroKey(privateKey) ? null : clamp(privateKey);
        privateKey.fill(0); // clamp() made the copy that is kept
        return;
      }
      case 'listen_port':
        this.request.listenPort = parseUint(key, value, 0xffff);
        return;
      case 'fwmark':
        this.request.fwmark = parseUint(key, value, 0xffffffff);
        return;
      case 'replace_peers':
        parseTrue(key, value);
        this.request.replacePeers = true;
        return;
      default:
        throw new UapiError(EINVAL, `invalid interface key ${describeKey(key)} (the value is not shown)`);
    }
  }
}

function peerLine(peer: PeerChange, key: string, value: string): void {
  switch (key) {
    case 'update_only':
      parseTrue(key, value);
      peer.updateOnly = true;
      return;
    case 'remove':
      parseTrue(key, value);
      peer.remove = true;
      delete peer.presharedKey;
      delete peer.endpoint;
      delete peer.persistentKeepalive;
      peer.replaceAllowedIPs = false;
      peer.allowedIPs = [];
      return;
    case 'preshared_key':
      peer.presharedKey = parseKey(key, value);
      return;
    case 'endpoint':
      peer.endpoint = parseEndpoint(key, value);
      return;
    case 'persistent_keepalive_interval':
      peer.persistentKeepalive = parseUint(key, value, 0xffff);
      return;
    case 'replace_allowed_ips':
      parseTrue(key, value);
      peer.replaceAllowedIPs = true;
      peer.allowedIPs = [];
      return;
    case 'allowed_ip': {
      // Newer wireguard-go and wireguard-tools remove a prefix written with a leading "-".
      const remove = value.startsWith('-');
      peer.allowedIPs.push({ prefix: parseAllowedIP(key, remove ? value.slice(1) : value), remove });
      return;
    }
    case 'protocol_version':
      if (value !== '1') throw new UapiError(EINVAL, `${key}: only 1 is supported`);
      return;
    default:
      throw new UapiError(EINVAL, `invalid peer key ${describeKey(key)} (the value is not shown)`);
  }
}

/** 64 hex digits; like Go's hex decoder, either case. */
function parseKey(key: string, value: string): Uint8Array {
  // Buffer's hex decoder stops at the first pair that is not two hex digits, so 32
  // bytes out of 64 characters means all of them were.
  const bytes = value.length === 2 * KEY_SIZE ? Buffer.from(value, 'hex') : undefined;
  if (bytes === undefined || bytes.length !== KEY_SIZE) {
    // The daemon logs this: a mistyped private or preshared key is nearly the secret itself.
    bytes?.fill(0);
    throw new UapiError(EINVAL, `${key}: must be 64 hex digits (the value has ${value.length} characters; not shown)`);
  }
  const out = new Uint8Array(bytes);
  bytes.fill(0); // Buffer.from() may have put it in the shared pool: leave no copy there
  return out;
}

/** Decimal digits (leading zeros allowed, as Go's ParseUint) up to `max`. */
function parseUint(key: string, value: string, max: number): number {
  const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!(n <= max)) throw new UapiError(EINVAL, `${key}: must be an integer from 0 to ${max}`);
  return n;
}

function parseTrue(key: string, value: string): void {
  if (value !== 'true') throw new UapiError(EINVAL, `${key}: takes only "true"`);
}

/** `a.b.c.d:port` or `[v6]:port`, as Go's netip.ParseAddrPort (but without zones). */
function parseEndpoint(key: string, value: string): UapiEndpoint {
  const bracketed = value.startsWith('[');
  const hostEnd = bracketed ? value.indexOf(']') : value.lastIndexOf(':');
  const colon = bracketed ? hostEnd + 1 : hostEnd;
  if (hostEnd < 0 || value[colon] !== ':') throw new UapiError(EINVAL, `${key}: not address:port`);
  const host = value.slice(bracketed ? 1 : 0, hostEnd);
  let parsed: ReturnType<typeof parseAddress>;
  try {
    parsed = parseAddress(host);
  } catch {
    // Not the parser's message: it quotes the text.
    throw new UapiError(EINVAL, `${key}: the address is not an IPv4 or IPv6 address (no host names, no zones)`);
  }
  if ((parsed.family === 6) !== bracketed) {
    throw new UapiError(EINVAL, `${key}: IPv6 addresses, and only they, go in square brackets`);
  }
  return { address: formatAddress(parsed.family, parsed.address), port: parseUint(`${key} port`, value.slice(colon + 1), 0xffff) };
}

/** `address/bits` (the length is required, as in Go's netip.ParsePrefix); host bits are cleared. */
function parseAllowedIP(key: string, value: string): Prefix {
  if (!value.includes('/')) throw new UapiError(EINVAL, `${key}: no prefix length (address/bits)`);
  try {
    return parsePrefix(value);
  } catch {
    throw new UapiError(EINVAL, `${key}: not an IP prefix (address/bits, bits at most 32 or 128)`);
  }
}

/** What a key name looks like; hex and base64 keys are longer, and their pieces all but never lack digits or capitals. */
const KEY_NAME = /^[a-z_-]{1,32}$/;

/**
 * A request's key for a message, quoted when it looks like a key name. No message
 * quotes a value, nor a key that might be one: a key pasted in the wrong place, or
 * sent without `set=1`, would otherwise land in the daemon's log.
 */
function describeKey(key: string): string {
  return KEY_NAME.test(key) ? JSON.stringify(key) : '(not shown: not a key name)';
}

/** Zeroes a request's private and preshared keys, for its maker once the device has copied what it keeps. */
export function wipeSetRequest(request: SetRequest): void {
  request.privateKey?.fill(0);
  for (const peer of request.peers) peer.presharedKey?.fill(0);
}

/** The request text for `request`: what `wg` would send (useful to clients and tests). */
export function formatSetRequest(request: SetRequest): string {
  const lines = ['set=1'];
  if (request.privateKey !== undefined) lines.push(`private_key=${encodeKeyHex(request.privateKey ?? new Uint8Array(KEY_SIZE))}`);
  if (request.listenPort !== undefined) lines.push(`listen_port=${request.listenPort}`);
  if (request.fwmark !== undefined) lines.push(`fwmark=${request.fwmark}`);
  if (request.replacePeers) lines.push('replace_peers=true');
  for (const peer of request.peers) {
    lines.push(`public_key=${encodeKeyHex(peer.publicKey)}`);
    // update_only first: after remove=true the parser ignores the peer's lines.
    if (peer.updateOnly) lines.push('update_only=true');
    if (peer.remove) lines.push('remove=true');
    if (peer.presharedKey !== undefined) lines.push(`preshared_key=${encodeKeyHex(peer.presharedKey)}`);
    if (peer.endpoint !== undefined) lines.push(`endpoint=${formatEndpoint(peer.endpoint)}`);
    if (peer.persistentKeepalive !== undefined) lines.push(`persistent_keepalive_interval=${peer.persistentKeepalive}`);
    if (peer.replaceAllowedIPs) lines.push('replace_allowed_ips=true');
    for (const change of peer.allowedIPs) lines.push(`allowed_ip=${change.remove ? '-' : ''}${formatPrefix(change.prefix)}`);
  }
  lines.push('', '');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------
// framing

/** One thing for the server to do, in the order the client asked. */
/** tundra's own UAPI operation (wireguard-go closes the connection on it: not a tundra interface). */
export const STATS_OPERATION = 'tundra-stats';

/** The answer to `tundra-stats=1`. */
export function formatStatsResponse(stats: unknown): string {
  return `stats=${JSON.stringify(stats)}\n${SUCCESS_RESPONSE}`;
}

export type UapiCommand =
  | { kind: 'get' }
  /** tundra's extension, `tundra-stats=1` + blank line: answered `stats=<one JSON line>`, then `errno=0`. */
  | { kind: 'stats' }
  | { kind: 'set'; request: SetRequest }
  /** Answer `errno=-error.errno`; then close when `close` (the stream cannot be followed any more). */
  | { kind: 'error'; error: UapiError; close: boolean }
  /** Close without an answer: not an operation at all (wireguard-go does the same). */
  | { kind: 'close'; reason: string };

export interface UapiLimits {
  /** Longest line; wireguard-go's line scanner stops at 64 KiB too. */
  maxLineBytes?: number;
  /** Largest `set` operation (~250 bytes a peer: 16 MiB is ~65,000 peers). */
  maxRequestBytes?: number;
}

const TOO_LONG = Symbol('line too long');

/** What the log says of a line that is no operation: its key at most, never its value. */
function invalidOperation(line: string): string {
  const eq = line.indexOf('=');
  if (eq < 0) return line === '' ? 'invalid operation: an empty line' : 'invalid operation: a line without "=" (not shown)';
  const key = line.slice(0, eq);
  return KEY_NAME.test(key) ? `invalid operation ${JSON.stringify(key)} (the value is not shown)` : 'invalid operation: a line whose key is not a key name (not shown)';
}

/**
 * Cuts a client's byte stream into commands. push() whatever arrives, in any pieces;
 * next() returns the next complete command, or undefined until more bytes come. Bad
 * input becomes an `error` or `close` command; nothing here throws on client bytes.
 */
export class UapiStream {
  private readonly maxLineBytes: number;
  private readonly maxRequestBytes: number;
  /** Bytes received and not yet read. */
  private head: Buffer = Buffer.alloc(0);
  private offset = 0;
  /** Pieces of a line whose end has not arrived; kept apart so slow senders cost no copying. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private state: 'operation' | 'get' | 'stats' | 'set' | 'closed' = 'operation';
  private set = new SetRequestParser();
  private setBytes = 0;

  constructor(limits: UapiLimits = {}) {
    this.maxLineBytes = limits.maxLineBytes ?? 64 * 1024;
    this.maxRequestBytes = limits.maxRequestBytes ?? 16 * 1024 * 1024;
  }

  push(chunk: Uint8Array): void {
    if (this.state === 'closed' || chunk.length === 0) return;
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.head = this.offset < this.head.length ? Buffer.concat([this.head.subarray(this.offset), bytes]) : bytes;
    this.offset = 0;
  }

  next(): UapiCommand | undefined {
    for (;;) {
      switch (this.state) {
        case 'closed':
          return undefined;
        case 'operation': {
          const line = this.readLine();
          if (line === undefined) return undefined;
          if (line === 'get=1' || line === `${STATS_OPERATION}=1`) {
            this.state = line === 'get=1' ? 'get' : 'stats';
          } else if (line === 'set=1') {
            this.state = 'set';
            this.set = new SetRequestParser();
            this.setBytes = 0;
          } else {
            this.state = 'closed';
            return { kind: 'close', reason: line === TOO_LONG ? 'operation line too long' : invalidOperation(line) };
          }
          break;
        }
        case 'get':
        case 'stats': {
          // `get=1` ends with a blank line; wireguard-go reads exactly one more byte.
          if (this.offset >= this.head.length) return undefined;
          const byte = this.head[this.offset++];
          const kind = this.state;
          this.state = 'operation';
          if (byte === 0x0a) return { kind };
          return { kind: 'error', error: new UapiError(EINVAL, `trailing character after ${kind === 'get' ? 'get' : STATS_OPERATION}=1`), close: false };
        }
        case 'set': {
          const line = this.readLine();
          if (line === undefined) return undefined;
          if (line === TOO_LONG) return this.fail(`a line is longer than ${this.maxLineBytes} bytes`);
          this.setBytes += line.length + 1;
          if (this.setBytes > this.maxRequestBytes) return this.fail(`set request larger than ${this.maxRequestBytes} bytes`);
          // Go's line scanner drops a carriage return before the newline.
          const text = line.endsWith('\r') ? line.slice(0, -1) : line;
          if (text !== '') {
            this.set.line(text);
            break;
          }
          this.state = 'operation';
          try {
            return { kind: 'set', request: this.set.finish() };
          } catch (err) {
            return { kind: 'error', error: err as UapiError, close: false };
          }
        }
      }
    }
  }

  private fail(message: string): UapiCommand {
    this.state = 'closed';
    this.head = Buffer.alloc(0);
    this.partial = [];
    return { kind: 'error', error: new UapiError(EIO, message), close: true };
  }

  /** The next line without its newline, in latin1 (one char a byte), or TOO_LONG. */
  private readLine(): string | typeof TOO_LONG | undefined {
    const newline = this.head.indexOf(0x0a, this.offset);
    if (newline < 0) {
      if (this.offset < this.head.length) {
        this.partial.push(this.head.subarray(this.offset));
        this.partialBytes += this.head.length - this.offset;
      }
      this.head = Buffer.alloc(0);
      this.offset = 0;
      return this.partialBytes > this.maxLineBytes ? TOO_LONG : undefined;
    }
    const tail = this.head.subarray(this.offset, newline);
    const line = this.partial.length === 0 ? tail : Buffer.concat([...this.partial, tail]);
    this.partial = [];
    this.partialBytes = 0;
    this.offset = newline + 1;
    return line.length > this.maxLineBytes ? TOO_LONG : line.toString('latin1');
  }
}
