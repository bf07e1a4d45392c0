// Every TypeScript fuzz target, by name.
import { config } from './config.js';
import { ip } from './ip.js';
import { messages } from './messages.js';
import type { TsTarget } from './target.js';
import { uapi } from './uapi.js';

export const TS_TARGETS: TsTarget[] = [messages, ip, uapi, config];
