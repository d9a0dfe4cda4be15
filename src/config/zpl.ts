/**
 * ZPL, the ZeroMQ Property Language (rfc.zeromq.org spec 4): the configuration format the
 * reference C FileMQ reads, so a config written for it works here unchanged.
 *
 * The parser is strict where the spec is (indentation, name characters, quoting) and
 * reports every problem as a {@link ZplSyntaxError} carrying the file and line, because a
 * silently misread config (a section that quietly became a sibling instead of a child) is
 * far harder to debug than a refusal to start.
 *
 * @packageDocumentation
 */

import { readFile } from 'node:fs/promises';

/** The plain-data shape of a node, without line numbers: handy for comparisons and JSON. */
export interface ZplObject {
  name: string;
  value: string;
  children: ZplObject[];
}

/**
 * One property or section of a ZPL tree. The tree returned by {@link parseZpl} has an unnamed
 * root whose children are the top-level lines of the file.
 *
 * Paths such as `security/plain/account` are resolved one name per level; a name that itself
 * contains `/` (legal in spec 4) can only be reached through {@link ZplNode.children}.
 *
 * @example
 * ```ts
 * const tree = parseZpl('server\n    heartbeat = 1000\n');
 * tree.get('server/heartbeat');        // '1000'
 * tree.get('server/monitor', '1000');  // '1000' (fallback)
 * for (const section of tree) console.log(section.name); // 'server'
 * ```
 */
export class ZplNode implements Iterable<ZplNode> {
  /**
   * @param name - property name; '' for a root.
   * @param value - property value; '' when the line had none.
   * @param children - ordered child nodes; names may repeat.
   * @param line - 1-based line where the node was defined, 0 when built in code.
   */
  constructor(
    readonly name: string,
    readonly value: string = '',
    readonly children: ZplNode[] = [],
    readonly line: number = 0,
  ) {}

  /**
   * The node at `path`, taking the first child with the wanted name at each level (as the
   * reference's `zconfig_locate` does: no backtracking into later siblings). An empty path
   * is this node.
   *
   * @example
   * ```ts
   * parseZpl('security\n    plain = 1\n').at('security/plain')?.value; // '1'
   * ```
   */
  at(path: string): ZplNode | undefined {
    let node: ZplNode | undefined = this;
    for (const segment of splitPath(path)) {
      node = node.children.find((child) => child.name === segment);
      if (node === undefined) return undefined;
    }
    return node;
  }

  /**
   * The value at `path`, or `fallback` when no such node exists. A node that exists with an
   * empty value yields '' rather than the fallback, so `plain` alone is not `plain = 1`.
   *
   * @example
   * ```ts
   * const tree = parseZpl('client\n    inbox = ./inbox\n');
   * tree.get('client/inbox');            // './inbox'
   * tree.get('client/resync', '0');      // '0'
   * ```
   */
  get(path: string): string | undefined;
  get(path: string, fallback: string): string;
  get(path: string, fallback?: string): string | undefined {
    const node = this.at(path);
    return node === undefined ? fallback : node.value;
  }

  /**
   * Every node matching `path`, in document order, following every matching child at each
   * level. This is how repeated sections are read: each `publish`, or each
   * `security/plain/account` across the file.
   *
   * @example
   * ```ts
   * for (const account of config.all('security/plain/account')) {
   *   console.log(account.get('login'), account.get('group', 'guest'));
   * }
   * ```
   */
  all(path: string): ZplNode[] {
    let found: ZplNode[] = [this];
    for (const segment of splitPath(path)) {
      found = found.flatMap((node) => node.children.filter((child) => child.name === segment));
      if (found.length === 0) break;
    }
    return found;
  }

  /**
   * Iterates over the direct children, in document order.
   *
   * @example
   * ```ts
   * for (const child of parseZpl('a = 1\nb = 2\n')) console.log(child.name, child.value);
   * ```
   */
  [Symbol.iterator](): Iterator<ZplNode> {
    return this.children[Symbol.iterator]();
  }

  /**
   * This subtree as plain data without line numbers, so two trees can be compared with
   * `assert.deepStrictEqual` regardless of where their lines sat in a file.
   *
   * @example
   * ```ts
   * parseZpl('a = 1\n').toObject();
   * // { name: '', value: '', children: [{ name: 'a', value: '1', children: [] }] }
   * ```
   */
  toObject(): ZplObject {
    return {
      name: this.name,
      value: this.value,
      children: this.children.map((child) => child.toObject()),
    };
  }
}

/**
 * Builds a node in code, for tests and for writing configs with {@link serializeZpl}. Use the
 * name '' for a root.
 *
 * @example
 * ```ts
 * const root = zplNode('', '', [
 *   zplNode('server', '', [zplNode('heartbeat', '1000')]),
 * ]);
 * serializeZpl(root); // 'server\n    heartbeat = 1000\n'
 * ```
 */
export function zplNode(name: string, value = '', children: ZplNode[] = []): ZplNode {
  return new ZplNode(name, value, children);
}

/**
 * A ZPL text broke a rule of spec 4. `line` and `column` are 1-based; `source` is the file
 * name when one was given to the parser.
 *
 * @example
 * ```ts
 * try {
 *   parseZpl('server\n  heartbeat = 1\n', 'server.cfg');
 * } catch (err) {
 *   if (err instanceof ZplSyntaxError) console.error(err.message);
 *   // server.cfg:2: indentation must be a multiple of 4 spaces
 * }
 * ```
 */
export class ZplSyntaxError extends Error {
  override readonly name = 'ZplSyntaxError';
  readonly code = 'ERR_ZPL_SYNTAX';

  /**
   * @param reason - what is wrong, without the location prefix.
   * @param line - 1-based line number.
   * @param column - 1-based column of the offending character.
   * @param source - the file name, if known.
   */
  constructor(
    readonly reason: string,
    readonly line: number,
    readonly column: number,
    readonly source?: string,
  ) {
    super(`${source ?? 'line'}${source === undefined ? ' ' : ':'}${line}: ${reason}`);
  }
}

/**
 * A ZPL file could not be read at all (missing, a directory, no permission). The underlying
 * file-system error is kept as `cause`.
 *
 * @example
 * ```ts
 * await loadZplFile('missing.cfg').catch((err) => {
 *   if (err instanceof ZplFileError) console.error(err.path, err.cause);
 * });
 * ```
 */
export class ZplFileError extends Error {
  override readonly name = 'ZplFileError';
  readonly code = 'ERR_ZPL_FILE';

  /**
   * @param path - the file that could not be read.
   * @param cause - the error reported by the file system.
   */
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`${path}: cannot read ZPL file (${detail})`, { cause });
  }
}

/**
 * A tree cannot be written as ZPL: an invalid name, a value with a line break or with both
 * kinds of quote (spec 4 has no escapes), or a root carrying a value. `nodePath` names the
 * offending node.
 *
 * @example
 * ```ts
 * serializeZpl(zplNode('', '', [zplNode('motto', `it's "fine"`)]));
 * // throws ZplSerializeError: motto: a value cannot contain both ' and "
 * ```
 */
export class ZplSerializeError extends Error {
  override readonly name = 'ZplSerializeError';
  readonly code = 'ERR_ZPL_SERIALIZE';

  /**
   * @param reason - what cannot be represented.
   * @param nodePath - slash-separated names from the root to the offending node.
   */
  constructor(
    readonly reason: string,
    readonly nodePath: string,
  ) {
    super(`${nodePath === '' ? '(root)' : nodePath}: ${reason}`);
  }
}

/** Spaces per nesting level. */
const INDENT = 4;

const SPACE = 0x20;
const TAB = 0x09;

/** spec 4: names use letters, digits and `$ - _ @ . & + /`. */
function isNameChar(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x24 || // $
    code === 0x2d || // -
    code === 0x5f || // _
    code === 0x40 || // @
    code === 0x2e || // .
    code === 0x26 || // &
    code === 0x2b || // +
    code === 0x2f //    /
  );
}

function isBlank(code: number): boolean {
  return code === SPACE || code === TAB;
}

function splitPath(path: string): string[] {
  // A leading or doubled slash means nothing; tolerate it as zconfig does.
  return path.split('/').filter((segment) => segment !== '');
}

/** Names a character for an error message; control characters would vanish in a terminal. */
function describeChar(text: string, index: number): string {
  const code = text.codePointAt(index) ?? 0;
  if (code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0)) {
    return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  return `'${String.fromCodePoint(code)}'`;
}

/**
 * Parses ZPL text into a tree. The result is an unnamed root whose children are the
 * top-level properties. Throws {@link ZplSyntaxError} (and nothing else) on invalid input;
 * `source` only labels error messages.
 *
 * @example
 * ```ts
 * const tree = parseZpl([
 *   'publish',
 *   '    location = ./public   # folder on disk',
 *   '    virtual = /',
 * ].join('\n'), 'server.cfg');
 * tree.get('publish/location'); // './public'
 * ```
 */
export function parseZpl(text: string, source?: string): ZplNode {
  const root = new ZplNode('', '', [], 0);
  // stack[level] is the node that a line indented `level` steps becomes a child of.
  const stack: ZplNode[] = [root];
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  // spec 4: lines end with LF, CR or CRLF, and a file may mix them.
  const lines = body.split(/\r\n|\r|\n/);

  const fail = (reason: string, line: number, column: number): never => {
    throw new ZplSyntaxError(reason, line, column, source);
  };

  lines.forEach((content, index) => {
    const lineNo = index + 1;
    let pos = 0;
    while (pos < content.length && isBlank(content.charCodeAt(pos))) pos++;
    // Comments carry no structure, so their indentation is not held against them.
    if (pos === content.length || content.charCodeAt(pos) === 0x23) return;

    const tab = content.indexOf('\t');
    if (tab !== -1 && tab < pos) {
      fail('tab in indentation; spec 4 indents with 4 spaces per level', lineNo, tab + 1);
    }
    if (pos % INDENT !== 0) {
      fail(`indentation must be a multiple of ${INDENT} spaces`, lineNo, pos + 1);
    }
    const level = pos / INDENT;
    const parent = stack[level];
    if (parent === undefined) {
      const allowed = stack.length - 1;
      fail(
        `indentation is ${level} levels deep, but at most ${allowed} ${allowed === 1 ? 'is' : 'are'} allowed after the previous line`,
        lineNo,
        pos + 1,
      );
      return;
    }

    const nameStart = pos;
    while (pos < content.length && isNameChar(content.charCodeAt(pos))) pos++;
    const name = content.slice(nameStart, pos);
    if (name === '') {
      fail(
        content.charCodeAt(pos) === 0x3d
          ? "missing name before '='"
          : `invalid character ${describeChar(content, pos)} in name`,
        lineNo,
        pos + 1,
      );
    }
    if (pos < content.length && !isBlank(content.charCodeAt(pos))) {
      const code = content.charCodeAt(pos);
      if (code !== 0x3d && code !== 0x23) {
        fail(`invalid character ${describeChar(content, pos)} in name`, lineNo, pos + 1);
      }
    }

    while (pos < content.length && isBlank(content.charCodeAt(pos))) pos++;
    let value = '';
    const next = content.charCodeAt(pos);
    if (pos < content.length && next !== 0x23) {
      if (next !== 0x3d) {
        fail(
          `unexpected ${describeChar(content, pos)} after name '${name}'; expected '=', a comment or the end of the line`,
          lineNo,
          pos + 1,
        );
      }
      pos++;
      while (pos < content.length && isBlank(content.charCodeAt(pos))) pos++;
      value = readValue(content, pos, lineNo, fail);
    }

    const node = new ZplNode(name, value, [], lineNo);
    parent.children.push(node);
    stack.length = level + 1;
    stack.push(node);
  });

  return root;
}

/** Reads the value part of a line, starting at its first non-blank character. */
function readValue(
  content: string,
  start: number,
  lineNo: number,
  fail: (reason: string, line: number, column: number) => never,
): string {
  const quote = content[start];
  if (quote === '"' || quote === "'") {
    // spec 4: a quoted value runs to the matching quote; there are no escapes.
    const close = content.indexOf(quote, start + 1);
    if (close === -1) {
      fail(`unterminated quoted value (no closing ${quote})`, lineNo, start + 1);
    }
    let pos = close + 1;
    while (pos < content.length && isBlank(content.charCodeAt(pos))) pos++;
    if (pos < content.length && content.charCodeAt(pos) !== 0x23) {
      fail(`unexpected ${describeChar(content, pos)} after the closing quote`, lineNo, pos + 1);
    }
    return content.slice(start + 1, close);
  }
  // spec 4: an unquoted value ends at '#', and surrounding blanks are not part of it.
  const hash = content.indexOf('#', start);
  let end = hash === -1 ? content.length : hash;
  while (end > start && isBlank(content.charCodeAt(end - 1))) end--;
  return content.slice(start, end);
}

/**
 * Writes a tree as canonical ZPL: the root's children at the left margin, 4 spaces per level,
 * `name = value`, a bare `name` when the value is empty, LF line endings. A value containing
 * whitespace, `#` or a quote is wrapped in double quotes, or in single quotes when it
 * contains a double quote. `parseZpl(serializeZpl(t))` equals `t` apart from line numbers.
 * Throws {@link ZplSerializeError} for what spec 4 cannot express.
 *
 * @example
 * ```ts
 * serializeZpl(zplNode('', '', [zplNode('security', '', [zplNode('echo', 'hello there')])]));
 * // 'security\n    echo = "hello there"\n'
 * ```
 */
export function serializeZpl(root: ZplNode): string {
  if (root.value !== '') {
    throw new ZplSerializeError('a root cannot carry a value; ZPL has nowhere to write it', '');
  }
  const out: string[] = [];
  const write = (node: ZplNode, depth: number, parentPath: string): void => {
    const path = parentPath === '' ? node.name : `${parentPath}/${node.name}`;
    const line = ' '.repeat(depth * INDENT) + checkName(node.name, path);
    out.push(node.value === '' ? line : `${line} = ${formatValue(node.value, path)}`);
    for (const child of node.children) write(child, depth + 1, path);
  };
  for (const child of root.children) write(child, 0, '');
  return out.map((line) => `${line}\n`).join('');
}

function checkName(name: string, path: string): string {
  if (name === '') throw new ZplSerializeError('a name cannot be empty', path);
  for (let i = 0; i < name.length; i++) {
    if (!isNameChar(name.charCodeAt(i))) {
      throw new ZplSerializeError(`invalid character ${describeChar(name, i)} in name`, path);
    }
  }
  return name;
}

function formatValue(value: string, path: string): string {
  if (/[\r\n]/.test(value)) {
    throw new ZplSerializeError('a value cannot contain a line break', path);
  }
  // Quoting more often than strictly needed keeps values with spaces readable and safe to edit.
  if (!/[\s#"']/.test(value)) return value;
  if (!value.includes('"')) return `"${value}"`;
  if (!value.includes("'")) return `'${value}'`;
  throw new ZplSerializeError(`a value cannot contain both ' and "`, path);
}

/**
 * Reads and parses a ZPL file. Syntax errors name the file; a file that cannot be read at
 * all gives {@link ZplFileError}.
 *
 * @example
 * ```ts
 * const config = await loadZplFile('config/server-plain.cfg');
 * const heartbeat = Number(config.get('server/heartbeat', '1000'));
 * ```
 */
export async function loadZplFile(path: string): Promise<ZplNode> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ZplFileError(path, err);
  }
  return parseZpl(text, path);
}
