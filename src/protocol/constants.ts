// Protocol constants of WireGuard (whitepaper §6 and wireguard-go's device/constants.go).
// Times are in milliseconds, the unit of every clock in tundra.
import { AEAD_TAG_SIZE } from '../crypto/sizes.js';

export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';

export const REKEY_AFTER_MESSAGES = 1n << 60n;
/** wireguard-go's value: 2^64 - 2^13 - 1. A counter at or past it is never sent or accepted. */
export const REJECT_AFTER_MESSAGES = (1n << 64n) - (1n << 13n) - 1n;

export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
/** Upper bound of the random jitter added to REKEY_TIMEOUT. */
export const REKEY_TIMEOUT_JITTER_MAX = 334;
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_REFRESH_TIME = 120_000;
/**
 * Under load (the responder demands cookies, MAC2): once the handshake backlog is an
 * eighth of its capacity (wireguard-go's rule), or its oldest message waited this long
 * (tundra's: a backlog that does not move is a load, however short), and for
 * UNDER_LOAD_STICKY after. Not shorter: a busy machine's event loop can hold a lone
 * initiation for tens of milliseconds, and a cookie costs its peer a retransmission (5 s).
 */
export const UNDER_LOAD_SHARE = 1 / 8;
export const UNDER_LOAD_AGE = 1_000;
export const UNDER_LOAD_STICKY = 1_000;
/** Handshake initiations to one peer are at most one per this interval (50/s). */
export const HANDSHAKE_INITIATION_RATE = 20;
/** Key material is zeroed after 3 × REJECT_AFTER_TIME without a new handshake. */
export const ZERO_KEYS_AFTER = REJECT_AFTER_TIME * 3;
/** wireguard-go sends at most this many handshake initiations per attempt. */
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;

/** Width of the receive replay window in messages (RFC 6479 bitmap, as wireguard-go and Linux). */
export const REPLAY_WINDOW_SIZE = 8128;

export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

export const MESSAGE_INITIATION_SIZE = 148;
export const MESSAGE_RESPONSE_SIZE = 92;
export const MESSAGE_COOKIE_REPLY_SIZE = 64;
/** Header of a transport message: type, reserved, receiver index, counter. */
export const MESSAGE_TRANSPORT_HEADER_SIZE = 16;
/** A keepalive: header and the tag of an empty payload. */
export const MESSAGE_TRANSPORT_MIN_SIZE = MESSAGE_TRANSPORT_HEADER_SIZE + AEAD_TAG_SIZE;
/** Largest UDP payload a transport message can be. */
export const MAX_MESSAGE_SIZE = 65535;

export const COOKIE_SIZE = 16;
export const MAC_SIZE = 16;
export const TIMESTAMP_SIZE = 12;
/** Plaintext transport payloads are padded to a multiple of this. */
export const PADDING_MULTIPLE = 16;
