// The folders of src/ import each other only one way: no cycle between folders (a
// file at src/'s top, index.ts, log.ts or errors.ts, is a node of its own).
// docs/design.md §10 gives the order, bottom to top; a cycle means some module sits
// in the wrong folder.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const SRC = resolve(dirname(new URL(import.meta.url).pathname), '..', '..', '..', 'src');

/**
 * Relative specifiers a module loads: static and dynamic imports, re-exports. A file
 * started as a worker or a process (`new URL(…)`) is not counted: the workers sit
 * beside their pools, and `tundra doctor` runs the CLI as a program.
 */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)'(\.{1,2}\/[^']+)'/g;

/** One import from a file in one folder of another folder's file. */
interface Edge { from: string; to: string; file: string; target: string }

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** The node a file belongs to: its folder under src/, or the file itself at the top. */
function nodeOf(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes(sep) ? rel.split(sep)[0]! : rel;
}

/** Every relative import of a file under src/: the importing file and the resolved target. */
function imports(): { file: string; target: string }[] {
  return sourceFiles(SRC).flatMap((file) => [...readFileSync(file, 'utf8').matchAll(SPECIFIER)]
    .map((m) => ({ file, target: resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts') })));
}

function folderEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const { file, target } of imports()) {
    if (!target.startsWith(SRC + sep)) continue;
    const [from, to] = [nodeOf(file), nodeOf(target)];
    if (from !== to) edges.push({ from, to, file: relative(SRC, file), target: relative(SRC, target) });
  }
  return edges;
}

/** The cycles of a directed graph: each strongly connected component with more than one node (Tarjan). */
export function cycles(edges: readonly { from: string; to: string }[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    if (!next.has(from)) next.set(from, new Set());
    if (!next.has(to)) next.set(to, new Set());
    next.get(from)!.add(to);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('folder layering', () => {
  test('src/ imports nothing from outside it (test/, reference/, bench/, fuzz/ are not shipped code)', () => {
    const outside = imports().filter(({ target }) => !target.startsWith(SRC + sep))
      .map(({ file, target }) => `${relative(SRC, file)} imports ${relative(SRC, target)}`);
    assert.deepEqual(outside, []);
  });

  test('the cycle finder finds a cycle, and only real ones', () => {
    assert.deepEqual(cycles([{ from: 'a', to: 'b' }, { from: 'b', to: 'c' }, { from: 'c', to: 'a' }, { from: 'c', to: 'd' }]), [['a', 'b', 'c']]);
    assert.deepEqual(cycles([{ from: 'a', to: 'b' }, { from: 'a', to: 'c' }, { from: 'b', to: 'c' }]), []);
  });

  test('no two folders of src/ import each other, directly or around a loop', () => {
    const edges = folderEdges();
    assert.ok(edges.length > 50, `only ${edges.length} imports between folders found: is SRC (${SRC}) right?`);
    const found = cycles(edges);
    const explain = found.map((component) => {
      const inside = edges.filter((e) => component.includes(e.from) && component.includes(e.to));
      const lines = [...new Map(inside.map((e) => [`${e.from}->${e.to}`, `  ${e.from} -> ${e.to}: ${e.file} imports ${e.target}`])).values()];
      return `cycle among ${component.join(', ')}:\n${lines.join('\n')}`;
    });
    assert.deepEqual(explain, [], `folders import each other:\n${explain.join('\n')}`);
  });
});
