// Which offloads tundra may use: `--offload=none` / `--offload=-NAME,-NAME` on the
// command line, or the same text in TUNDRA_OFFLOAD (what works under wg-quick, which
// starts the daemon itself). Everything is on by default where the kernel has it;
// the switches only ever turn things off.
import { SettingError } from '../errors.js';

/** The offloads that can be switched off one by one. */
export const OFFLOAD_NAMES = ['tun-tso', 'tun-uso', 'tun-gro', 'udp-gso', 'udp-gro'] as const;
export type OffloadName = (typeof OFFLOAD_NAMES)[number];

/** Per offload: whether tundra may try it (the kernel still has the last word). */
export type OffloadSettings = Readonly<Record<OffloadName, boolean>>;

export const ALL_OFFLOADS: OffloadSettings = Object.freeze({
  'tun-tso': true, 'tun-uso': true, 'tun-gro': true, 'udp-gso': true, 'udp-gro': true,
});

/**
 * Parses a switch value: empty or `all` (everything), `none`, or a comma list of
 * `-NAME` items that turn single offloads off. `source` names where the text came
 * from, for the error message (e.g. `--offload` or `TUNDRA_OFFLOAD`).
 */
export function parseOffloadSettings(text: string | undefined, source: string): OffloadSettings {
  const value = (text ?? '').trim();
  if (value === '' || value === 'all') return ALL_OFFLOADS;
  if (value === 'none') return Object.freeze(Object.fromEntries(OFFLOAD_NAMES.map((n) => [n, false])) as Record<OffloadName, boolean>);
  const settings: Record<OffloadName, boolean> = { ...ALL_OFFLOADS };
  for (const raw of value.split(',')) {
    const item = raw.trim();
    const name = item.startsWith('-') ? item.slice(1) : undefined;
    if (name === undefined || !(OFFLOAD_NAMES as readonly string[]).includes(name)) {
      throw new SettingError(
        `${source}: "${item}" is not an offload switch; use "none", or a comma list of -NAME with NAME one of ${OFFLOAD_NAMES.join(', ')}`,
      );
    }
    settings[name as OffloadName] = false;
  }
  return Object.freeze(settings);
}
