// The two ways a benchmark cell can fail to run, which the runner treats differently.

/** The cell cannot run on this machine, through no fault of the implementation (a tool or a
 *  kernel feature is missing); the message says what and how to get it. The cell is skipped. */
export class Unavailable extends Error {
  override name = 'Unavailable';
}

/** The implementation failed: it exited, never created its interface, made no handshake or
 *  died during a load. The message starts with its label and ends with its log's last lines. */
export class ImplFailed extends Error {
  override name = 'ImplFailed';
}
