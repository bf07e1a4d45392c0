// A daemon's /metrics as the soak reads them, run inside the daemon's namespace by
// bench/soak/run.ts: one long-lived process, so a sample on a busy machine does not wait
// for a Node.js start. Every SECONDS it fetches URL, writes the whole text to FILE (drops
// by reason, for the logs) and prints the figures the soak follows as a JSON line.
//   node scrape.js URL SECONDS FILE
import { writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

const [url, secondsText, file] = process.argv.slice(2);

/** Sum of every series of a metric in Prometheus text. */
function metric(text: string, name: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

function fetchText(): Promise<string> {
  return new Promise((resolve, reject) => {
    // A connection per scrape, closed at once: none is left open in the daemon between samples.
    const req = get(url!, { agent: false, headers: { Connection: 'close' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
  });
}

async function scrape(): Promise<void> {
  try {
    const text = await fetchText();
    writeFileSync(file!, text);
    process.stdout.write(`${JSON.stringify({
      event: 'metrics',
      handles: metric(text, 'nodejs_active_handles_total'),
      initiated: metric(text, 'tundra_handshake_responses_received_total'),
      answered: metric(text, 'tundra_handshake_responses_sent_total'),
      handshakeFailures: metric(text, 'tundra_handshake_failures_total'),
      drops: metric(text, 'tundra_dropped_packets_total') + metric(text, 'tundra_udp_receive_queue_overflows_total'),
      tunDrops: metric(text, 'tundra_tun_tx_dropped_packets'),
    })}\n`);
  } catch (err) {
    // The next round tries again; the soak judges from the lines that came.
    process.stdout.write(`${JSON.stringify({ event: 'scrape-failed', message: (err as Error).message })}\n`);
  }
}

// Until the runner ends it (by pid, with its namespace).
for (;;) {
  await scrape();
  await sleep(Number(secondsText) * 1000);
}
