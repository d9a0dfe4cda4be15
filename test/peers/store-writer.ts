/**
 * A child process for the store's kill -9 test: writes transactions to the node database of
 * the state directory argv[2], in a loop, and prints "committed N" after each commit (stdout
 * to a pipe is synchronous on POSIX, so a printed line means a committed transaction).
 * Transaction N inserts ROWS rows of server_files with size = N and a 32 KiB blob each, so a
 * kill lands in the middle of a write as often as between two.
 */
import { randomBytes } from 'node:crypto'
import { openStore } from '../../src/store/database.js'

const ROWS = 8

const db = openStore(process.argv[2]!)
const insert = db.prepare(
  `INSERT INTO server_files (vpath, physical, size, mtime_ms, ino, sha1, blocks) VALUES (?, 'x', ?, 0, ?, 'x', ?)`,
)
const write = db.transaction((n: number) => {
  for (let i = 0; i < ROWS; i++) insert.run(`/t/${n}/${i}`, n, i, randomBytes(32 * 1024))
})
let n = ((db.prepare('SELECT max(size) FROM server_files').pluck().get() as number | null) ?? 0) + 1
process.stdout.write('ready\n')
for (;;) {
  write(n)
  process.stdout.write(`committed ${n}\n`)
  n++
}
