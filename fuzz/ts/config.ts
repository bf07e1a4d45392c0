// The configuration file parser (wg and wg-quick modes) on any text: a config or
// a ConfigError, and what parses is formatted and parsed back the same.
import { formatConfig, parseConfig, type ConfigMode } from '../../src/config/wg-config.js';
import { ConfigError } from '../../src/errors.js';
import { allowing, require, type TsTarget } from './target.js';

export const config: TsTarget = {
  name: 'config',
  dictionary: [
    '[Interface]\n', '[Peer]\n', 'PrivateKey = ', 'PublicKey = ', 'PresharedKey = ', 'ListenPort = ', 'FwMark = ',
    'AllowedIPs = ', 'Endpoint = ', 'PersistentKeepalive = ', 'Address = ', 'DNS = ', 'MTU = ', 'Table = ',
    'PreUp = ', 'PostUp = ', 'PreDown = ', 'PostDown = ', 'SaveConfig = true', ' = ', ', ', '/24', '::/0', '#', '\n',
    'off', '0x', 'yHz0eBFnpSmUWXMHJkT7w4+MHfgGQkLoZtL+IPLbmG4=',
  ],
  run(input) {
    const mode: ConfigMode = (input[0] ?? 0) & 1 ? 'wg-quick' : 'wg';
    const text = new TextDecoder().decode(input.subarray(1));
    allowing([ConfigError], () => {
      const cfg = parseConfig(text, { file: 'fuzz.conf', mode });
      let formatted: string;
      try {
        formatted = formatConfig(cfg, mode);
      } catch (err) {
        // Documented: a value the format cannot carry (a '#' or a line break).
        if (err instanceof RangeError) return;
        throw err;
      }
      let again: string;
      try {
        again = formatConfig(parseConfig(formatted, { file: 'formatted.conf', mode }), mode);
      } catch (err) {
        throw new Error(`the formatted config does not parse back:\n${formatted}`, { cause: err });
      }
      require(again === formatted, 'config round trip');
    });
  },
};
