// The byte scanner against the reference it replaces: a fatal UTF-8 decode,
// JSON.parse, and a duplicate-key/depth walk over the parsed text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeJsonString, fieldTrie, Kind, scanJson, unescapeJsonString, type ScanProblem } from '../../src/json/scan.ts';

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The reference: what the old strict-object parser answered. */
function reference(bytes: Buffer, maxDepth: number): ScanProblem | 'ok' {
  let value: unknown;
  let text: string;
  try {
    text = decoder.decode(bytes);
    value = JSON.parse(text);
  } catch {
    return 'not_json';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not_object';
  // Duplicate keys and depth, on the parsed tree's source order (JSON.parse keeps the last, so walk the text).
  const stack: Array<Set<string> | undefined> = [];
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i;
      for (;;) {
        end = text.indexOf('"', end + 1);
        let s = 0;
        while (text[end - 1 - s] === '\\') s++;
        if (s % 2 === 0) break;
      }
      if (keyNext) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        const keys = stack[stack.length - 1]!;
        if (keys.has(key)) return 'duplicate key';
        keys.add(key);
        keyNext = false;
      }
      i = end;
    } else if (c === '{') {
      if (stack.push(new Set()) > maxDepth) return 'nested too deeply';
      keyNext = true;
    } else if (c === '[') {
      if (stack.push(undefined) > maxDepth) return 'nested too deeply';
    } else if (c === '}' || c === ']') {
      stack.pop();
      keyNext = false;
    } else if (c === ',') {
      keyNext = stack[stack.length - 1] !== undefined;
    }
  }
  return 'ok';
}

function scanned(bytes: Buffer, maxDepth = 512): ScanProblem | 'ok' {
  const r = scanJson(bytes, { maxDepth });
  return r.ok ? 'ok' : r.problem;
}

const TRICKY = [
  '{}', ' {} ', '{"a":1}', '{"a":1,}', '{"a":1 "b":2}', '{"a":}', '{"a"}', '{a:1}', "{'a':1}", '{"a":1}x', '{"a":1}{}',
  '[]', '[1,2]', '"s"', '1', 'true', 'null', '', ' ', '{', '}', '{"a":[1,2,]}', '{"a":[,1]}',
  '{"a":01}', '{"a":-0}', '{"a":-}', '{"a":1.}', '{"a":.5}', '{"a":1e}', '{"a":1e+}', '{"a":1E-5}', '{"a":-0.0e0}', '{"a":+1}',
  '{"a":NaN}', '{"a":Infinity}', '{"a":tru}', '{"a":truex}', '{"a":nulll}', '{"a":True}',
  '{"a":"\\u00e9"}', '{"a":"\\u00E9"}', '{"a":"\\u00g9"}', '{"a":"\\x41"}', '{"a":"\\\'"}', '{"a":"\\/"}', '{"a":"\\"}',
  '{"a":"\\\\"}', '{"a":"\\\\\\""}', '{"a":"tab\there"}', '{"a":"nl\nhere"}', '{"a":"\u007f"}',
  '{"a":"\\ud83d\\ude00"}', '{"a":"\\ud800"}', '{"a":"\\udc00\\ud800"}',
  '{"a":1,"a":2}', '{"a":1,"\\u0061":2}', '{"a":{"b":1},"b":{"b":2}}', '{"a":[{"x":1,"x":2}]}', '[{"x":1,"x":2}]',
  '{"\\ud800":1,"\\udc00":2}', '{"\\ud800":1,"\\ud800":2}', '{"__proto__":1,"__proto__":2}', '{"":1,"":2}',
  '\ufeff{}', '{"a":1}\u00a0', '{"a":1}\u2028', '{\r\n\t"a"\r:\n1\t}\n',
];

test('the scanner agrees with JSON.parse and the duplicate/depth walk on tricky inputs', () => {
  for (const text of TRICKY) {
    const bytes = Buffer.from(text, 'utf8');
    assert.equal(scanned(bytes), reference(bytes, 512), `input ${JSON.stringify(text)}`);
  }
});

test('invalid UTF-8 anywhere, a BOM, and WTF-8 surrogates are not JSON', () => {
  for (const raw of [[0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d], [0xef, 0xbb, 0xbf, 0x7b, 0x7d], [0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d], [0x7b, 0x22, 0xc3, 0x22, 0x3a, 0x31, 0x7d]]) {
    const bytes = Buffer.from(raw);
    assert.equal(scanned(bytes), 'not_json');
    assert.equal(reference(bytes, 512), 'not_json');
  }
});

test('depth: 512 levels pass, 513 are refused, and a million levels cost no stack', () => {
  const deep = (n: number) => Buffer.from(`{"a":${'['.repeat(n - 1)}${']'.repeat(n - 1)}}`);
  assert.equal(scanned(deep(512)), 'ok');
  assert.equal(scanned(deep(513)), 'nested too deeply');
  assert.equal(reference(deep(513), 512), 'nested too deeply');
  assert.equal(scanned(deep(1_000_000)), 'nested too deeply');
  // Not JSON at all wins over a depth problem found earlier, as JSON.parse fails first.
  assert.equal(scanned(Buffer.from(`{"a":${'['.repeat(600)}}`)), 'not_json');
  // A valid array root is not an object, whatever it holds.
  assert.equal(scanned(Buffer.from('[{"x":1,"x":2}]')), 'not_object');
});

test('long keys are compared by their unescaped bytes, escaped or not', () => {
  const long = 'k'.repeat(400);
  const escaped = long.replace(/k/g, '\\u006b');
  assert.equal(scanned(Buffer.from(`{"${long}":1,"${escaped}":2}`)), 'duplicate key');
  assert.equal(scanned(Buffer.from(`{"${long}":1,"${long}x":2}`)), 'ok');
  // Escaped-long but short once unescaped equals the plain short key.
  const short = 'k'.repeat(100);
  assert.equal(scanned(Buffer.from(`{"${short}":1,"${short.replace(/k/g, '\\u006b')}":2}`)), 'duplicate key');
});

/** A random JSON-ish document: mostly valid, sometimes mutated. */
function randomDoc(rand: () => number, depth = 0): string {
  const pick = rand();
  const str = (): string => {
    const alphabet = ['a', 'b', 'é', '😀', '\\n', '\\"', '\\\\', '\\u0041', '\\ud800', '\\udc00', ' ', '"', '\n'];
    let s = '';
    const len = Math.floor(rand() * 4);
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
    return `"${s}"`;
  };
  if (depth > 4 || pick < 0.3) {
    const scalars = ['1', '-0.5e3', 'true', 'false', 'null', '01', '1.', str(), str()];
    return scalars[Math.floor(rand() * scalars.length)]!;
  }
  if (pick < 0.65) {
    const n = Math.floor(rand() * 4);
    return `{${Array.from({ length: n }, () => `${rand() < 0.5 ? '"a"' : str()}:${randomDoc(rand, depth + 1)}`).join(rand() < 0.95 ? ',' : ' ')}}`;
  }
  const n = Math.floor(rand() * 4);
  return `[${Array.from({ length: n }, () => randomDoc(rand, depth + 1)).join(',')}]`;
}

test('fuzz: random documents classify as the reference does', () => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let objects = 0;
  for (let k = 0; k < 20_000; k++) {
    const text = `{"r":${randomDoc(rand)}${rand() < 0.3 ? `,"r":1` : ''}}`;
    const bytes = Buffer.from(text, 'utf8');
    const want = reference(bytes, 3);
    if (want === 'ok') objects++;
    assert.equal(scanned(bytes, 3), want, `input ${JSON.stringify(text)}`);
  }
  assert.ok(objects > 1000, `the fuzz produced only ${objects} valid objects`);
});

test('string values come out as spans that unescape to what JSON.parse reads; keys never do', () => {
  const doc = { k: 'plain', e: 'tab\t"q"\\ é 😀 \u2028', n: 1, a: ['x', { y: 'z' }], 'key"x': 'v' };
  const text = JSON.stringify(doc).replace('é', '\\u00e9');
  const bytes = Buffer.from(text);
  const seen: string[] = [];
  const r = scanJson(bytes, { maxDepth: 512, string: (s, e, escaped) => seen.push((escaped ? unescapeJsonString(bytes, s, e) : bytes.subarray(s, e)).toString('utf8')) });
  assert.deepEqual(r, { ok: true });
  assert.deepEqual(seen, ['plain', 'tab\t"q"\\ é 😀 \u2028', 'x', 'z', 'v']);
});

test('fields: values at dotted paths through objects only, with their kind', () => {
  const bytes = Buffer.from('{"model":"gpt-4o","meta":{"n":1.50,"ok":true,"deep":{"s":"\\u0041"}},"arr":[{"model":"no"}],"x":null}');
  const trie = fieldTrie([['model'], ['meta', 'n'], ['meta', 'ok'], ['meta', 'deep', 's'], ['arr', 'model'], ['x'], ['meta']]);
  const got: Array<[number, Kind, string]> = [];
  scanJson(bytes, { maxDepth: 512, fields: trie, field: (id, kind, s, e, escaped) => got.push([id, kind, kind === Kind.String && escaped ? unescapeJsonString(bytes, s, e).toString() : bytes.toString('utf8', s, e)]) });
  assert.deepEqual(got, [
    [0, Kind.String, 'gpt-4o'],
    [6, Kind.Object, ''],
    [1, Kind.Number, '1.50'],
    [2, Kind.True, 'true'],
    [3, Kind.String, 'A'],
    [5, Kind.Null, 'null'],
  ]);
});

test('escapeJsonString writes what JSON.stringify writes, and round-trips lone surrogates', () => {
  for (const value of ['plain', 'q"uote', 'back\\slash', 'ctl\u0000\u0001\u001f\b\f\n\r\t', 'é😀\u2028', '\ud800', 'a\udc00b', '\ud83d\ude00']) {
    const json = JSON.stringify(value);
    const unescaped = unescapeJsonString(Buffer.from(json), 1, Buffer.byteLength(json) - 1);
    assert.equal(Buffer.from(escapeJsonString(unescaped)).toString('utf8'), json.slice(1, -1), `value ${JSON.stringify(value)}`);
  }
  const plain = Buffer.from('nothing to escape');
  assert.equal(escapeJsonString(plain), plain, 'no copy when nothing needs escaping');
});

test('fuzz: long strings (read with memchr and a word at a time) at every alignment classify and split as the reference does', () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  // Mostly plain text, sometimes what ends or breaks a string: escapes good and bad, raw control bytes, quotes, multi-byte text.
  const pieces = ['lorem ', 'ipsum ', 'é', '😀', '\\n', '\\"', '\\\\', '\\u0041', '\\u00g1', '\\x', '\t', '\n', '\u001f', '\u007f', '"', '\\'];
  const plain = 6;
  let valid = 0;
  for (let k = 0; k < 3_000; k++) {
    const strings = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => {
      let s = '';
      const len = Math.floor(rand() * 400);
      for (let i = 0; i < len; i++) s += pieces[rand() < 0.985 ? Math.floor(rand() * plain) : Math.floor(rand() * pieces.length)];
      return s;
    });
    const text = `{"m":"x",${strings.map((s, i) => `"k${i}${rand() < 0.2 ? s.slice(0, 80) : ''}":"${s}"`).join(',')}}`;
    // The same bytes at offsets 0-7 of a larger allocation: the word view's alignment moves.
    const offset = k % 8;
    const backing = Buffer.alloc(offset + Buffer.byteLength(text) + 8, 0x20);
    backing.write(text, offset);
    const bytes = backing.subarray(offset, offset + Buffer.byteLength(text));
    const want = reference(bytes, 512);
    if (want === 'ok') valid++;
    assert.equal(scanned(bytes), want, `input ${JSON.stringify(text)} at offset ${offset}`);
    if (want !== 'ok') continue;
    const seen: string[] = [];
    scanJson(bytes, { maxDepth: 512, string: (s, e, escaped) => seen.push((escaped ? unescapeJsonString(bytes, s, e) : bytes.subarray(s, e)).toString('utf8')) });
    assert.deepEqual(seen, Object.values(JSON.parse(text) as Record<string, string>), `spans of ${JSON.stringify(text)}`);
  }
  assert.ok(valid > 300 && valid < 2_700, `the fuzz produced ${valid} valid documents of 3,000: both outcomes must be common`);
});

test('a control byte is found wherever it sits in a long string, and a long string without its closing quote is not JSON', () => {
  for (const offset of [0, 1, 2, 3]) {
    for (let at = 0; at < 300; at += 7) {
      const s = 'a'.repeat(300).split('');
      s[at] = '\u0001';
      const backing = Buffer.alloc(offset + 400);
      const text = `{"k":"${s.join('')}"}`;
      backing.write(text, offset);
      assert.equal(scanned(backing.subarray(offset, offset + text.length)), 'not_json', `control byte at ${at}, offset ${offset}`);
    }
    assert.equal(scanned(Buffer.from(`{"k":"${'a'.repeat(300)}}`)), 'not_json');
    assert.equal(scanned(Buffer.from(`{"k":"${'a'.repeat(300)}\\"}`)), 'not_json');
    assert.equal(scanned(Buffer.from(`{"k":"${'a'.repeat(300)}\\u12"}`)), 'not_json');
  }
});
