// The INI configuration format of `wg setconf` (mode 'wg') and `wg-quick` (mode 'wg-quick').
//
// Rules follow wireguard-tools: section names and keys are case-insensitive, `#` starts a
// comment anywhere, and the values of `wg`'s own keys have all whitespace removed (as `wg`
// does). wg-quick's lists split on commas and whitespace; its hook commands are kept verbatim.
// Where the tools are loose, this parser is stricter, so that typos surface here:
//  - a single-valued key given twice in one section is an error (wg keeps the last);
//  - a key with an empty value is an error (as in `wg`);
//  - ListenPort and Endpoint ports are numbers (no service names); an Endpoint port is 1..65535;
//  - an IPv6 Endpoint needs brackets, and brackets hold only IPv6 (a zone, `%eth0`, is allowed);
//  - MTU is 576..65535 (576: the smallest datagram every IPv4 host must accept; IPv6 needs
//    1280, but the parser does not know which families will be carried);
//  - [Interface] may appear once, a peer must have a PublicKey, and no two peers may share one.
// Nothing here resolves names or runs hooks: the result is data.

import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { decodeKey, encodeKey } from '../crypto/keys.js';
import { ConfigError, KeyFormatError, PrefixError } from '../errors.js';
import {
  type InterfaceAddress,
  type Prefix,
  formatAddress,
  formatPrefix,
  parseAddress,
  parseInterfaceAddress,
  parsePrefix,
} from '../routing/prefix.js';

export type ConfigMode = 'wg' | 'wg-quick';

/** Where to send a peer's packets. `host` is an IPv4 or IPv6 literal (no brackets) or a host name. */
export interface ConfigEndpoint {
  host: string;
  port: number;
}

export interface InterfaceConfig {
  privateKey?: Uint8Array;
  listenPort?: number;
  /** 0 means off. */
  fwMark?: number;
  /** wg-quick: addresses with their prefix length as written, host bits kept. */
  addresses: InterfaceAddress[];
  /** wg-quick: DNS servers (canonical address text) and search domains, in order. */
  dns: string[];
  mtu?: number;
  /** wg-quick: 'off', 'auto', a table number or a table name. */
  table?: string;
  preUp: string[];
  postUp: string[];
  preDown: string[];
  postDown: string[];
  saveConfig: boolean;
}

export interface PeerConfig {
  publicKey: Uint8Array;
  presharedKey?: Uint8Array;
  allowedIPs: Prefix[];
  endpoint?: ConfigEndpoint;
  /** Seconds; 0 means off. */
  persistentKeepalive?: number;
}

export interface WireGuardConfig {
  interface: InterfaceConfig;
  peers: PeerConfig[];
}

interface PeerDraft {
  line: number;
  publicKey?: Uint8Array;
  presharedKey?: Uint8Array;
  allowedIPs: Prefix[];
  endpoint?: ConfigEndpoint;
  persistentKeepalive?: number;
}

interface KeySpec<Target> {
  name: string;
  /** Accumulates over repeated lines instead of being an error when repeated. */
  repeatable?: boolean;
  /** Only wg-quick knows it; `wg setconf` rejects it. */
  wgQuickOnly?: boolean;
  /** Takes the trimmed text after `=`. */
  apply(value: string, target: Target): void;
}

const MTU_MIN = 576;
const UINT32_MAX = 0xffff_ffff;

const INTERFACE_KEYS: KeySpec<InterfaceConfig>[] = [
  { name: 'PrivateKey', apply: (v, c) => (c.privateKey = parseKey(stripSpaces(v), true)) },
  { name: 'ListenPort', apply: (v, c) => (c.listenPort = parseInteger(stripSpaces(v), 0, 0xffff, 'a port')) },
  { name: 'FwMark', apply: (v, c) => (c.fwMark = parseFwMark(stripSpaces(v))) },
  {
    name: 'Address',
    repeatable: true,
    wgQuickOnly: true,
    apply: (v, c) => c.addresses.push(...splitWords(v).map((item) => parseAddressItem(item, parseInterfaceAddress, 'address'))),
  },
  { name: 'DNS', repeatable: true, wgQuickOnly: true, apply: (v, c) => c.dns.push(...splitWords(v).map(parseDnsEntry)) },
  { name: 'MTU', wgQuickOnly: true, apply: (v, c) => (c.mtu = parseInteger(v, MTU_MIN, 0xffff, 'an MTU')) },
  { name: 'Table', wgQuickOnly: true, apply: (v, c) => (c.table = parseTable(v)) },
  { name: 'PreUp', repeatable: true, wgQuickOnly: true, apply: (v, c) => c.preUp.push(v) },
  { name: 'PostUp', repeatable: true, wgQuickOnly: true, apply: (v, c) => c.postUp.push(v) },
  { name: 'PreDown', repeatable: true, wgQuickOnly: true, apply: (v, c) => c.preDown.push(v) },
  { name: 'PostDown', repeatable: true, wgQuickOnly: true, apply: (v, c) => c.postDown.push(v) },
  { name: 'SaveConfig', wgQuickOnly: true, apply: (v, c) => (c.saveConfig = parseBoolean(v)) },
];

const PEER_KEYS: KeySpec<PeerDraft>[] = [
  { name: 'PublicKey', apply: (v, p) => (p.publicKey = parseKey(stripSpaces(v), false)) },
  { name: 'PresharedKey', apply: (v, p) => (p.presharedKey = parseKey(stripSpaces(v), true)) },
  {
    name: 'AllowedIPs',
    repeatable: true,
    apply: (v, p) => p.allowedIPs.push(...splitCommas(stripSpaces(v)).map((item) => parseAddressItem(item, parsePrefix, 'prefix'))),
  },
  { name: 'Endpoint', apply: (v, p) => (p.endpoint = parseEndpoint(stripSpaces(v))) },
  { name: 'PersistentKeepalive', apply: (v, p) => (p.persistentKeepalive = parseKeepalive(stripSpaces(v))) },
];

const byLowerName = <T>(specs: KeySpec<T>[]) => new Map(specs.map((spec) => [spec.name.toLowerCase(), spec]));
const INTERFACE_KEY_MAP = byLowerName(INTERFACE_KEYS);
const PEER_KEY_MAP = byLowerName(PEER_KEYS);

export function parseConfig(text: string, options: { file: string; mode: ConfigMode }): WireGuardConfig {
  const { file, mode } = options;
  const iface = emptyInterface();
  const peers: PeerConfig[] = [];
  const peerKeyLines = new Map<string, number>();
  let section: { kind: 'interface' } | { kind: 'peer'; draft: PeerDraft } | undefined;
  let interfaceLine: number | undefined;
  // Line of each single-valued key already given in the current section.
  let seen = new Map<string, number>();

  const finishPeer = () => {
    if (section?.kind !== 'peer') return;
    const { draft } = section;
    if (draft.publicKey === undefined) throw new ConfigError('this [Peer] section has no PublicKey', file, draft.line, 'PublicKey');
    const peer: PeerConfig = { publicKey: draft.publicKey, allowedIPs: draft.allowedIPs };
    if (draft.presharedKey !== undefined) peer.presharedKey = draft.presharedKey;
    if (draft.endpoint !== undefined) peer.endpoint = draft.endpoint;
    if (draft.persistentKeepalive !== undefined) peer.persistentKeepalive = draft.persistentKeepalive;
    peers.push(peer);
  };

  const lines = text.replace(/^\uFEFF/, '').split('\n');
  let lineNumber = 0;
  let key: string | undefined;
  try {
    for (const rawLine of lines) {
      lineNumber++;
      key = undefined;
      const hash = rawLine.indexOf('#');
      const line = (hash < 0 ? rawLine : rawLine.slice(0, hash)).trim();
      if (line === '') continue;

      if (line.startsWith('[')) {
        const header = stripSpaces(line);
        const name = header.toLowerCase();
        if (name === '[interface]') {
          if (interfaceLine !== undefined) throw new ConfigError(`[Interface] appears twice (first on line ${interfaceLine})`);
          finishPeer();
          interfaceLine = lineNumber;
          section = { kind: 'interface' };
        } else if (name === '[peer]') {
          finishPeer();
          section = { kind: 'peer', draft: { line: lineNumber, allowedIPs: [] } };
        } else {
          const what = shown(header) === undefined ? 'an unknown section' : `unknown section ${quote(header)}`;
          throw new ConfigError(`${what} (expected [Interface] or [Peer])`);
        }
        seen = new Map();
        continue;
      }

      const equals = line.indexOf('=');
      // The line is not echoed: a secret key written without "=" would land in logs.
      if (equals < 0) throw new ConfigError('expected "Key = Value" or a section header, found a line without "="');
      const writtenKey = stripSpaces(line.slice(0, equals));
      if (writtenKey === '') throw new ConfigError('a line starts with "=" and has no key');
      const value = line.slice(equals + 1).trim();
      if (section === undefined) {
        key = shown(writtenKey);
        throw new ConfigError('a key appears before any [Interface] or [Peer] section');
      }

      const lower = writtenKey.toLowerCase();
      const spec = section.kind === 'interface' ? INTERFACE_KEY_MAP.get(lower) : PEER_KEY_MAP.get(lower);
      if (spec === undefined) {
        const other = section.kind === 'interface' ? PEER_KEY_MAP.get(lower) : INTERFACE_KEY_MAP.get(lower);
        const here = section.kind === 'interface' ? '[Interface]' : '[Peer]';
        if (other === undefined) {
          key = shown(writtenKey);
          throw new ConfigError(key === undefined ? `unknown key in ${here} (too long to show)` : `unknown key in ${here}`);
        }
        key = other.name;
        throw new ConfigError(`belongs in ${section.kind === 'interface' ? '[Peer]' : '[Interface]'}, not ${here}`);
      }
      key = spec.name;
      if (spec.wgQuickOnly && mode === 'wg') throw new ConfigError('only wg-quick knows this key; `wg setconf` rejects it');
      if (value === '') throw new ConfigError('has no value');
      if (!spec.repeatable) {
        const first = seen.get(spec.name);
        if (first !== undefined) throw new ConfigError(`given twice in one section (first on line ${first})`);
        seen.set(spec.name, lineNumber);
      }

      if (section.kind === 'interface') {
        (spec as KeySpec<InterfaceConfig>).apply(value, iface);
      } else {
        const { draft } = section;
        (spec as KeySpec<PeerDraft>).apply(value, draft);
        if (spec.name === 'PublicKey' && draft.publicKey !== undefined) {
          const encoded = encodeKey(draft.publicKey);
          const other = peerKeyLines.get(encoded);
          if (other !== undefined) throw new ConfigError(`the peer on line ${other} has the same public key`);
          peerKeyLines.set(encoded, draft.line);
        }
      }
    }
    key = undefined;
    finishPeer();
  } catch (error) {
    if (error instanceof ConfigError && error.file !== undefined) throw error;
    // A bad value gets its place here; whatever else went wrong, callers get a ConfigError pointing at the line too.
    throw new ConfigError(error instanceof ConfigError ? error.detail : `internal error: ${String(error)}`, file, lineNumber, key);
  }
  return { interface: iface, peers };
}

/** Reads a configuration file (UTF-8) and parses it; every failure is a ConfigError naming the file. */
/**
 * The warning wg-quick prints for a file that holds keys and that others can reach, by
 * its rule: `(file mode & its directory's mode & 0007) != 0` after resolving links. So
 * 0644 in a 0755 directory (/etc/wireguard's default) warns, and 0600 anywhere or 0644
 * in a 0700 directory does not (the bits are ANDed one by one, so neither does 0644 in
 * 0711). Undefined when there is nothing to say or the file cannot be examined (reading
 * it reports that).
 */
export async function worldAccessibleWarning(path: string): Promise<string | undefined> {
  let mode: number;
  let real: string;
  try {
    real = await realpath(path);
    mode = (await stat(real)).mode & (await stat(dirname(real))).mode;
  } catch {
    return undefined;
  }
  if ((mode & 0o007) === 0) return undefined;
  return `Warning: \`${real}' is world accessible: other users may read its keys; run chmod 600 ${shellQuote(real)}`;
}

function shellQuote(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

export async function readConfigFile(path: string, mode: ConfigMode): Promise<WireGuardConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`, path);
  }
  return parseConfig(text, { file: path, mode });
}

/**
 * Writes a configuration in canonical form: canonical keys, base64 keys, canonical prefixes,
 * FwMark in hex, 0 written as `off`. Mode 'wg' leaves out wg-quick's keys (as `wg-quick strip`).
 * Throws a RangeError for a text value that the format cannot carry (a `#` or a line break).
 */
export function formatConfig(cfg: WireGuardConfig, mode: ConfigMode): string {
  const out: string[] = ['[Interface]'];
  const put = (key: string, value: string | number) => out.push(`${key} = ${value}`);
  const i = cfg.interface;
  if (i.privateKey !== undefined) put('PrivateKey', formatKey(i.privateKey));
  if (i.listenPort !== undefined) put('ListenPort', i.listenPort);
  if (i.fwMark !== undefined) put('FwMark', i.fwMark === 0 ? 'off' : `0x${i.fwMark.toString(16)}`);
  if (mode === 'wg-quick') {
    if (i.addresses.length > 0) put('Address', i.addresses.map(formatPrefix).join(', '));
    if (i.dns.length > 0) put('DNS', i.dns.map((entry) => writableText('DNS', entry, true)).join(', '));
    if (i.mtu !== undefined) put('MTU', i.mtu);
    if (i.table !== undefined) put('Table', writableText('Table', i.table, true));
    for (const [key, commands] of [
      ['PreUp', i.preUp],
      ['PostUp', i.postUp],
      ['PreDown', i.preDown],
      ['PostDown', i.postDown],
    ] as const) {
      for (const command of commands) put(key, writableText(key, command, false));
    }
    if (i.saveConfig) put('SaveConfig', 'true');
  }
  for (const peer of cfg.peers) {
    out.push('', '[Peer]');
    put('PublicKey', formatKey(peer.publicKey));
    if (peer.presharedKey !== undefined) put('PresharedKey', formatKey(peer.presharedKey));
    if (peer.allowedIPs.length > 0) put('AllowedIPs', peer.allowedIPs.map(formatPrefix).join(', '));
    if (peer.endpoint !== undefined) put('Endpoint', formatEndpoint(peer.endpoint));
    if (peer.persistentKeepalive !== undefined) put('PersistentKeepalive', peer.persistentKeepalive === 0 ? 'off' : peer.persistentKeepalive);
  }
  return `${out.join('\n')}\n`;
}

export function formatEndpoint(endpoint: ConfigEndpoint): string {
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

function emptyInterface(): InterfaceConfig {
  return { addresses: [], dns: [], preUp: [], postUp: [], preDown: [], postDown: [], saveConfig: false };
}

/**
 * Unknown text is echoed only when short: a secret key that lost its line break or
 * its "=" would otherwise end up in an error message and in logs.
 */
function shown(text: string): string | undefined {
  return text.length <= 32 ? text : undefined;
}

/** Text for a message, cut short so that a long line cannot flood a log. */
function shorten(text: string): string {
  return text.length > 64 ? `${text.slice(0, 60)}...` : text;
}

function quote(text: string): string {
  return JSON.stringify(shorten(text));
}

function stripSpaces(text: string): string {
  return text.replace(/\s+/g, '');
}

/** wg's lists: comma-separated, every entry non-empty. */
function splitCommas(value: string): string[] {
  const items = value.split(',');
  if (items.some((item) => item === '')) throw new ConfigError(`${quote(value)} has an empty entry`);
  return items;
}

/** wg-quick's lists: words separated by commas and whitespace. */
function splitWords(value: string): string[] {
  return value.split(/[\s,]+/).filter((item) => item !== '');
}

function parseAddressItem<T>(item: string, parse: (text: string) => T, what: string): T {
  try {
    return parse(item);
  } catch (error) {
    if (error instanceof PrefixError) throw new ConfigError(`${quote(item)} is not a valid ${what}: ${error.reason}`);
    throw error;
  }
}

/** A 32-byte key in canonical base64; secret keys are never echoed into the message. */
function parseKey(value: string, secret: boolean): Uint8Array {
  try {
    return decodeKey(value);
  } catch (error) {
    if (!(error instanceof KeyFormatError)) throw error;
    throw new ConfigError(`${secret ? 'the value' : quote(value)} is not a key (base64 of 32 bytes, 44 characters ending in "=")`);
  }
}

function formatKey(key: Uint8Array): string {
  if (key.length !== 32) throw new RangeError(`a key has 32 bytes, not ${key.length}`);
  return encodeKey(key);
}

function parseInteger(value: string, min: number, max: number, what: string): number {
  if (!/^[0-9]+$/.test(value)) throw new ConfigError(`${quote(value)} is not ${what} (a decimal number)`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(`${shorten(value)} is out of range ${min}..${max}`);
  return n;
}

function parseFwMark(value: string): number {
  if (value.toLowerCase() === 'off') return 0;
  const n = /^(?:[0-9]+|0x[0-9a-fA-F]+)$/.test(value) ? Number(value) : NaN;
  if (!(n <= UINT32_MAX)) throw new ConfigError(`${quote(value)} is neither off nor a number 0..0xffffffff`);
  return n;
}

function parseKeepalive(value: string): number {
  if (value.toLowerCase() === 'off') return 0;
  if (!/^[0-9]+$/.test(value) || Number(value) > 0xffff) {
    throw new ConfigError(`${quote(value)} is neither off nor a number of seconds 0..65535`);
  }
  return Number(value);
}

function parseBoolean(value: string): boolean {
  const lower = value.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw new ConfigError(`${quote(value)} is neither true nor false`);
}

function parseTable(value: string): string {
  const lower = value.toLowerCase();
  if (lower === 'off' || lower === 'auto') return lower;
  if (/^[0-9]+$/.test(value)) {
    if (Number(value) > UINT32_MAX) throw new ConfigError(`table ${shorten(value)} is out of range 0..4294967295`);
    return value;
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(value)) throw new ConfigError(`${quote(value)} is not off, auto, a table number or a table name`);
  return value;
}

/** wg-quick's rule: digits and dots or anything with a colon is a server, the rest a search domain. */
function parseDnsEntry(entry: string): string {
  if (/^[0-9.]+$/.test(entry) || entry.includes(':')) {
    const { family, address } = parseAddressItem(entry, parseAddress, 'DNS server address');
    return formatAddress(family, address);
  }
  if (!isHostName(entry)) throw new ConfigError(`${quote(entry)} is neither an address nor a search domain`);
  return entry;
}

function isHostName(text: string): boolean {
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => /^[A-Za-z0-9_-]{1,63}$/.test(label));
}

/** `host:port`, `[ipv6]:port` or `[ipv6%zone]:port`; names stay unresolved. */
function parseEndpoint(value: string): ConfigEndpoint {
  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) throw new ConfigError(`${quote(value)} has "[" without "]"`);
    if (value[close + 1] !== ':') throw new ConfigError(`${quote(value)} needs ":port" after "]"`);
    const [address = '', zone, ...rest] = value.slice(1, close).split('%');
    const parsed = parseAddressItem(address, parseAddress, 'IPv6 address');
    if (parsed.family !== 6) throw new ConfigError(`${quote(value)}: brackets are for IPv6 addresses only`);
    if (rest.length > 0 || (zone !== undefined && !/^[A-Za-z0-9_.-]+$/.test(zone))) {
      throw new ConfigError(`${quote(value)} has a malformed zone`);
    }
    host = formatAddress(6, parsed.address) + (zone === undefined ? '' : `%${zone}`);
    portText = value.slice(close + 2);
  } else {
    const colon = value.lastIndexOf(':');
    if (colon < 0) throw new ConfigError(`${quote(value)} has no port (host:port)`);
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (host.includes(':')) throw new ConfigError(`${quote(value)}: an IPv6 address needs brackets, [address]:port`);
    if (/^[0-9.]+$/.test(host)) {
      host = formatAddress(4, parseAddressItem(host, parseAddress, 'IPv4 address').address);
    } else if (!isHostName(host)) {
      throw new ConfigError(`${quote(host)} is neither an address nor a host name`);
    }
  }
  if (!/^[0-9]+$/.test(portText) || Number(portText) < 1 || Number(portText) > 0xffff) {
    throw new ConfigError(`${quote(value)}: port ${quote(portText)} is not a number 1..65535`);
  }
  return { host, port: Number(portText) };
}

/** A text value must survive a write and re-read unchanged. */
function writableText(key: string, value: string, listEntry: boolean): string {
  const forbidden = listEntry ? /[#\n,\s]/ : /[#\n]/;
  if (value === '' || value !== value.trim() || forbidden.test(value)) {
    throw new RangeError(`${key} value ${quote(value)} cannot be written to a configuration file`);
  }
  return value;
}
