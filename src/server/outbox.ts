/**
 * BATCH=1 (ours, spec/fmq_msg.xml): the messages the server has ready for one client at once go
 * as the frames of one ZeroMQ message. Each message sent alone costs the transport a wake-up of
 * libzmq's I/O thread, a socket write, a read and a wake-up at the other end, and each end a
 * promise: for files of 4 KiB, about 17 system calls of the 30 made per file across the
 * threads of `fmq track` (strace). A batch costs that once.
 *
 * Nothing waits for more: what is queued goes at the next turn of the event loop, or at once
 * when the batch is full ({@link BATCH_BYTES}, {@link BATCH_MESSAGES}). Batches of one client go
 * out one after the other, in order.
 *
 * @packageDocumentation
 */

/** A batch goes once its frames reach this many octets (a frame of that size goes with those before it). */
export const BATCH_BYTES = 256 * 1024

/** A batch goes once it holds this many messages. */
export const BATCH_MESSAGES = 128

/** The messages queued for one client, and the send of the batches before them. */
export class Outbox {
  private frames: Buffer[] = []
  private bytes = 0
  private scheduled = false
  /** The batches handed to `deliver` so far, in order; settles when the last is out. */
  private last: Promise<void> = Promise.resolve()

  /** @param deliver - sends one batch (the frames of its messages); never rejects. */
  constructor(private readonly deliver: (frames: Buffer[]) => Promise<void>) {}

  /**
   * Queues the frame of one message. Resolves at once, or, when this fills the batch, once
   * it is sent (the caller then waits as it would for a single send).
   */
  add(frame: Buffer): Promise<void> | undefined {
    this.frames.push(frame)
    this.bytes += frame.length
    if (this.bytes >= BATCH_BYTES || this.frames.length >= BATCH_MESSAGES) return this.flush()
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => {
        this.scheduled = false
        void this.flush()
      })
    }
    return undefined
  }

  /** Sends what is queued, after the batches before it; settles once all are out. */
  flush(): Promise<void> {
    if (this.frames.length === 0) return this.last
    const frames = this.frames
    this.frames = []
    this.bytes = 0
    this.last = this.last.then(() => this.deliver(frames))
    return this.last
  }

  /** Drops what is queued and not sent (the client is gone or starts over). */
  clear(): void {
    this.frames = []
    this.bytes = 0
  }
}
