/**
 * Polls `check` every `everyMs` until it returns true, or throws after `timeoutMs`: a
 * bound for a hang, not a speed (the suite must pass on a busy machine), so give it room for a busy machine (the
 * default: a daemon's start-up was seen to take over 10 s with the suite beside
 * stress-ng and other builds).
 */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 60_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
