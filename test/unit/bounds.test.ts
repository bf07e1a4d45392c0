// Every `]!` in src/ (a non-null assertion on an element access) names the bound that
// keeps its index in range. The rule: the nearest enclosing function-like node (function,
// method, constructor, accessor, arrow or function expression) carries a comment containing
// `Bounds:` among its leading comments or JSDoc; a function that is the initializer of a
// variable, property or property assignment may carry it on that declaration instead. For
// code in a class field or static block the class carries it; for module-level code, the
// statement. A body's first comment does not count: the comment sits above the code it covers.
// And noUncheckedIndexedAccess stays on, so that each remaining index without `!` is checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..', '..', '..');
const SRC = join(ROOT, 'src');

function hasBoundsComment(node: ts.Node, text: string): boolean {
  const ranges = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
  return ranges.some((r) => text.slice(r.pos, r.end).includes('Bounds:'));
}

/** The node whose leading comments must justify a `]!` at `at`. */
function owner(at: ts.Node): ts.Node {
  for (let node = at.parent; ; node = node.parent) {
    if (ts.isFunctionLike(node) || ts.isClassLike(node)) {
      const declaration = node.parent;
      const initialized = ts.isVariableDeclaration(declaration) || ts.isPropertyDeclaration(declaration) || ts.isPropertyAssignment(declaration);
      if (!initialized || declaration.initializer !== node) return node;
      // `const f = () => …`: the comment sits above the statement, not the arrow.
      return ts.isVariableDeclaration(declaration) ? declaration.parent.parent : declaration;
    }
    if (ts.isSourceFile(node.parent)) return node;
  }
}

/** `file:line` of each `]!` in `text` whose owner has no `Bounds:` comment. */
export function unjustified(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = new Set<string>();
  const visit = (node: ts.Node): void => {
    if (ts.isNonNullExpression(node) && ts.isElementAccessExpression(node.expression) && !hasBoundsComment(owner(node), text)) {
      found.add(`${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return [...found];
}

test('each ]! in src/ sits in a function (or class) whose comment names its bound (Bounds:)', () => {
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).sort();
  assert.ok(files.length > 50, `found only ${files.length} files under ${SRC}`);
  const missing = files.flatMap((f) => unjustified(join('src', f), readFileSync(join(SRC, f), 'utf8')));
  assert.deepEqual(missing, [], 'add a `// Bounds: …` comment above the enclosing function naming the checked bound, or drop the `!`');
});

test('the rule finds an unjustified ]! and accepts a justified one', () => {
  assert.deepEqual(unjustified('a.ts', 'function f(a: number[]) {\n  return a[0]!;\n}\n'), ['a.ts:2']);
  assert.deepEqual(unjustified('a.ts', '// Bounds: a.length ≥ 1 checked by the caller.\nfunction f(a: number[]) {\n  return a[0]!;\n}\n'), []);
  // The nearest function decides: a comment on the outer one does not cover an inner arrow.
  assert.deepEqual(unjustified('a.ts', '// Bounds: x.\nfunction f(a: number[][]) {\n  return a.map((b) => b[0]!);\n}\n'), ['a.ts:3']);
  assert.deepEqual(unjustified('a.ts', '// Bounds: x.\nconst f = (a: number[]) => a[0]!;\n'), []);
  assert.deepEqual(unjustified('a.ts', '/** Bounds: x. */\nclass C {\n  a = [1];\n  b = this.a[0]!;\n}\n'), []);
  assert.deepEqual(unjustified('a.ts', 'class C {\n  a = [1];\n  // Bounds: x.\n  m() {\n    return this.a[0]!;\n  }\n  n() {\n    return this.a[0]!;\n  }\n}\n'), ['a.ts:8']);
});

test('tsconfig.json keeps noUncheckedIndexedAccess on', () => {
  const config = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions?: Record<string, unknown> };
  assert.equal(config.compilerOptions?.noUncheckedIndexedAccess, true, 'tsconfig.json: set compilerOptions.noUncheckedIndexedAccess to true');
});
