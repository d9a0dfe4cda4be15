/**
 * A crowd of clients in a child process, for tests of a server under hostile load: opens
 * argv[3] connections to argv[2], each says OHAI (version 2) and then nothing more. Prints
 * "ready <n>" once every one has had its answer, and stays silent until killed.
 */
import { context, Dealer } from 'zeromq'
import { codecs } from '../../src/protocol/generated/fmq_codecs.js'
import { MessageId } from '../../src/protocol/generated/fmq_msg.js'

const [endpoint, count] = process.argv.slice(2)
const total = Number(count)
// Each connection is a socket here; libzmq's default allows 1,023 per context.
context.maxSockets = total + 16
const sockets: Dealer[] = []
for (let i = 0; i < total; i++) {
  const socket = new Dealer({ linger: 0 })
  socket.connect(endpoint!)
  await socket.send(codecs[2].encode({ id: MessageId.OHAI }))
  sockets.push(socket)
}
await Promise.all(sockets.map((socket) => socket.receive()))
console.log(`ready ${sockets.length}`)
// Nothing more: each socket keeps its connection open and says nothing.
process.on('SIGTERM', () => {
  for (const socket of sockets) socket.close()
  process.exit(0)
})
