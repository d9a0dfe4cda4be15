/**
 * Where a published file's content is read from (src/server/publisher.ts): a scanned file that
 * is its own content keeps no physical path of its own (MountedFile makes it when asked), a
 * portable link keeps its target's. Either way it is the path the scan found, for a mount at
 * the root and one below it, odd names included.
 */
import assert from 'node:assert/strict'
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { scanMount } from '../../src/fs/scan.js'
import { Publisher } from '../../src/server/publisher.js'
import { write } from '../fixtures/tree.js'

describe('publisher: the physical path of a published file', () => {
  let base: string

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'fmq-published-paths-'))
    await write(base, {
      'top.txt': 'top',
      'a/b/deep.txt': 'deep',
      'a/line\nbreak\ttab\\ é 🎉.txt': 'odd',
      'a/ leading space': 'space',
      'target.bin': 'linked content',
    })
    // A portable link: published as `link`, its content read from target.bin.
    await writeFile(join(base, 'link.ln'), join(base, 'target.bin'))
  })

  after(async () => {
    await rm(base, { recursive: true, force: true })
  })

  for (const virtualRoot of ['/', '/mounted/here']) {
    test(`mounted at ${virtualRoot}: each file's physical path is the one the scan found, and its content opens`, async () => {
      const publisher = new Publisher({ settle: 50, followOutside: false, watch: false })
      try {
        await publisher.publish(base, virtualRoot)
        let seen = 0
        for await (const found of scanMount(base)) {
          const virtualPath = `${virtualRoot === '/' ? '' : virtualRoot}/${found.relativePath}`
          const published = publisher.get(virtualPath)
          assert.ok(published !== undefined, `${virtualPath} is published`)
          assert.equal(published.physicalPath, found.contentPath, virtualPath)
          assert.equal(await readFile(published.physicalPath, 'utf8'), await readFile(found.contentPath, 'utf8'))
          seen++
        }
        assert.equal(seen, 6)
        assert.equal(publisher.get(`${virtualRoot === '/' ? '' : virtualRoot}/link`)?.physicalPath, join(base, 'target.bin'))
      } finally {
        await publisher.close()
      }
    })
  }
})
