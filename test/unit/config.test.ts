import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import {
  type ConfigMode,
  type WireGuardConfig,
  formatConfig,
  parseConfig,
  readConfigFile,
  worldAccessibleWarning,
} from '../../src/config/wg-config.js';
import { formatPrefix } from '../../src/routing/prefix.js';
import { pick as pickWith } from '../helpers/offload-packets.js';

const key = (fill: number) => Buffer.alloc(32, fill).toString('base64');
const PRIVATE = key(1);
const PEER_A = key(2);
const PEER_B = key(3);
const PSK = key(4);

const parse = (text: string, mode: ConfigMode = 'wg-quick') => parseConfig(text, { file: 'wg0.conf', mode });

const FULL = `# tundra test interface
[Interface]
PrivateKey = ${PRIVATE}
ListenPort = 51820
FwMark = 0x1234
Address = 100.96.0.1/16, fd7a:7d0::1/48
Address = 100.97.0.1
DNS = 100.96.0.53, FD7A:7D0::53, corp.example
MTU = 1420
Table = 1234
PreUp = echo pre-up %i
PostUp = iptables -A FORWARD -i %i -j ACCEPT; sysctl -w net.ipv4.ip_forward=1
PostUp = echo second
PreDown = echo pre-down
PostDown = iptables -D FORWARD -i %i -j ACCEPT
SaveConfig = true

[Peer]
PublicKey = ${PEER_A}
PresharedKey = ${PSK}
AllowedIPs = 100.96.1.0/24, fd7a:7d0:1::/64
AllowedIPs = 10.1.2.3/8
Endpoint = [fd7a:7d0::2]:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ${PEER_B}
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = vpn.example.com:443
PersistentKeepalive = off
`;

test('config: a full wg-quick file parses and round-trips through formatConfig', () => {
  const cfg = parse(FULL);
  const i = cfg.interface;
  assert.deepEqual(i.privateKey, new Uint8Array(32).fill(1));
  assert.equal(i.listenPort, 51820);
  assert.equal(i.fwMark, 0x1234);
  assert.deepEqual(i.addresses.map(formatPrefix), ['100.96.0.1/16', 'fd7a:7d0::1/48', '100.97.0.1/32']);
  assert.deepEqual(i.dns, ['100.96.0.53', 'fd7a:7d0::53', 'corp.example']);
  assert.equal(i.mtu, 1420);
  assert.equal(i.table, '1234');
  assert.deepEqual(i.preUp, ['echo pre-up %i']);
  assert.deepEqual(i.postUp, ['iptables -A FORWARD -i %i -j ACCEPT; sysctl -w net.ipv4.ip_forward=1', 'echo second']);
  assert.deepEqual(i.preDown, ['echo pre-down']);
  assert.deepEqual(i.postDown, ['iptables -D FORWARD -i %i -j ACCEPT']);
  assert.equal(i.saveConfig, true);

  assert.equal(cfg.peers.length, 2);
  const [a, b] = cfg.peers;
  assert.ok(a !== undefined && b !== undefined);
  assert.deepEqual(a.publicKey, new Uint8Array(32).fill(2));
  assert.deepEqual(a.presharedKey, new Uint8Array(32).fill(4));
  assert.deepEqual(a.allowedIPs.map(formatPrefix), ['100.96.1.0/24', 'fd7a:7d0:1::/64', '10.0.0.0/8']);
  assert.deepEqual(a.endpoint, { host: 'fd7a:7d0::2', port: 51820 });
  assert.equal(a.persistentKeepalive, 25);
  assert.deepEqual(b.endpoint, { host: 'vpn.example.com', port: 443 });
  assert.equal(b.persistentKeepalive, 0);
  assert.equal(b.presharedKey, undefined);

  const text = formatConfig(cfg, 'wg-quick');
  assert.deepEqual(parse(text), cfg);
  assert.equal(formatConfig(parse(text), 'wg-quick'), text, 'canonical text is a fixed point');
  assert.match(text, /^AllowedIPs = 100\.96\.1\.0\/24, fd7a:7d0:1::\/64, 10\.0\.0\.0\/8$/m);
  assert.match(text, /^FwMark = 0x1234$/m);
});

test('config: mode wg takes the wg keys only, and formatConfig(wg) strips wg-quick keys', () => {
  const stripped = formatConfig(parse(FULL), 'wg');
  assert.doesNotMatch(stripped, /Address|DNS|MTU|Table|PreUp|PostUp|PreDown|PostDown|SaveConfig/);
  const cfg = parse(stripped, 'wg');
  assert.equal(cfg.interface.listenPort, 51820);
  assert.deepEqual(cfg.interface.addresses, []);
  assert.equal(cfg.peers.length, 2);
  assert.deepEqual(cfg.peers, parse(FULL).peers);

  // No [Interface] at all is fine for wg (peers only), and so is an empty file.
  assert.deepEqual(parse(`[Peer]\nPublicKey = ${PEER_A}\n`, 'wg').peers.length, 1);
  assert.deepEqual(parse('', 'wg'), { interface: parse('').interface, peers: [] });
});

test('config: comments, case and odd whitespace', () => {
  const text = [
    '\uFEFF  # leading comment\r',
    '\t[ interface ]   # header comment\r',
    'privatekey=' + PRIVATE + '#trailing\r',
    '   LISTENPORT\t=\t  1234   \r',
    '',
    '[PEER]',
    '  PublicKey =   ' + PEER_A,
    'AllowedIPs=10.0.0.0/8,fd00::/8#comment, 1.2.3.4/32',
    'AllowedIPs = 10.1.0.0 / 16 , 10.2.0.0/16', // wg removes all whitespace from its values
    'endpoint = 198.18.0.1:51820',
    'persistentkeepalive = OFF',
    '   # comment only',
    '[Interface] = nope # not a header, a header line has no "=" ... but starts with "["',
  ];
  assert.throws(() => parse(text.join('\n')), {
    message: 'wg0.conf:13: unknown section "[Interface]=nope" (expected [Interface] or [Peer])',
  });
  const cfg = parse(text.slice(0, -1).join('\n'), 'wg');
  assert.equal(cfg.interface.listenPort, 1234);
  assert.deepEqual(cfg.interface.privateKey, new Uint8Array(32).fill(1));
  const [peer] = cfg.peers;
  assert.ok(peer !== undefined);
  assert.deepEqual(peer.allowedIPs.map(formatPrefix), ['10.0.0.0/8', 'fd00::/8', '10.1.0.0/16', '10.2.0.0/16']);
  assert.deepEqual(peer.endpoint, { host: '198.18.0.1', port: 51820 });
  assert.equal(peer.persistentKeepalive, 0);

  // wg-quick lists split on commas and whitespace; hooks keep inner whitespace.
  const quick = parse(`[Interface]\nAddress = 10.0.0.1/24 10.0.0.2/24,,10.0.0.3/24\nDNS=1.1.1.1  8.8.8.8\nPostUp =   a  =  b  \n`);
  assert.deepEqual(quick.interface.addresses.map(formatPrefix), ['10.0.0.1/24', '10.0.0.2/24', '10.0.0.3/24']);
  assert.deepEqual(quick.interface.dns, ['1.1.1.1', '8.8.8.8']);
  assert.deepEqual(quick.interface.postUp, ['a  =  b']);
});

test('config: endpoints', () => {
  const endpoint = (value: string) => parse(`[Peer]\nPublicKey = ${PEER_A}\nEndpoint = ${value}\n`).peers[0]?.endpoint;
  assert.deepEqual(endpoint('[fd7a:7d0::2]:51820'), { host: 'fd7a:7d0::2', port: 51820 });
  assert.deepEqual(endpoint('[FD7A:07D0:0:0:0:0:0:2]:1'), { host: 'fd7a:7d0::2', port: 1 });
  assert.deepEqual(endpoint('[fe80::1%eth0]:51820'), { host: 'fe80::1%eth0', port: 51820 });
  assert.deepEqual(endpoint('[::ffff:198.18.0.1]:65535'), { host: '::ffff:198.18.0.1', port: 65535 });
  assert.deepEqual(endpoint('198.18.0.1:51820'), { host: '198.18.0.1', port: 51820 });
  assert.deepEqual(endpoint('peer-1.vpn.example.:51820'), { host: 'peer-1.vpn.example.', port: 51820 });
  assert.deepEqual(endpoint('localhost:9'), { host: 'localhost', port: 9 });

  const bad: [string, string][] = [
    ['fd7a:7d0::2:51820', '"fd7a:7d0::2:51820": an IPv6 address needs brackets, [address]:port'],
    ['198.18.0.1', '"198.18.0.1" has no port (host:port)'],
    ['198.18.0.1:', '"198.18.0.1:": port "" is not a number 1..65535'],
    ['198.18.0.1:0', '"198.18.0.1:0": port "0" is not a number 1..65535'],
    ['198.18.0.1:65536', '"198.18.0.1:65536": port "65536" is not a number 1..65535'],
    ['198.18.0.1:http', '"198.18.0.1:http": port "http" is not a number 1..65535'],
    ['198.18.0.256:1', '"198.18.0.256" is not a valid IPv4 address: octet 256 is greater than 255'],
    ['[fd7a::2:1', '"[fd7a::2:1" has "[" without "]"'],
    ['[fd7a::2]', '"[fd7a::2]" needs ":port" after "]"'],
    ['[fd7a::2]51820', '"[fd7a::2]51820" needs ":port" after "]"'],
    ['[198.18.0.1]:1', '"[198.18.0.1]:1": brackets are for IPv6 addresses only'],
    ['[fe80::1%]:1', '"[fe80::1%]:1" has a malformed zone'],
    ['[fe80::1%a%b]:1', '"[fe80::1%a%b]:1" has a malformed zone'],
    [':51820', '"" is neither an address nor a host name'],
    ['bad_host!:1', '"bad_host!" is neither an address nor a host name'],
  ];
  for (const [value, detail] of bad) {
    assert.throws(() => endpoint(value), { name: 'ConfigError', message: `wg0.conf:3: Endpoint: ${detail}` }, value);
  }
});

test('config: every error names file, line and key', () => {
  const peer = `[Peer]\nPublicKey = ${PEER_A}\n`;
  const cases: [string, ConfigMode, string, number | undefined, string | undefined][] = [
    // [text, mode, message, line, key]
    [`PrivateKey = ${PRIVATE}\n`, 'wg', 'wg0.conf:1: PrivateKey: a key appears before any [Interface] or [Peer] section', 1, 'PrivateKey'],
    [`[Interface]\nPrivateKey = abc\n`, 'wg', 'wg0.conf:2: PrivateKey: the value is not a key (base64 of 32 bytes, 44 characters ending in "=")', 2, 'PrivateKey'],
    [`[Peer]\nPublicKey = ${PEER_A.slice(0, 42)}B=\n`, 'wg', `wg0.conf:2: PublicKey: "${PEER_A.slice(0, 42)}B=" is not a key (base64 of 32 bytes, 44 characters ending in "=")`, 2, 'PublicKey'],
    [`[Peer]\nPublicKey = ${PEER_A.slice(0, 43)}\n`, 'wg', `wg0.conf:2: PublicKey: "${PEER_A.slice(0, 43)}" is not a key (base64 of 32 bytes, 44 characters ending in "=")`, 2, 'PublicKey'],
    [`[Peer]\nPublicKey = ${key(5).replace(/^./, '*')}\n`, 'wg', `wg0.conf:2: PublicKey: "${key(5).replace(/^./, '*')}" is not a key (base64 of 32 bytes, 44 characters ending in "=")`, 2, 'PublicKey'],
    [`[Peer]\nPresharedKey = ${key(1)}x\nPublicKey = ${PEER_A}\n`, 'wg', 'wg0.conf:2: PresharedKey: the value is not a key (base64 of 32 bytes, 44 characters ending in "=")', 2, 'PresharedKey'],
    [`[Interface]\nListenPort = 65536\n`, 'wg', 'wg0.conf:2: ListenPort: 65536 is out of range 0..65535', 2, 'ListenPort'],
    [`[Interface]\nListenPort = -1\n`, 'wg', 'wg0.conf:2: ListenPort: "-1" is not a port (a decimal number)', 2, 'ListenPort'],
    [`[Interface]\nFwMark = 0x100000000\n`, 'wg', 'wg0.conf:2: FwMark: "0x100000000" is neither off nor a number 0..0xffffffff', 2, 'FwMark'],
    [`[Interface]\nFwMark = 0xg\n`, 'wg', 'wg0.conf:2: FwMark: "0xg" is neither off nor a number 0..0xffffffff', 2, 'FwMark'],
    [`${peer}PersistentKeepalive = 65536\n`, 'wg', 'wg0.conf:3: PersistentKeepalive: "65536" is neither off nor a number of seconds 0..65535', 3, 'PersistentKeepalive'],
    [`${peer}\n\n\n\n\n\n\n\n\nAllowedIPs = 10.0.0.0/33\n`, 'wg', 'wg0.conf:12: AllowedIPs: "10.0.0.0/33" is not a valid prefix: prefix length 33 is out of range 0..32', 12, 'AllowedIPs'],
    [`${peer}AllowedIPs = 10.0.0.0/8,,10.1.0.0/16\n`, 'wg', 'wg0.conf:3: AllowedIPs: "10.0.0.0/8,,10.1.0.0/16" has an empty entry', 3, 'AllowedIPs'],
    [`${peer}AllowedIPs = fe80::1%eth0/64\n`, 'wg', 'wg0.conf:3: AllowedIPs: "fe80::1%eth0/64" is not a valid prefix: a zone is not allowed here', 3, 'AllowedIPs'],
    [`${peer}AllowedIPs =\n`, 'wg', 'wg0.conf:3: AllowedIPs: has no value', 3, 'AllowedIPs'],
    [`[Interface]\nAddress = 10.0.0.1/24\n`, 'wg', 'wg0.conf:2: Address: only wg-quick knows this key; `wg setconf` rejects it', 2, 'Address'],
    [`[Interface]\nsaveconfig = true\n`, 'wg', 'wg0.conf:2: SaveConfig: only wg-quick knows this key; `wg setconf` rejects it', 2, 'SaveConfig'],
    [`[Interface]\nAddress = 10.0.0.1/33\n`, 'wg-quick', 'wg0.conf:2: Address: "10.0.0.1/33" is not a valid address: prefix length 33 is out of range 0..32', 2, 'Address'],
    [`[Interface]\nDNS = 1.1.1.256\n`, 'wg-quick', 'wg0.conf:2: DNS: "1.1.1.256" is not a valid DNS server address: octet 256 is greater than 255', 2, 'DNS'],
    [`[Interface]\nDNS = bad/domain\n`, 'wg-quick', 'wg0.conf:2: DNS: "bad/domain" is neither an address nor a search domain', 2, 'DNS'],
    [`[Interface]\nMTU = 575\n`, 'wg-quick', 'wg0.conf:2: MTU: 575 is out of range 576..65535', 2, 'MTU'],
    [`[Interface]\nMTU = 1420 bytes\n`, 'wg-quick', 'wg0.conf:2: MTU: "1420 bytes" is not an MTU (a decimal number)', 2, 'MTU'],
    [`[Interface]\nTable = my table\n`, 'wg-quick', 'wg0.conf:2: Table: "my table" is not off, auto, a table number or a table name', 2, 'Table'],
    [`[Interface]\nTable = 4294967296\n`, 'wg-quick', 'wg0.conf:2: Table: table 4294967296 is out of range 0..4294967295', 2, 'Table'],
    [`[Interface]\nSaveConfig = yes\n`, 'wg-quick', 'wg0.conf:2: SaveConfig: "yes" is neither true nor false', 2, 'SaveConfig'],
    [`[Interface]\nMTU = 1420\nmtu = 1280\n`, 'wg-quick', 'wg0.conf:3: MTU: given twice in one section (first on line 2)', 3, 'MTU'],
    [`[Interface]\nListenPort = 1\n[Peer]\nPublicKey = ${PEER_A}\n[Interface]\n`, 'wg', 'wg0.conf:5: [Interface] appears twice (first on line 1)', 5, undefined],
    [`[Interface]\nListenPrt = 1\n`, 'wg', 'wg0.conf:2: ListenPrt: unknown key in [Interface]', 2, 'ListenPrt'],
    [`[Interface]\nendpoint = 1.2.3.4:5\n`, 'wg', 'wg0.conf:2: Endpoint: belongs in [Peer], not [Interface]', 2, 'Endpoint'],
    [`${peer}Address = 10.0.0.1\n`, 'wg-quick', 'wg0.conf:3: Address: belongs in [Interface], not [Peer]', 3, 'Address'],
    [`[Interfaces]\n`, 'wg', 'wg0.conf:1: unknown section "[Interfaces]" (expected [Interface] or [Peer])', 1, undefined],
    [`[Peer\n`, 'wg', 'wg0.conf:1: unknown section "[Peer" (expected [Interface] or [Peer])', 1, undefined],
    [`[Interface]\nListenPort 51820\n`, 'wg', 'wg0.conf:2: expected "Key = Value" or a section header, found a line without "="', 2, undefined],
    [`[Interface]\n = 51820\n`, 'wg', 'wg0.conf:2: a line starts with "=" and has no key', 2, undefined],
    [`[Interface]\n[Peer]\nAllowedIPs = 10.0.0.0/8\n[Peer]\nPublicKey = ${PEER_A}\n`, 'wg', 'wg0.conf:2: PublicKey: this [Peer] section has no PublicKey', 2, 'PublicKey'],
    [`${peer}# last peer without a key\n[Peer]\n`, 'wg', 'wg0.conf:4: PublicKey: this [Peer] section has no PublicKey', 4, 'PublicKey'],
    [`${peer}\n[Peer]\nAllowedIPs = 10.0.0.0/8\npublickey = ${PEER_A}\n`, 'wg', 'wg0.conf:6: PublicKey: the peer on line 1 has the same public key', 6, 'PublicKey'],
    [`${peer}PublicKey = ${PEER_B}\n`, 'wg', 'wg0.conf:3: PublicKey: given twice in one section (first on line 2)', 3, 'PublicKey'],
  ];
  for (const [text, mode, message, line, errorKey] of cases) {
    const error = (() => {
      try {
        parseConfig(text, { file: 'wg0.conf', mode });
      } catch (e) {
        return e;
      }
      assert.fail(`no error for ${JSON.stringify(text)}`);
    })();
    assert.ok(error instanceof ConfigError, `${JSON.stringify(text)} threw ${String(error)}`);
    assert.equal(error.message, message);
    assert.equal(error.file, 'wg0.conf');
    assert.equal(error.line, line, message);
    assert.equal(error.key, errorKey, message);
  }
});

test('config: secret keys never appear in error messages', () => {
  const secret = PRIVATE.slice(0, 40);
  const texts = [
    `[Interface]\nPrivateKey = ${secret}\n`,
    `[Interface]\nPrivateKey ${PRIVATE}\n`,
    `[Interface]PrivateKey = ${PRIVATE}\n`,
    `PrivateKey${PRIVATE}\n[Interface]\n`,
    `[Peer]\nPresharedKey = ${secret}\n`,
  ];
  for (const text of texts) {
    assert.throws(() => parse(text), (e: Error) => e instanceof ConfigError && !e.message.includes(secret.slice(0, 20)));
  }
});

test('config: formatConfig refuses text that would not read back', () => {
  const cfg = parse('[Interface]\nPostUp = echo ok\n');
  cfg.interface.postUp.push('echo # comment');
  assert.throws(() => formatConfig(cfg, 'wg-quick'), RangeError);
  cfg.interface.postUp.pop();
  cfg.interface.dns.push('a b');
  assert.throws(() => formatConfig(cfg, 'wg-quick'), RangeError);
});

test('config: readConfigFile reads a file and names it in errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tundra-config-'));
  try {
    const path = join(dir, 'wg0.conf');
    await writeFile(path, FULL);
    assert.deepEqual(await readConfigFile(path, 'wg-quick'), parse(FULL));
    await assert.rejects(readConfigFile(path, 'wg'), { name: 'ConfigError', message: `${path}:6: Address: only wg-quick knows this key; \`wg setconf\` rejects it` });
    const missing = join(dir, 'missing.conf');
    await assert.rejects(readConfigFile(missing, 'wg'), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.message, `${missing}: cannot read the file (ENOENT)`);
      assert.equal(e.line, undefined);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('config: random input only ever parses or throws ConfigError, and what parses round-trips', () => {
  let seed = 99;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => pickWith(random, items);
  // Values that suit each key, so that many random files get deep into the parser.
  const validValues: Record<string, string[]> = {
    PrivateKey: [PRIVATE],
    ListenPort: ['51820', '0', '65535'],
    FwMark: ['off', '0', '0x10', '4294967295'],
    Address: ['10.0.0.1/24', 'fd7a:7d0::1/64, 100.96.0.1', '10.0.0.2'],
    DNS: ['1.1.1.1, corp.example', 'fd7a:7d0::53', 'search.example.'],
    MTU: ['1420', '576', '65535'],
    Table: ['off', 'auto', 'main', '1234'],
    PreUp: ['echo hi', 'ip rule add fwmark 1 table 2'],
    PostUp: ['sysctl -w net.ipv4.ip_forward=1'],
    PreDown: ['true'],
    PostDown: ['echo %i down'],
    SaveConfig: ['true', 'false'],
    PresharedKey: [PSK],
    AllowedIPs: ['0.0.0.0/0, ::/0', '10.1.2.3/8', 'fd7a:7d0:1::/64', '100.96.0.1'],
    Endpoint: ['[fd7a::1]:51820', '198.18.0.1:51820', 'host.example:1', '[fe80::1%eth0]:9'],
    PersistentKeepalive: ['25', 'off', '0', '65535'],
  };
  const anyValues = [
    ...Object.values(validValues).flat(), key(9), PEER_A.slice(0, 43), '65536', '0x100000000', '10.0.0.0/33', '575', '',
    'fd7a::1:51820', '[::1', '1.2.3.4/24,,', 'a=b', 'yes',
  ];
  const junk = () =>
    String.fromCharCode(...Array.from({ length: Math.floor(random() * 12) }, () => (random() < 0.3 ? pick([0x23, 0x3d, 0x5b, 0x5d, 0x2c, 0x3a, 0x25, 0x2f, 0x20, 0x09, 0x0d, 0x0a]) : Math.floor(random() * (random() < 0.9 ? 128 : 0x10000)))));
  const space = () => pick(['', ' ', '\t', '  ']);
  const keyLine = (name: string): string => {
    const roll = random();
    const value = roll < 0.9 ? pick(validValues[name] ?? anyValues) : roll < 0.97 ? pick(anyValues) : junk();
    const written = random() < 0.1 ? name.toLowerCase() : name;
    return `${space()}${written}${space()}=${space()}${value}${random() < 0.1 ? ` #${junk()}` : ''}`;
  };
  const interfaceKeys = ['PrivateKey', 'ListenPort', 'FwMark', 'Address', 'DNS', 'MTU', 'Table', 'PreUp', 'PostUp', 'PreDown', 'PostDown', 'SaveConfig'];
  const peerKeys = ['PresharedKey', 'AllowedIPs', 'Endpoint', 'PersistentKeepalive', 'AllowedIPs'];
  /** Mostly well-formed files: an [Interface], then peers that start with a PublicKey. */
  const plausibleFile = (): string[] => {
    const lines = ['[Interface]', ...Array.from({ length: Math.floor(random() * 4) }, () => keyLine(pick(interfaceKeys)))];
    const peerCount = Math.floor(random() * 4);
    for (let p = 0; p < peerCount; p++) {
      lines.push(pick(['', '# peer']), pick(['[Peer]', '[peer]', ' [ Peer ] ']), `PublicKey = ${key(10 + Math.floor(random() * 40))}`);
      for (let k = Math.floor(random() * 4); k > 0; k--) lines.push(keyLine(pick(peerKeys)));
    }
    return lines;
  };
  /** Anything: sections, keys and values in any order, comments and junk. */
  const randomLine = (): string => {
    const roll = random();
    if (roll < 0.15) return pick(['[Interface]', '[Peer]', '[peer]', '[ Peer ]', '[Other]', '[', '']);
    if (roll < 0.25) return junk();
    if (roll < 0.3) return `# ${junk()}`;
    if (roll < 0.35) return `PublicKey = ${pick([PEER_A, PEER_B, key(9)])}`;
    return keyLine(pick([...interfaceKeys, ...peerKeys, 'Bogus', '']));
  };

  let parsed = 0;
  let lines = 0;
  for (let n = 0; n < 400; n++) {
    const fileLines = random() < 0.5 ? plausibleFile() : Array.from({ length: 1 + Math.floor(random() * 12) }, randomLine);
    const text = fileLines.join(pick(['\n', '\r\n']));
    lines += fileLines.length;
    for (const mode of ['wg', 'wg-quick'] as const) {
      let cfg: WireGuardConfig;
      try {
        cfg = parseConfig(text, { file: 'fuzz.conf', mode });
      } catch (error) {
        assert.ok(error instanceof ConfigError, `${JSON.stringify(text)} threw ${String(error)}`);
        assert.match(error.message, /^fuzz\.conf:\d+: /);
        continue;
      }
      parsed++;
      assert.deepEqual(parseConfig(formatConfig(cfg, mode), { file: 'again.conf', mode }), cfg, JSON.stringify(text));
    }
  }
  assert.ok(lines >= 2000, `${lines} lines`);
  assert.ok(parsed > 100, `only ${parsed} random configs parsed; the fuzz does not reach deep`);
});

test('a file others can reach gets wg-quick\'s warning, with the fix; one only its owner and group can read does not', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tundra-mode-'));
  try {
    await chmod(dir, 0o755);
    const modes: Array<[number, boolean]> = [[0o600, false], [0o644, true], [0o640, false], [0o604, true], [0o601, true], [0o660, false]];
    for (const [mode, warns] of modes) {
      const file = join(dir, `m${mode.toString(8)}.conf`);
      await writeFile(file, '[Interface]\n');
      await chmod(file, mode);
      const warning = await worldAccessibleWarning(file);
      if (!warns) {
        assert.equal(warning, undefined, mode.toString(8));
        continue;
      }
      const real = await realpath(file); // as wg-quick, which names the file after readlink -f
      assert.equal(warning, `Warning: \`${real}' is world accessible: other users may read its keys; run chmod 600 ${real}`, mode.toString(8));
    }
    // wg-quick's rule: the directory's bits count too, so a 0644 file in a 0700 directory is fine.
    await chmod(dir, 0o700);
    assert.equal(await worldAccessibleWarning(join(dir, 'm644.conf')), undefined);
    await chmod(dir, 0o711);
    assert.match((await worldAccessibleWarning(join(dir, 'm601.conf')))!, /world accessible/, 'others may enter and the file lets them in');
    assert.equal(await worldAccessibleWarning(join(dir, 'missing.conf')), undefined, 'a missing file is for the reader to report');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
