// Builds the native fuzz targets (libFuzzer, AddressSanitizer and
// UndefinedBehaviorSanitizer, with clang) and runs them.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const ROOT = join(dirname(new URL(import.meta.url).pathname), '..', '..');
const OUT = join(ROOT, 'build', 'fuzz');
const CXX = 'clang++';
/** What .ci/run installs; named in the error when the compiler or libFuzzer is missing. */
const PACKAGES = 'clang libclang-rt-14-dev';

/** Each target: its harness in fuzz/native/ and the addon's logic files it runs. */
export const NATIVE_TARGETS: Record<string, string[]> = {
  checksum: ['native/offload.cc'],
  split: ['native/offload.cc'],
  coalesce: ['native/offload.cc'],
  udp_cmsg: ['native/udp.cc'],
  udp_gro: ['native/udp.cc'],
  batch_args: [],
};

function flags(): string[] {
  const addonApi = dirname(createRequire(join(ROOT, 'package.json')).resolve('node-addon-api/package.json'));
  return [
    '-std=c++17', '-g', '-O1', '-Wall', '-Wextra', '-Werror',
    '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=undefined',
    '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS',
    `-I${process.env.npm_config_nodedir ?? '/usr'}/include/node`, `-I${addonApi}`, `-I${join(ROOT, 'native')}`,
  ];
}

/** The newest modification time of the headers every object depends on. */
function headersTime(): number {
  const dirs = [join(ROOT, 'native'), join(ROOT, 'fuzz', 'native')];
  return Math.max(...dirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.h')).map((f) => statSync(join(d, f)).mtimeMs)));
}

async function compile(source: string, object: string, headers: number): Promise<void> {
  if (existsSync(object) && statSync(object).mtimeMs > Math.max(headers, statSync(source).mtimeMs)) return;
  await run(CXX, [...flags(), '-c', source, '-o', object]);
}

/** Compiles every target (two compilers at a time) into build/fuzz/<target>; returns their paths. */
export async function buildNative(targets: string[]): Promise<Record<string, string>> {
  try {
    await run(CXX, ['--version']);
  } catch {
    throw new Error(`${CXX} not found: the native fuzz targets need it and libFuzzer (Debian: apt-get install ${PACKAGES})`);
  }
  mkdirSync(join(OUT, 'obj'), { recursive: true });
  const headers = headersTime();
  const sources = [...new Set(targets.flatMap((t) => [`fuzz/native/${t}.cc`, 'fuzz/native/fake_napi.cc', ...NATIVE_TARGETS[t]!]))];
  const object = (s: string) => join(OUT, 'obj', s.replace(/[/.]/g, '_') + '.o');
  const queue = [...sources];
  const worker = async () => {
    for (let s = queue.shift(); s !== undefined; s = queue.shift()) await compile(join(ROOT, s), object(s), headers);
  };
  await Promise.all([worker(), worker()]);
  const binaries: Record<string, string> = {};
  for (const t of targets) {
    binaries[t] = join(OUT, t);
    const objects = [`fuzz/native/${t}.cc`, 'fuzz/native/fake_napi.cc', ...NATIVE_TARGETS[t]!].map(object);
    try {
      await run(CXX, ['-fsanitize=fuzzer,address,undefined', ...objects, '-o', binaries[t]!]);
    } catch (err) {
      throw new Error(`linking the fuzz target ${t} failed (libFuzzer's runtime is in Debian's libclang-rt-14-dev: apt-get install ${PACKAGES}):\n${(err as { stderr?: string }).stderr ?? err}`);
    }
  }
  return binaries;
}

export interface NativeRun {
  executions: number;
  seconds: number;
}

/** Runs a libFuzzer binary with args; resolves its final stats, rejects with its output's tail when it fails. */
export function runFuzzer(binary: string, args: string[], echo = false): Promise<NativeRun> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(binary, [...args, '-print_final_stats=1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (chunk: Buffer) => {
      out = (out + chunk.toString()).slice(-20000);
      if (echo) process.stderr.write(chunk);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) {
        reject(new Error(`${binary} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${out.slice(-6000)}`));
        return;
      }
      const executions = Number(/stat::number_of_executed_units:\s*(\d+)/.exec(out)?.[1] ?? 0);
      resolve({ executions, seconds });
    });
  });
}

/** The files of a folder (none when it does not exist). */
export function inputs(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort().map((f) => join(dir, f)) : [];
}
