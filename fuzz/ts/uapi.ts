// The UAPI stream (operations, set requests) on any bytes in any pieces: next()
// never throws, and a set request it accepts is formatted and parsed back the same.
import { formatSetRequest, UapiStream, type UapiCommand } from '../../src/uapi/protocol.js';
import { require, type TsTarget } from './target.js';

function commands(stream: UapiStream): UapiCommand[] {
  const out: UapiCommand[] = [];
  for (let c = stream.next(); c !== undefined; c = stream.next()) out.push(c);
  return out;
}

export const uapi: TsTarget = {
  name: 'uapi',
  dictionary: [
    'set=1\n', 'get=1\n', 'tundra-stats=1\n', '\n\n', 'private_key=', 'listen_port=', 'fwmark=', 'replace_peers=true\n',
    'public_key=', 'remove=true\n', 'update_only=true\n', 'preshared_key=', 'endpoint=', 'persistent_keepalive_interval=',
    'replace_allowed_ips=true\n', 'allowed_ip=', '/32', '/128', '[::1]:51820', '0'.repeat(64), 'protocol_version=1\n',
  ],
  run(input) {
    // The first byte: small limits (to reach the "too long" paths) and the piece size.
    const mode = input[0] ?? 0;
    const bytes = input.subarray(1);
    const stream = new UapiStream(mode & 1 ? { maxLineBytes: 80, maxRequestBytes: 400 } : {});
    const piece = 1 + (mode >> 1);
    const got: UapiCommand[] = [];
    for (let at = 0; at < bytes.length; at += piece) {
      stream.push(bytes.subarray(at, at + piece));
      got.push(...commands(stream));
    }
    for (const c of got) {
      if (c.kind !== 'set') continue;
      const again = new UapiStream();
      again.push(new TextEncoder().encode(formatSetRequest(c.request)));
      const back = commands(again);
      require(back.length === 1 && back[0]!.kind === 'set', 'a formatted set request parses');
      require(formatSetRequest((back[0] as { request: typeof c.request }).request) === formatSetRequest(c.request), 'set request round trip');
    }
  },
};
