// Delivery: what the client keeps so that a session goes on across cuts and
// transport changes with no message lost, duplicated or reordered
// (PROTOCOL.md section 5): the count of server messages received, the client
// messages the server has not acknowledged yet, and when to acknowledge.
// Its members start with _, as every internal name: the build shortens them.

import { type Payload, encoder } from './codec'

/** ackEvery is how many messages a WebSocket receives before it acknowledges them at once (PROTOCOL.md section 5.1). */
export const ackEvery = 64

/**
 * streamAckBytes is how many bytes of messages a stream (sse, streaming)
 * carries before the client acknowledges them through send. Its attach asks
 * for no byte limit (acks=1, PROTOCOL.md section 4.5): these
 * acknowledgements free the server's queue while the response goes on.
 */
export const streamAckBytes = 1 << 18

/** ackQuietMs is the pause in messages that ends a burst, which is acknowledged then (PROTOCOL.md section 5.1). */
const ackQuietMs = 1000

/** payloadBytes returns the size of a message as maxMessageBytes counts it: a string's UTF-8 bytes. */
export const payloadBytes = (m: Payload): number => (typeof m == 'string' ? encoder.encode(m).length : m.length)

/**
 * Delivery is the delivery state of one session, both directions. Messages
 * are numbered by count from 1 in each direction, so nothing per message
 * goes on the wire; a new session starts with a new Delivery. It does no
 * I/O: the session asks it what to send and tells it what arrived.
 */
export class Delivery {
  /** _received is the number of server messages handed to the application. */
  _received = 0
  /** _acked is the number of client messages the server has acknowledged. */
  _acked = 0
  /** _unacked holds the client messages not yet acknowledged, number _acked + 1 first. */
  _unacked: Payload[] = []
  /** _reported is received as of the last acknowledgement sent. */
  private _reported = 0
  /** _unreportedBytes is the size of the messages received since the last acknowledgement went out (a string counts its length). */
  _unreportedBytes = 0
  /** _ackTimer runs the acknowledgement that _ackLater arranged. */
  private _ackTimer?: ReturnType<typeof setTimeout>
  /** _ackBy is when that acknowledgement goes out at the latest, _lastMessage when the last message arrived (Date.now()). */
  private declare _ackBy: number
  private declare _lastMessage: number

  /** _seq is the number of the oldest unacknowledged client message, or of the next one when none is. */
  get _seq(): number {
    return this._acked + 1
  }

  /** _bytes is the size of the unacknowledged client messages (see payloadBytes). */
  get _bytes(): number {
    return this._unacked.reduce((n, m) => n + payloadBytes(m), 0)
  }

  /** _unreported is the number of server messages received since the last acknowledgement went out. */
  get _unreported(): number {
    return this._received - this._reported
  }

  /** _queue adds a client message, numbered _acked + _unacked.length after it. */
  _queue(m: Payload): void {
    this._unacked.push(m)
  }

  /**
   * _keepUnsent drops the queued client messages for which keep returns
   * false. Only before any was sent in the session: the numbers of those
   * after a dropped one change.
   */
  _keepUnsent(keep: (m: Payload) => boolean): void {
    this._unacked = this._unacked.filter(keep)
  }

  /** _from returns the unacknowledged client messages numbered seq and after. */
  _from(seq: number): Payload[] {
    return this._unacked.slice(Math.max(0, seq - this._seq))
  }

  /** _acknowledge drops the client messages up to number n, which the server has acknowledged. */
  _acknowledge(n: number): void {
    for (; this._acked < n && this._unacked.length; this._acked++) this._unacked.shift()
  }

  /**
   * _isNew counts a server message that a connection carried as its number
   * n (a connection counts from the received count its attach stated) and
   * reports whether it is new: one numbered at most _received was handed to
   * the application already, from an earlier connection. size is the
   * message's size, for _unreportedBytes.
   */
  _isNew(n: number, size: number): boolean {
    if (n <= this._received) return false
    this._received++
    this._unreportedBytes += size
    return true
  }

  /**
   * _ackLater, called for each message received, arranges for ack to run at
   * the end of the burst: once ackQuietMs passes without a message, but at
   * the latest latestMs after the first message left unacknowledged; unless
   * an acknowledgement goes out first. One timer per burst, not per message.
   */
  _ackLater(ack: () => void, latestMs: number): void {
    const now = (this._lastMessage = Date.now())
    if (this._ackTimer) return
    this._ackBy = now + latestMs
    const tick = () => {
      const wait = Math.min(this._lastMessage + ackQuietMs, this._ackBy) - Date.now()
      if (wait > 0) this._ackTimer = setTimeout(tick, wait)
      else {
        this._ackTimer = undefined
        ack()
      }
    }
    this._ackTimer = setTimeout(tick, ackQuietMs)
  }

  /** _cancelAck cancels what _ackLater arranged. */
  _cancelAck(): void {
    clearTimeout(this._ackTimer)
    this._ackTimer = undefined
  }

  /** _acknowledging records that an acknowledgement goes out now and returns the count it states: _received. */
  _acknowledging(): number {
    this._unreportedBytes = 0
    return (this._reported = this._received)
  }
}
