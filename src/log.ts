// Logging as wireguard-go does it: LOG_LEVEL=verbose|error|silent (default error),
// lines "DEBUG: (wg0) …" / "ERROR: (wg0) …" on standard output (and tundra's own
// "WARNING: (wg0) …", at the error level).

export type LogLevel = 'verbose' | 'error' | 'silent';

export function logLevelFromEnv(value: string | undefined): LogLevel {
  if (value === 'verbose' || value === 'debug') return 'verbose';
  if (value === 'silent') return 'silent';
  return 'error';
}

export class Logger {
  constructor(private readonly name: string, readonly level: LogLevel) {}

  verbose(message: string): void {
    if (this.level === 'verbose') this.write('DEBUG', message);
  }

  /** Something to fix that does not stop anything; shown wherever errors are. */
  warning(message: string): void {
    if (this.level !== 'silent') this.write('WARNING', message);
  }

  error(message: string): void {
    if (this.level !== 'silent') this.write('ERROR', message);
  }

  private write(tag: string, message: string): void {
    const time = new Date().toISOString().replace('T', ' ').slice(0, 19);
    process.stdout.write(`${tag}: (${this.name}) ${time} ${message}\n`);
  }
}
