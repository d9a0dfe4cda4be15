/**
 * A subscription that matches nothing published (UNMATCHED=1, ours): `fmq client`, a real
 * child process against `fmq server`, warns naming the path and what the server publishes;
 * with `--once` it exits 2 after its summary; a path that matches, even an empty published
 * folder, is no warning.
 */
import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { write } from '../fixtures/tree.js'
import type { FmqProcess } from '../peers/fmq-process.js'
import { scratch } from '../fixtures/scratch.js'

describe('a subscription that matches nothing', () => {
  const scratchpad = scratch('cli-unmatched')
  let endpoint: string
  before(async () => {
    const { dir } = scratchpad
    await write(join(dir, 'photos'), { 'a.jpg': 'jpeg\n' })
    await mkdir(join(dir, 'empty'))
    endpoint = await scratchpad.fmq(['server', '-p', `${join(dir, 'photos')}=/photos`, '-p', `${join(dir, 'empty')}=/empty`, '-b', 'tcp://127.0.0.1:*']).endpoint()
  })

  const client = (inbox: string, args: string[], json = true): FmqProcess =>
    scratchpad.fmq(['client', '-C', endpoint, '-i', join(scratchpad.dir, inbox), '--resync', ...args], { json })

  test('--once: a warning naming the path and what is published, then exit 2', async () => {
    const json = client('in-json', ['-s', '/fotos', '--once'])
    assert.equal(await json.exited, 2)
    const event = json.lines.find((line) => line.type === 'unmatched')
    assert.deepEqual(event?.path, '/fotos')
    assert.deepEqual([...(event?.published as string[])].sort(), ['/empty', '/photos'])
    assert.match(json.stderr.join('\n'), /nothing published matches \/fotos/)

    const text = client('in-text', ['-s', '/fotos', '--once'], false)
    assert.equal(await text.exited, 2)
    assert.ok(text.stderr.some((line) => /^fmq: warning: subscription \/fotos matches nothing published on tcp:\/\/127\.0\.0\.1:\d+ \(it publishes (\/photos, \/empty|\/empty, \/photos)\)$/.test(line)), text.stderr.join(' | '))
  })

  test('a path that matches, and an empty published folder, are no warning', async () => {
    for (const path of ['/photos', '/photos/a.jpg', '/empty', '/']) {
      const child = client(`in-${path.replace(/\W/g, '_')}`, ['-s', path, '--once'])
      assert.equal(await child.exited, 0, `${path}: ${child.stderr.join(' | ')}`)
      assert.ok(!child.lines.some((line) => line.type === 'unmatched'), path)
      // fmq client --once ends with its summary too.
      const summary = child.lines.find((line) => line.type === 'summary')
      assert.equal(summary?.files, path === '/empty' ? 0 : 1, path)
    }
  })
})
