import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

import {
  ZplFileError,
  ZplNode,
  ZplSerializeError,
  ZplSyntaxError,
  loadZplFile,
  parseZpl,
  serializeZpl,
  zplNode,
  type ZplObject,
} from '../../src/config/zpl.js';

const configDir = fileURLToPath(new URL('../../config/', import.meta.url));

/** Parses `text`, expecting a ZplSyntaxError, and returns it for closer inspection. */
function syntaxError(text: string, source?: string): ZplSyntaxError {
  try {
    parseZpl(text, source);
  } catch (err) {
    assert.ok(err instanceof ZplSyntaxError, `expected ZplSyntaxError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be rejected`);
}

function serializeError(root: ZplNode): ZplSerializeError {
  try {
    serializeZpl(root);
  } catch (err) {
    assert.ok(err instanceof ZplSerializeError, `expected ZplSerializeError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the tree to be rejected');
}

function obj(name: string, value = '', children: ZplObject[] = []): ZplObject {
  return { name, value, children };
}

test('zpl: sections nest by four-space indentation and keep their line numbers', () => {
  const tree = parseZpl(
    ['server', '    heartbeat = 1000', '    deep', '        deeper = yes', 'client', '    inbox = ./in'].join('\n'),
  );
  assert.deepEqual(
    tree.toObject(),
    obj('', '', [
      obj('server', '', [obj('heartbeat', '1000'), obj('deep', '', [obj('deeper', 'yes')])]),
      obj('client', '', [obj('inbox', './in')]),
    ]),
  );
  assert.equal(tree.at('server')?.line, 1);
  assert.equal(tree.at('server/deep/deeper')?.line, 4);
  assert.equal(tree.at('client/inbox')?.line, 6);
});

test('zpl: dedenting by several levels at once returns to the right parent', () => {
  const tree = parseZpl('a\n    b\n        c\n            d = 1\ne = 2\n');
  assert.deepEqual(tree.toObject().children.map((c) => c.name), ['a', 'e']);
  assert.equal(tree.get('a/b/c/d'), '1');
  assert.equal(tree.get('e'), '2');
});

test('zpl: a property with a value may also have children', () => {
  const tree = parseZpl('security\n    plain = 1\n        account\n            login = guest\n');
  assert.equal(tree.get('security/plain'), '1');
  assert.equal(tree.get('security/plain/account/login'), 'guest');
});

test('zpl: get and at resolve paths, with fallback only for missing nodes', () => {
  const tree = parseZpl('client\n    inbox = ./in\n    empty\n');
  assert.equal(tree.get('client/inbox'), './in');
  assert.equal(tree.get('/client/inbox'), './in', 'a leading slash is tolerated');
  assert.equal(tree.get('client/resync'), undefined);
  assert.equal(tree.get('client/resync', '0'), '0');
  assert.equal(tree.get('client/empty', 'fallback'), '', 'an existing empty node is not missing');
  assert.equal(tree.get('nothing/here/at/all', 'x'), 'x');
  assert.equal(tree.at(''), tree);
  assert.ok(tree.at('client') instanceof ZplNode);
  assert.equal(tree.at('client')?.get('inbox'), './in', 'paths are relative to the node');
});

test('zpl: at takes the first match at each level without backtracking', () => {
  const tree = parseZpl('publish\n    location = ./a\npublish\n    location = ./b\n    virtual = /b\n');
  assert.equal(tree.get('publish/location'), './a');
  assert.equal(tree.get('publish/virtual'), undefined);
  assert.deepEqual(
    tree.all('publish/virtual').map((n) => n.value),
    ['/b'],
  );
});

test('zpl: all and iteration visit repeated sections in document order', () => {
  const tree = parseZpl(
    [
      'security',
      '    plain = 1',
      '        account',
      '            login = one',
      '        account',
      '            login = two',
      'security',
      '    plain = 1',
      '        account',
      '            login = three',
    ].join('\n'),
  );
  assert.deepEqual(
    tree.all('security/plain/account').map((account) => account.get('login')),
    ['one', 'two', 'three'],
  );
  assert.deepEqual(tree.all('security/plain/account/login').map((n) => n.line), [4, 6, 10]);
  assert.deepEqual(tree.all('security/missing'), []);
  assert.deepEqual(tree.all(''), [tree]);
  const names: string[] = [];
  for (const child of tree) names.push(child.name);
  assert.deepEqual(names, ['security', 'security']);
  assert.deepEqual([...(tree.at('security/plain') ?? zplNode('none'))].map((n) => n.name), ['account', 'account']);
});

test('zpl: comments are ignored, whole-line, trailing and oddly indented', () => {
  const tree = parseZpl(
    [
      '# top comment',
      'server   # trailing after a section',
      '  # a comment needs no particular indentation',
      '\t# not even spaces',
      '    heartbeat = 1000   # trailing after a value',
      '    monitor=5#tight',
      '',
      '        ',
      '    name =    # nothing but a comment',
    ].join('\n'),
  );
  assert.deepEqual(
    tree.toObject(),
    obj('', '', [obj('server', '', [obj('heartbeat', '1000'), obj('monitor', '5'), obj('name', '')])]),
  );
});

test('zpl: # inside quotes belongs to the value', () => {
  const tree = parseZpl(`a = "x # y"  # comment\nb = 'p#q'\nc = "#"`);
  assert.equal(tree.get('a'), 'x # y');
  assert.equal(tree.get('b'), 'p#q');
  assert.equal(tree.get('c'), '#');
});

test('zpl: single and double quotes are stripped and keep their contents verbatim', () => {
  const tree = parseZpl(
    [
      `a = "  spaced  "`,
      `b = 'it says "hi"'`,
      `c = "it's"`,
      `d = ""`,
      `e = ''`,
      `f="tight"`,
      `g = "a\\tb"`,
      `h = "x = y"   `,
    ].join('\n'),
  );
  assert.equal(tree.get('a'), '  spaced  ');
  assert.equal(tree.get('b'), 'it says "hi"');
  assert.equal(tree.get('c'), "it's");
  assert.equal(tree.get('d'), '');
  assert.equal(tree.get('e'), '');
  assert.equal(tree.get('f'), 'tight');
  assert.equal(tree.get('g'), 'a\\tb', 'no escapes');
  assert.equal(tree.get('h'), 'x = y');
});

test('zpl: unquoted values are trimmed and may hold $, =, /, quotes and colons', () => {
  const tree = parseZpl(
    [
      'endpoint =   tcp://127.0.0.1:5670   ',
      'hash = $argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA',
      'sentence = hello there world',
      `odd = it"s`,
      'tabs =\tvalue\t',
    ].join('\n'),
  );
  assert.equal(tree.get('endpoint'), 'tcp://127.0.0.1:5670');
  assert.equal(tree.get('hash'), '$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA');
  assert.equal(tree.get('sentence'), 'hello there world');
  assert.equal(tree.get('odd'), 'it"s');
  assert.equal(tree.get('tabs'), 'value');
});

test('zpl: every name character of spec 4 is accepted', () => {
  const name = 'aZ09$-_@.&+/';
  const tree = parseZpl(`${name} = 1\n`);
  assert.equal(tree.children[0]?.name, name);
});

test('zpl: LF, CR, CRLF and mixed line endings give the same tree', () => {
  const lines = ['server', '    heartbeat = 1000', '    monitor = 5', 'client', '    inbox = x'];
  const expected = parseZpl(lines.join('\n')).toObject();
  assert.deepEqual(parseZpl(lines.join('\r')).toObject(), expected);
  assert.deepEqual(parseZpl(lines.join('\r\n')).toObject(), expected);
  const mixed = `${lines[0]}\r\n${lines[1]}\r${lines[2]}\n${lines[3]}\r\n${lines[4]}\r\n`;
  const tree = parseZpl(mixed);
  assert.deepEqual(tree.toObject(), expected);
  assert.equal(tree.at('client/inbox')?.line, 5, 'CRLF counts as one line break');
  // A CR-only file must report the right line too.
  assert.equal(syntaxError('a\rb\r  c').line, 3);
});

test('zpl: a leading UTF-8 byte-order mark is tolerated', () => {
  const tree = parseZpl('\uFEFFserver\n    heartbeat = 1\n');
  assert.equal(tree.get('server/heartbeat'), '1');
});

test('zpl: empty and comment-only texts give an empty root', () => {
  assert.deepEqual(parseZpl('').toObject(), obj(''));
  assert.deepEqual(parseZpl('\n\n# only a comment\n   \n').toObject(), obj(''));
});

test('zpl: indentation that is not a multiple of 4 is rejected at its line', () => {
  const err = syntaxError('server\n    heartbeat = 1\n      monitor = 2\n', 'config/server.cfg');
  assert.equal(err.name, 'ZplSyntaxError');
  assert.equal(err.code, 'ERR_ZPL_SYNTAX');
  assert.equal(err.line, 3);
  assert.equal(err.column, 7);
  assert.equal(err.source, 'config/server.cfg');
  assert.equal(err.message, 'config/server.cfg:3: indentation must be a multiple of 4 spaces');
  assert.ok(err instanceof Error);
  assert.equal(syntaxError('  a = 1').line, 1);
});

test('zpl: a line more than one level deeper than the previous one is rejected', () => {
  const err = syntaxError('server\n    heartbeat = 1\n\n# gap\n            monitor = 2\n');
  assert.equal(err.line, 5);
  assert.match(err.message, /^line 5: indentation is 3 levels deep/);
  assert.equal(syntaxError('    a = 1\n').line, 1, 'the first property must be at the margin');
  // Comments do not open a level, so they cannot license a deeper line either.
  assert.equal(syntaxError('a\n    # comment\n        b\n').line, 3);
});

test('zpl: a tab in the indentation is rejected with its line and column', () => {
  const err = syntaxError('server\n\theartbeat = 1\n');
  assert.equal(err.line, 2);
  assert.equal(err.column, 1);
  assert.match(err.reason, /tab/);
  const late = syntaxError('a\n    b\n    \tc = 1\n');
  assert.equal(late.line, 3);
  assert.equal(late.column, 5);
});

test('zpl: characters outside the spec 4 name set are rejected with their line', () => {
  for (const [text, line, column] of [
    ['ok = 1\nbad!name = 2\n', 2, 4],
    ['ok = 1\n    \n  # x\nna*me\n', 4, 3],
    ['a\n    sp ace = 1\n', 2, 8],
    ['a\n    é = 1\n', 2, 5],
    ['"quoted" = 1', 1, 1],
    ['= 1', 1, 1],
    ['x\n    a:b = 1', 2, 6],
    ['x;y', 1, 2],
  ] as const) {
    const err = syntaxError(text);
    assert.equal(err.line, line, `line for ${JSON.stringify(text)}`);
    assert.equal(err.column, column, `column for ${JSON.stringify(text)}`);
  }
  assert.match(syntaxError('bad!name').reason, /invalid character '!' in name/);
  assert.match(syntaxError('= 1').reason, /missing name/);
  assert.match(syntaxError('a\u0001b').reason, /U\+0001/);
});

test('zpl: an unterminated quote is rejected at the opening quote', () => {
  const err = syntaxError('a = 1\nb = "open\nc = 2\n', 'x.cfg');
  assert.equal(err.line, 2);
  assert.equal(err.column, 5);
  assert.match(err.message, /^x\.cfg:2: unterminated quoted value/);
  assert.equal(syntaxError(`a = 'it"`).line, 1, 'the other quote does not close it');
  assert.equal(syntaxError('a = "x" y').line, 1, 'text after the closing quote is an error');
});

test('zpl: serialises canonically with 4-space indentation and LF', () => {
  const root = zplNode('', '', [
    zplNode('server', '', [zplNode('heartbeat', '1000'), zplNode('endpoint', 'tcp://*:5670')]),
    zplNode('security', '', [
      zplNode('echo', 'hello there'),
      zplNode('plain', '1', [zplNode('account', '', [zplNode('login', 'guest')])]),
      zplNode('hash', '$argon2id$v=19$m=65536,t=2,p=1$abc'),
    ]),
    zplNode('quotes', `say "hi"`),
    zplNode('apostrophe', "it's"),
    zplNode('hash-sign', 'a#b'),
    zplNode('tab', '\t'),
    zplNode('empty'),
  ]);
  assert.equal(
    serializeZpl(root),
    [
      'server',
      '    heartbeat = 1000',
      '    endpoint = tcp://*:5670',
      'security',
      '    echo = "hello there"',
      '    plain = 1',
      '        account',
      '            login = guest',
      '    hash = $argon2id$v=19$m=65536,t=2,p=1$abc',
      `quotes = 'say "hi"'`,
      `apostrophe = "it's"`,
      'hash-sign = "a#b"',
      'tab = "\t"',
      'empty',
      '',
    ].join('\n'),
  );
  assert.equal(serializeZpl(zplNode('')), '');
  assert.deepEqual(parseZpl(serializeZpl(root)).toObject(), root.toObject());
});

test('zpl: what ZPL cannot express is refused with a typed error', () => {
  const both = serializeError(zplNode('', '', [zplNode('a', '', [zplNode('motto', `it's "x"`)])]));
  assert.equal(both.code, 'ERR_ZPL_SERIALIZE');
  assert.equal(both.name, 'ZplSerializeError');
  assert.equal(both.nodePath, 'a/motto');
  assert.match(both.message, /^a\/motto: .*both/);
  assert.match(serializeError(zplNode('', '', [zplNode('a', 'x\ny')])).reason, /line break/);
  assert.match(serializeError(zplNode('', '', [zplNode('a', 'x\ry')])).reason, /line break/);
  assert.match(serializeError(zplNode('', '', [zplNode('bad name')])).reason, /invalid character/);
  assert.match(serializeError(zplNode('', '', [zplNode('')])).reason, /empty/);
  assert.match(serializeError(zplNode('root', 'value')).reason, /root/);
});

const nameArb = fc.stringMatching(/^[A-Za-z0-9$\-_@.&+/]{1,8}$/);
const valueArb = fc
  .oneof(
    fc.string({
      unit: fc.constantFrom(' ', '\t', '#', '"', "'", '=', '$', '/', 'a', 'Z', '9', 'é', '\u00a0', '\u2028', '\uFEFF'),
    }),
    fc.string({ unit: 'binary', maxLength: 12 }),
  )
  .filter((v) => !/[\r\n]/.test(v) && !(v.includes('"') && v.includes("'")));

const treeArb = fc.letrec<{ node: ZplNode }>((tie) => ({
  // The leaf comes first so that fast-check falls back to it once maxDepth is reached.
  node: fc.oneof(
    { maxDepth: 4, depthIdentifier: 'zpl' },
    fc.tuple(nameArb, valueArb).map(([name, value]) => zplNode(name, value)),
    fc
      .tuple(nameArb, valueArb, fc.array(tie('node'), { maxLength: 3, depthIdentifier: 'zpl' }))
      .map(([name, value, children]) => zplNode(name, value, children)),
  ),
})).node;

const rootArb = fc.array(treeArb, { maxLength: 4 }).map((children) => zplNode('', '', children));

test('zpl: property: parse(serialize(tree)) equals the tree, and serialising is stable', () => {
  fc.assert(
    fc.property(rootArb, (root) => {
      const text = serializeZpl(root);
      const back = parseZpl(text);
      assert.deepEqual(back.toObject(), root.toObject());
      assert.equal(serializeZpl(back), text);
    }),
    { numRuns: 500 },
  );
});

test('zpl: property: any input either parses or throws ZplSyntaxError, nothing else', () => {
  const zplish = fc.string({
    unit: fc.constantFrom(' ', '    ', '\t', '\n', '\r', '\r\n', '#', '=', '"', "'", 'a', '$', '/', '!', '\uFEFF', 'é', '\u0000'),
    maxLength: 60,
  });
  fc.assert(
    fc.property(fc.oneof(zplish, fc.string({ unit: 'binary' })), (text) => {
      try {
        const tree = parseZpl(text, 'fuzz.cfg');
        assert.ok(tree instanceof ZplNode);
        // Whatever parsed must serialise back to an equivalent tree, unless it holds a
        // value ZPL can only carry inside quotes of one kind.
        const out = (() => {
          try {
            return serializeZpl(tree);
          } catch (err) {
            assert.ok(err instanceof ZplSerializeError);
            return undefined;
          }
        })();
        if (out !== undefined) assert.deepEqual(parseZpl(out).toObject(), tree.toObject());
      } catch (err) {
        if (!(err instanceof ZplSyntaxError)) throw err;
        assert.ok(Number.isInteger(err.line) && err.line >= 1);
        assert.ok(Number.isInteger(err.column) && err.column >= 1);
        assert.ok(err.message.startsWith(`fuzz.cfg:${err.line}: `));
      }
    }),
    { numRuns: 2000 },
  );
});

test('zpl: config/server-plain.cfg holds the reference server keys', async () => {
  const config = await loadZplFile(join(configDir, 'server-plain.cfg'));
  assert.equal(config.get('server/monitor'), '1');
  assert.equal(config.get('server/heartbeat'), '1');
  assert.ok(Number(config.get('server/timeout')) > 0);
  assert.deepEqual(
    config.all('publish').map((p) => [p.get('location'), p.get('virtual')]),
    [
      ['./fmqroot/send', '/'],
      ['./fmqroot/logs', '/logs'],
    ],
  );
  assert.ok((config.get('security/echo') ?? '').length > 0);
  assert.equal(config.get('security/anonymous'), '0');
  assert.equal(config.get('security/plain'), '1');
  const accounts = config.all('security/plain/account');
  assert.equal(accounts.length, 2);
  const [first, second] = accounts;
  assert.equal(first?.get('login'), 'reader');
  assert.equal(first?.get('password'), 'reader');
  assert.equal(first?.get('group'), 'guest');
  assert.equal(second?.get('login'), 'admin');
  assert.equal(second?.get('password'), undefined);
  assert.match(second?.get('hash') ?? '', /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
  assert.equal(second?.get('group'), 'admin');
});

test('zpl: config/server-anonymous.cfg publishes one folder to anyone', async () => {
  const config = await loadZplFile(join(configDir, 'server-anonymous.cfg'));
  assert.equal(config.all('publish').length, 1);
  assert.equal(config.get('publish/location'), './fmqroot/send');
  assert.equal(config.get('publish/virtual'), '/');
  assert.equal(config.get('security/anonymous'), '1');
  assert.equal(config.get('security/plain'), '0');
  assert.deepEqual(config.all('security/plain/account'), []);
  assert.ok(Number(config.get('server/heartbeat')) > 0);
});

test('zpl: config/client.cfg holds the reference client keys', async () => {
  const config = await loadZplFile(join(configDir, 'client.cfg'));
  assert.equal(config.get('client/heartbeat'), '1');
  assert.equal(config.get('client/inbox'), './fmqroot/recv');
  assert.equal(config.get('client/resync'), '0');
  assert.equal(config.get('connect/endpoint'), 'tcp://127.0.0.1:5670');
  assert.deepEqual(config.all('subscribe/path').map((p) => p.value), ['/', '/logs']);
  assert.equal(config.get('security/plain/login'), 'reader');
  assert.equal(config.get('security/plain/password'), 'reader');
});

test('zpl: every sample config survives a serialise/parse round trip', async () => {
  for (const file of ['server-plain.cfg', 'server-anonymous.cfg', 'client.cfg']) {
    const config = await loadZplFile(join(configDir, file));
    assert.deepEqual(parseZpl(serializeZpl(config)).toObject(), config.toObject(), file);
  }
});

test('zpl: loadZplFile on a missing file gives ZplFileError with the cause kept', async () => {
  const path = join(configDir, 'no-such-file.cfg');
  await assert.rejects(loadZplFile(path), (err: unknown) => {
    assert.ok(err instanceof ZplFileError);
    assert.equal(err.name, 'ZplFileError');
    assert.equal(err.code, 'ERR_ZPL_FILE');
    assert.equal(err.path, path);
    assert.ok(err.message.includes(path));
    assert.equal((err.cause as NodeJS.ErrnoException | undefined)?.code, 'ENOENT');
    return true;
  });
  await assert.rejects(loadZplFile(configDir), ZplFileError, 'a directory is not readable as a file');
});

test('zpl: loadZplFile reports syntax errors with the file path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zpl-test-'));
  try {
    const path = join(dir, 'broken.cfg');
    await writeFile(path, 'server\r\n    heartbeat = 1\r\n   monitor = 2\r\n');
    await assert.rejects(loadZplFile(path), (err: unknown) => {
      assert.ok(err instanceof ZplSyntaxError);
      assert.equal(err.source, path);
      assert.equal(err.line, 3);
      assert.equal(err.message, `${path}:3: indentation must be a multiple of 4 spaces`);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
