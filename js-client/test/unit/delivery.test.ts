import { mock, test } from 'node:test'
import assert from 'node:assert/strict'
import { Delivery, payloadBytes } from '../../src/delivery'

test('client messages stay until acknowledged, numbered from 1', () => {
  const d = new Delivery()
  assert.equal(d._seq, 1)
  d._queue('one')
  d._queue(new Uint8Array([1, 2]))
  d._queue('three')
  assert.equal(d._bytes, 3 + 2 + 5)
  assert.deepEqual(d._from(1), ['one', new Uint8Array([1, 2]), 'three'])
  assert.deepEqual(d._from(3), ['three'])
  assert.deepEqual(d._from(4), [])
  d._acknowledge(2)
  assert.equal(d._acked, 2)
  assert.equal(d._seq, 3)
  assert.deepEqual(d._unacked, ['three'])
  // Numbers before the oldest kept one give what is kept: the server drops duplicates.
  assert.deepEqual(d._from(1), ['three'])
  // An acknowledgement already seen, or of more than was sent, changes nothing more.
  d._acknowledge(1)
  d._acknowledge(10)
  assert.equal(d._acked, 3)
  assert.deepEqual(d._unacked, [])
  assert.equal(d._bytes, 0)
  d._queue('four')
  assert.equal(d._seq, 4)
  assert.deepEqual(d._from(4), ['four'])
})

test('a server message is new once, whichever connection carries it', () => {
  const d = new Delivery()
  // A connection attached with received 0 carries messages 1, 2, 3.
  assert.deepEqual([1, 2, 3].map((n) => d._isNew(n, 1)), [true, true, true])
  assert.equal(d._received, 3)
  // The next one attached with received 2 (its attach crossed message 3):
  // it carries 3 again, then 4.
  assert.deepEqual([3, 4].map((n) => d._isNew(n, 1)), [false, true])
  assert.equal(d._received, 4)
})

test('acknowledgements: what is unreported, and one timer per burst', () => {
  const d = new Delivery()
  for (let n = 1; n <= 5; n++) d._isNew(n, 10)
  assert.equal(d._unreported, 5)
  assert.equal(d._unreportedBytes, 50)
  // A duplicate counts for nothing.
  d._isNew(5, 10)
  assert.equal(d._unreportedBytes, 50)
  assert.equal(d._acknowledging(), 5)
  assert.equal(d._unreported, 0)
  assert.equal(d._unreportedBytes, 0)
  d._isNew(6, 64)
  assert.equal(d._unreported, 1)
  assert.equal(d._unreportedBytes, 64)

  mock.timers.enable({ apis: ['setTimeout', 'Date'] })
  try {
    let acks = 0
    const ack = () => {
      acks++
      d._cancelAck()
    }
    d._ackLater(ack, 25000)
    mock.timers.tick(999)
    assert.equal(acks, 0)
    mock.timers.tick(1)
    assert.equal(acks, 1)
    d._ackLater(ack, 25000)
    d._cancelAck()
    mock.timers.tick(5000)
    assert.equal(acks, 1)
    // A burst of messages 500 ms apart is acknowledged once, 1 s after its last message.
    for (let i = 0; i < 5; i++) {
      d._ackLater(ack, 25000) // arranged once: not once per message
      mock.timers.tick(500)
    }
    assert.equal(acks, 1)
    mock.timers.tick(499)
    assert.equal(acks, 1)
    mock.timers.tick(1)
    assert.equal(acks, 2)
    // A burst that never pauses is acknowledged latestMs after its first message.
    for (let i = 0; i < 10; i++) {
      d._ackLater(ack, 3000)
      mock.timers.tick(500)
    }
    assert.equal(acks, 3) // 3 s after its first message
    mock.timers.tick(500)
    assert.equal(acks, 4) // the rest, 1 s after the last message
  } finally {
    mock.timers.reset()
  }
})

test('messages queued before any was sent can be dropped; the rest keep their order', () => {
  const d = new Delivery()
  for (const m of ['a', 'bb', 'ccc', 'dd']) d._queue(m)
  d._keepUnsent((m) => payloadBytes(m) < 3)
  assert.deepEqual(d._unacked, ['a', 'bb', 'dd'])
  assert.deepEqual(d._from(3), ['dd'])
})

test('payloadBytes counts UTF-8 bytes, as maxMessageBytes does', () => {
  assert.equal(payloadBytes(''), 0)
  assert.equal(payloadBytes('abc'), 3)
  assert.equal(payloadBytes('\u00e9'), 2)
  assert.equal(payloadBytes('\u20ac'), 3)
  assert.equal(payloadBytes('\u{1f600}'), 4)
  assert.equal(payloadBytes(new Uint8Array(7)), 7)
})
