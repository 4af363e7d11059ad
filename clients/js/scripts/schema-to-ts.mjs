// schema-to-ts: writes the TypeScript types of a JobEvent from its JSON
// Schema, the one eventhub's Go types make (`eventhub schema`).
//
//   node scripts/schema-to-ts.mjs SCHEMA OUT          write OUT
//   node scripts/schema-to-ts.mjs --check SCHEMA OUT  exit 1 if OUT is not what SCHEMA makes
//
// It knows the part of JSON Schema that the hub's schema uses, and refuses
// any other keyword: a schema that grows a construct it cannot say in
// TypeScript fails here instead of giving looser types. Each definition
// becomes an exported type of the same name, with its description as TSDoc;
// the schema's title names the type of the whole.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';

// Keywords that only document or constrain values in ways TypeScript does
// not express; they go into the TSDoc where they help.
const NOTES = new Set(['description', 'title', '$comment', 'format', 'pattern', 'minimum', 'maximum']);
const SHAPES = new Set(['$ref', 'const', 'enum', 'oneOf', 'anyOf', 'type', 'properties', 'required',
  'additionalProperties', 'items', 'minItems', 'maxItems']);
const TOP = new Set(['$schema', '$defs']);
const MAX_TUPLE = 16;

/** schemaToTS returns the TypeScript source for a JobEvent schema. */
export function schemaToTS(schema, source) {
  const out = [
    `// Code generated from ${source} by scripts/schema-to-ts.mjs; DO NOT EDIT.`,
    '// The schema is written by eventhub (`eventhub schema`) from its Go types;',
    '// `make client` at the repository root writes both again.',
    '',
  ];
  check(schema, '#', TOP);
  if (typeof schema.title !== 'string' || !isIdentifier(schema.title)) throw new Error('schema-to-ts: the schema needs a title that names its type');
  const whole = { ...schema };
  delete whole.$defs;
  delete whole.$schema;
  delete whole.title;
  emitDefinition(out, schema.title, whole, '#');
  for (const [name, def] of Object.entries(schema.$defs ?? {})) {
    if (!isIdentifier(name)) throw new Error(`schema-to-ts: #/$defs/${name}: not a TypeScript name`);
    emitDefinition(out, name, def, `#/$defs/${name}`);
  }
  return out.join('\n');
}

function emitDefinition(out, name, def, path) {
  check(def, path);
  out.push(...doc(def, ''));
  if (def.type === 'object' && !('$ref' in def)) {
    out.push(`export interface ${name} ${objectBody(def, path, '')}`, '');
  } else {
    out.push(`export type ${name} = ${typeOf(def, path, '')};`, '');
  }
}

// typeOf is the TypeScript type of schema s, at indent.
function typeOf(s, path, indent) {
  check(s, path);
  if ('$ref' in s) {
    const name = /^#\/\$defs\/([A-Za-z_$][A-Za-z0-9_$]*)$/.exec(s.$ref)?.[1];
    if (!name) throw new Error(`schema-to-ts: ${path}: $ref ${s.$ref} is not a local definition`);
    return name;
  }
  if ('const' in s) return literal(s.const, path);
  if (s.enum) return s.enum.map((v) => literal(v, path)).join(' | ');
  const union = s.oneOf ?? s.anyOf;
  if (union) return union.map((sub, i) => typeOf(sub, `${path}/${s.oneOf ? 'oneOf' : 'anyOf'}/${i}`, indent)).join(' | ');
  const types = Array.isArray(s.type) ? s.type : [s.type];
  return types.map((type) => {
    switch (type) {
      case 'string': return 'string';
      case 'integer':
      case 'number': return 'number';
      case 'boolean': return 'boolean';
      case 'null': return 'null';
      case 'object': return objectBody(s, path, indent);
      case 'array': {
        if (!s.items) throw new Error(`schema-to-ts: ${path}: an array needs items`);
        const item = typeOf(s.items, `${path}/items`, indent);
        if (s.minItems !== undefined && s.minItems === s.maxItems && s.minItems <= MAX_TUPLE) {
          return `[${Array(s.minItems).fill(item).join(', ')}]`;
        }
        return /[|&\s]/.test(item) && !item.startsWith('{') ? `(${item})[]` : `${item}[]`;
      }
    }
    throw new Error(`schema-to-ts: ${path}: type ${JSON.stringify(type)} is not supported`);
  }).join(' | ');
}

function objectBody(s, path, indent) {
  const inner = indent + '  ';
  const required = new Set(s.required ?? []);
  const lines = ['{'];
  for (const [name, prop] of Object.entries(s.properties ?? {})) {
    lines.push(...doc(prop, inner));
    const key = isIdentifier(name) ? name : JSON.stringify(name);
    lines.push(`${inner}${key}${required.has(name) ? '' : '?'}: ${typeOf(prop, `${path}/properties/${name}`, inner)};`);
    required.delete(name);
  }
  if (required.size) throw new Error(`schema-to-ts: ${path}: required ${[...required]} has no property`);
  if (s.additionalProperties === true) {
    lines.push(`${inner}/** Fields of the publisher's own. */`, `${inner}[field: string]: unknown;`);
  } else if (s.additionalProperties !== undefined && s.additionalProperties !== false) {
    throw new Error(`schema-to-ts: ${path}: additionalProperties must be true or false`);
  }
  lines.push(`${indent}}`);
  return lines.join('\n');
}

// doc is the TSDoc of a schema: its description and the constraints
// TypeScript cannot hold.
function doc(s, indent) {
  const text = [];
  if (s.description) text.push(s.description);
  const notes = [];
  if (s.type === 'integer') notes.push('An integer.');
  if (s.minimum !== undefined) notes.push(`At least ${s.minimum}.`);
  if (s.maximum !== undefined) notes.push(`At most ${s.maximum}.`);
  if (s.format) notes.push(`Format: ${s.format}.`);
  if (s.pattern) notes.push(`Pattern: \`${s.pattern}\`.`);
  if (notes.length) text.push(notes.join(' '));
  if (!text.length) return [];
  const body = text.join('\n\n').replaceAll('*/', '*\\/').split('\n');
  if (body.length === 1) return [`${indent}/** ${body[0]} */`];
  return [`${indent}/**`, ...body.map((l) => (l ? `${indent} * ${l}` : `${indent} *`)), `${indent} */`];
}

function check(s, path, extra = new Set()) {
  if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new Error(`schema-to-ts: ${path}: not a schema object`);
  for (const key of Object.keys(s)) {
    if (!NOTES.has(key) && !SHAPES.has(key) && !extra.has(key)) {
      throw new Error(`schema-to-ts: ${path}: keyword ${JSON.stringify(key)} is not supported`);
    }
  }
}

function literal(v, path) {
  if (typeof v === 'string') return `'${v.replace(/[\\']/g, '\\$&')}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  throw new Error(`schema-to-ts: ${path}: ${JSON.stringify(v)} is no literal type`);
}

function isIdentifier(s) {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s);
}

function main(args) {
  const checkOnly = args[0] === '--check';
  if (checkOnly) args = args.slice(1);
  if (args.length !== 2) {
    process.stderr.write('usage: node scripts/schema-to-ts.mjs [--check] SCHEMA OUT\n');
    return 2;
  }
  const [schemaPath, outPath] = args;
  const ts = schemaToTS(JSON.parse(readFileSync(schemaPath, 'utf8')), `schema/${basename(schemaPath)}`);
  if (!checkOnly) {
    writeFileSync(outPath, ts);
    return 0;
  }
  let have = '';
  try {
    have = readFileSync(outPath, 'utf8');
  } catch { /* missing: differs */ }
  if (have !== ts) {
    process.stderr.write(`${outPath} is not what ${schemaPath} makes: run \`npm run generate\` (or \`make client\` at the repository root)\n`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
