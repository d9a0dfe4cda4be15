/**
 * A subscription that matches nothing published (UNMATCHED=1, ours): `fmq client`, a real
 * child process against `fmq server`, warns naming the path and what the server publishes;
 * with `--once` it exits 2 after its summary; a path that matches, even an empty published
 * folder, is no warning.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { write } from '../fixtures/tree.js'
import { FmqProcess } from '../peers/fmq-process.js'

describe('a subscription that matches nothing', () => {
  let dir: string
  let endpoint: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-cli-unmatched-'))
    await write(join(dir, 'photos'), { 'a.jpg': 'jpeg\n' })
    await mkdir(join(dir, 'empty'))
    const server = new FmqProcess(['server', '-p', `${join(dir, 'photos')}=/photos`, '-p', `${join(dir, 'empty')}=/empty`, '-b', 'tcp://127.0.0.1:*'])
    closers.push(() => server.kill())
    endpoint = await server.endpoint()
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  function client(inbox: string, args: string[], json = true): FmqProcess {
    const child = new FmqProcess(['client', '-C', endpoint, '-i', join(dir, inbox), '--resync', ...args], { json })
    closers.push(() => child.kill())
    return child
  }

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
    }
  })
})
