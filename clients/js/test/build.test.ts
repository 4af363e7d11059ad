// What keeps the package one with the hub: its types are what the hub's
// schema makes, the hub serves exactly what src/index.ts builds to, and
// that file stands alone.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('..', import.meta.url)); // clients/js/
const repo = join(pkg, '..', '..');
const read = (path: string) => readFileSync(path, 'utf8');

function schemaToTS(...args: string[]) {
  return spawnSync(process.execPath, [join(pkg, 'scripts', 'schema-to-ts.mjs'), ...args], { encoding: 'utf8' });
}

test('src/jobevent.ts is what schema/jobevent.schema.json makes', () => {
  const run = schemaToTS('--check', join(pkg, 'schema', 'jobevent.schema.json'), join(pkg, 'src', 'jobevent.ts'));
  assert.equal(run.status, 0, run.stderr);
});

test('a schema that changed, and types that did not, fail the check', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'eventhub-schema-'));
  t.after(() => rmSync(dir, { recursive: true }));
  const schema = JSON.parse(read(join(pkg, 'schema', 'jobevent.schema.json')));
  schema.$defs.GrowthResult.properties.median = { type: 'number' };
  schema.$defs.GrowthResult.required.push('median');
  writeFileSync(join(dir, 'changed.json'), JSON.stringify(schema));
  const run = schemaToTS('--check', join(dir, 'changed.json'), join(pkg, 'src', 'jobevent.ts'));
  assert.equal(run.status, 1);
  assert.match(run.stderr, /jobevent\.ts is not what .*changed\.json makes: run `npm run generate`/);

  const out = join(dir, 'changed.ts');
  assert.equal(schemaToTS(join(dir, 'changed.json'), out).status, 0);
  assert.match(read(out), /export interface GrowthResult \{[^}]*\n {2}median: number;\n\}/);
});

test('schema-to-ts refuses what it cannot say in TypeScript', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'eventhub-schema-'));
  t.after(() => rmSync(dir, { recursive: true }));
  const schema = JSON.parse(read(join(pkg, 'schema', 'jobevent.schema.json')));
  schema.$defs.MatrixData.patternProperties = { '^x-': { type: 'string' } };
  writeFileSync(join(dir, 'odd.json'), JSON.stringify(schema));
  const run = schemaToTS(join(dir, 'odd.json'), join(dir, 'odd.ts'));
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /#\/\$defs\/MatrixData: keyword "patternProperties" is not supported/);
});

test('the hub serves what src/index.ts builds to, byte for byte', () => {
  const built = read(join(pkg, 'dist', 'index.js'));
  for (const served of ['transport/web/eventhub-client.js', 'docs/examples/sse-client.js']) {
    assert.ok(read(join(repo, served)) === built,
      `${served} is not dist/index.js: run \`make client\` at the repository root to build and copy it`);
  }
});

test('the core is one module that imports nothing; the hook imports only React and the core', () => {
  const core = read(join(pkg, 'dist', 'index.js'));
  assert.doesNotMatch(core, /^\s*import\b|\bimport\s*\(|^\s*export\s[^;]*\bfrom\b/m);
  assert.match(core, /^export function connect\(/m);
  assert.match(core, /^export class Client \{/m);
  const hook = read(join(pkg, 'dist', 'react.js'));
  const imports = [...hook.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
  assert.deepEqual(imports.sort(), ['./index.js', 'react']);
});

test('package.json: no runtime dependency, React an optional peer, what is published', () => {
  const manifest = JSON.parse(read(join(pkg, 'package.json')));
  assert.equal(manifest.dependencies, undefined);
  assert.equal(manifest.peerDependenciesMeta?.react?.optional, true);
  assert.equal(manifest.sideEffects, false);
  assert.deepEqual(Object.keys(manifest.exports), ['.', './react', './schema/jobevent.schema.json', './package.json']);
  for (const [name, dep] of Object.entries<string>(manifest.devDependencies)) {
    assert.match(dep, /^\d+\.\d+\.\d+$/, `devDependency ${name}@${dep}: pin an exact version`);
  }
});
