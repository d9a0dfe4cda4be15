/**
 * The status pages in a real browser: `fmq server -c <PLAIN config> --http 127.0.0.1:0` and
 * `fmq client --http` as real processes, one client mirroring 40 files at a paced rate
 * (--bwlimit), and Debian's Chromium (headless, driven by puppeteer-core) on each page: the
 * server's lists the client's login and the mount, the numbers move while the transfer runs,
 * the client's lists the server; the password is nowhere in the DOM. `.ci/run` installs
 * Chromium; without it the test is skipped, saying so.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import puppeteer, { type Browser, type Page } from 'puppeteer-core'

import { writePlainConfig } from '../fixtures/plain-config.js'
import { write } from '../fixtures/tree.js'
import { type FmqProcess, FmqProcesses } from '../peers/fmq-process.js'

/** The little of the DOM the functions run in the page use (the project compiles without lib dom). */
declare const document: { querySelector(selector: string): { textContent: string | null } | null; body: { innerText: string } }

/** The sample's PLAIN account reader, with a password that cannot be mistaken for the login. */
const PASSWORD = 'S3cret-page-pass'
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path))
const FILES = 40
const TREE: Record<string, Buffer> = {}
for (let i = 0; i < FILES; i++) TREE[`photos/p${String(i).padStart(2, '0')}.jpg`] = Buffer.alloc(100_000, i)
const TREE_SIZE = FILES * 100_000

/** The number in an element's text (`sent 1.2 MiB` → octets; `12 files sent` → 12). */
const number = (page: Page, selector: string): Promise<number> =>
  page.$eval(selector, (element) => {
    const match = /([0-9.]+)\s*(B|KiB|MiB|GiB)?/.exec(element.textContent ?? '')
    if (match === null) return NaN
    const scale = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[match[2] ?? 'B'] ?? 1
    return Number(match[1]) * scale
  })

/** Waits until an element's text matches, failing with the text it had. Polled: a page in a background tab gets no animation frames. */
async function waitForText(page: Page, selector: string, pattern: RegExp, ms = 20_000): Promise<void> {
  try {
    await page.waitForFunction((sel: string, source: string, flags: string) => new RegExp(source, flags).test(document.querySelector(sel)?.textContent ?? ''), { timeout: ms, polling: 100 }, selector, pattern.source, pattern.flags)
  } catch (error) {
    const text = await page.$eval(selector, (element) => element.textContent).catch(() => '(no such element)')
    throw new Error(`${selector} never matched ${pattern} within ${ms} ms; it says ${JSON.stringify(text)}`, { cause: error })
  }
}

describe('the status page in headless Chromium', { skip: CHROMIUM === undefined ? 'no chromium installed (apt-get install chromium; .ci/run does)' : false }, () => {
  let dir: string
  let config: string
  let browser: Browser
  const processes = new FmqProcesses()

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-page-'))
    await write(join(dir, 'send'), TREE)
    await write(join(dir, 'logs'), { 'today.log': 'one line\n' })
    config = join(dir, 'server.cfg')
    await writePlainConfig(config, { send: join(dir, 'send'), logs: join(dir, 'logs') }, PASSWORD)
    await writeFile(join(dir, 'password'), `${PASSWORD}\n`)
    browser = await puppeteer.launch({
      executablePath: CHROMIUM!,
      headless: true,
      // Root cannot use Chromium's sandbox (the pages are our own); a container's /dev/shm may be too small for it.
      args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-dev-shm-usage'],
    })
  })

  after(async () => {
    await browser?.close()
    await processes.killAll()
    await rm(dir, { recursive: true, force: true })
  })

  const start = (args: string[]): FmqProcess => processes.start(args)
  const url = async (child: FmqProcess): Promise<string> => (await child.waitFor((line) => line.type === 'http', 20_000, 'the status page URL')).url as string

  test('the server page lists the client and the mount, its numbers move during a paced transfer, no password in the DOM', async () => {
    const server = start(['server', '-c', config, '--http', '127.0.0.1:0'])
    const endpoint = await server.endpoint()
    const serverPage = await browser.newPage()
    await serverPage.goto(await url(server))
    await waitForText(serverPage, '#mounts', /\/logs/)
    assert.match(await serverPage.$eval('#mounts', (table) => table.textContent ?? ''), /40/)
    assert.equal(await number(serverPage, '#files-published'), FILES + 1)

    // 4 MB at 500 kB/s: some 8 s of transfer for the page (polling every second) to show moving.
    const client = start(['client', '-C', endpoint, '-i', join(dir, 'inbox'), '--resync', '--login', 'reader', '--password-file', join(dir, 'password'), '--bwlimit', '500k', '--http', '127.0.0.1:0'])
    const clientUrl = await url(client)
    await waitForText(serverPage, '#clients tbody', /reader/)
    // The numbers move: some octets sent, then more, before the end.
    await waitForText(serverPage, '#bytes-sent', /sent [1-9]/, 30_000)
    const first = await number(serverPage, '#bytes-sent')
    assert.ok(first < TREE_SIZE, `the transfer is paced: ${first} octets of ${TREE_SIZE} at the first look`)
    await serverPage.waitForFunction((before: string) => (document.querySelector('#bytes-sent')?.textContent ?? before) !== before, { timeout: 30_000, polling: 100 }, await serverPage.$eval('#bytes-sent', (element) => element.textContent ?? ''))
    assert.ok((await number(serverPage, '#bytes-sent')) > first, 'more octets sent a moment later')

    const clientPage = await browser.newPage()
    await clientPage.goto(clientUrl)
    await clientPage.waitForFunction((expected: string) => document.querySelector('#servers tbody')?.textContent?.includes(expected) === true, { timeout: 20_000, polling: 100 }, endpoint)
    assert.match(await clientPage.$eval('#servers tbody', (table) => table.textContent ?? ''), /connected/)

    const delivered = (): number => client.lines.filter((line) => line.type === 'delivered').length
    await client.waitFor(() => delivered() === FILES + 1, 60_000, 'the whole tree delivered')
    await waitForText(serverPage, '#files-sent', /^41 files sent$/)
    await waitForText(clientPage, '#files-delivered', /^41 files delivered$/)
    assert.match(await clientPage.$eval('#deliveries', (table) => table.textContent ?? ''), /\/photos\/p\d\d\.jpg/)

    for (const page of [serverPage, clientPage]) {
      const dom = await page.content()
      const text = await page.evaluate(() => document.body.innerText)
      for (const secret of [PASSWORD, 'argon2']) {
        assert.ok(!dom.includes(secret) && !text.includes(secret), `${secret} in the DOM`)
      }
    }
    const status = await (await fetch(new URL('api/status', await url(server)))).text()
    assert.ok(!status.includes(PASSWORD) && !status.includes('argon2'), 'no password or hash in /api/status')
  })
})
