import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  type Frame,
  bytesFrame,
  closeFrame,
  encodeBatch,
  encodeFrame,
  encoder,
  indexOf,
  parseBatch,
  parseClose,
  parseCompact,
  textFrame,
} from '../../src/codec'

const bytes = (s: string) => encoder.encode(s)

const all = (p: Uint8Array, from = 0): [Frame[], number] => {
  const fs: Frame[] = []
  const i = parseBatch(p, from, (f) => (fs.push(f), true))
  return [fs, i]
}

test('textFrame decodes every frame type', () => {
  const cases: [string, Frame][] = [
    ['mhello', ['m', 'hello']],
    ['m', ['m', '']],
    ['M' + btoa('two\nlines'), ['m', 'two\nlines']],
    ['M' + Buffer.from('h\u00e9\u{1F600}').toString('base64'), ['m', 'h\u00e9\u{1F600}']],
    ['M77u/eA==', ['m', '\uFEFFx']],
    ['B' + Buffer.from([0, 255, 10]).toString('base64'), ['b', new Uint8Array([0, 255, 10])]],
    ['a0', ['a', '0']],
    ['a17', ['a', '17']],
    ['h', ['h', '']],
    ['c1000 bye', ['c', '1000 bye']],
  ]
  for (const [in_, want] of cases) assert.deepEqual(textFrame(in_), want, `textFrame(${JSON.stringify(in_)})`)
})

test('textFrame rejects malformed frames', () => {
  for (const bad of ['', 'x', 'a', 'a01', 'a-1', 'a1.5', 'h\r', 'Bnot base64!']) {
    assert.throws(() => textFrame(bad), `textFrame(${JSON.stringify(bad)}) did not throw`)
  }
})

test('bytesFrame keeps binary payloads raw', () => {
  const f = bytesFrame(new Uint8Array([98, 0, 1, 2, 109]))
  assert.deepEqual(f, ['b', new Uint8Array([0, 1, 2, 109])])
  assert.equal((f[1] as Uint8Array).buffer.byteLength, 4, 'payload owns an exact buffer')
  assert.deepEqual(bytesFrame(bytes('mh\u00e9')), ['m', 'h\u00e9'])
})

test('parseClose splits code and reason', () => {
  assert.deepEqual(parseClose('1000'), [1000, ''])
  assert.deepEqual(parseClose('4100 app said no'), [4100, 'app said no'])
  assert.deepEqual(parseClose('1001 '), [1001, ''])
  for (const bad of ['', 'x', '999', '5000 x']) assert.throws(() => parseClose(bad), bad)
})

test('parseBatch reads a batch of three frames', () => {
  // PROTOCOL.md 4.1's example, with the heartbeat's length as 1.
  const p = bytes('6:mhello3:a121:h')
  assert.deepEqual(all(p), [
    [
      ['m', 'hello'],
      ['a', '12'],
      ['h', ''],
    ],
    p.length,
  ])
  assert.deepEqual(all(new Uint8Array()), [[], 0])
})

test('parseBatch stops at incomplete frames and at bytes that start none', () => {
  const p = bytes('6:mhello3:a1')
  assert.deepEqual(all(p), [[['m', 'hello']], 8])
  assert.deepEqual(all(bytes('6:mhello12')), [[['m', 'hello']], 8])
  assert.deepEqual(all(bytes('9:mhello')), [[], 0], 'a frame longer than the batch waits for more')
  assert.deepEqual(all(bytes('1:h\r\n--x')), [[['h', '']], 3])
})

test('parseBatch stops when the handler says so', () => {
  let n = 0
  assert.equal(
    parseBatch(bytes('1:h1:h1:h'), 0, () => ++n < 2),
    -1,
  )
  assert.equal(n, 2)
})

test('parseBatch rejects malformed length prefixes', () => {
  for (const bad of ['0:', '06:mhello', '6;mhello', '12345678901:m', '1:x', '2:h\r']) {
    assert.throws(() => all(bytes(bad)), bad)
  }
})

test('encodeBatch round-trips through parseBatch', () => {
  const bin = new Uint8Array(300).map((_, i) => i)
  const b = encodeBatch([encodeFrame('hello'), encodeFrame(''), encodeFrame(bin), encodeFrame('h\u00e9'), bytes(closeFrame(1000, 'done'))])
  assert.equal(Buffer.from(b.subarray(0, 14)).toString(), '6:mhello1:m301')
  assert.deepEqual(all(b), [
    [
      ['m', 'hello'],
      ['m', ''],
      ['b', bin],
      ['m', 'h\u00e9'],
      ['c', '1000 done'],
    ],
    b.length,
  ])
})

test('closeFrame omits an empty reason', () => {
  assert.equal(closeFrame(1000, ''), 'c1000')
  assert.equal(closeFrame(4100, 'x y'), 'c4100 x y')
})

test('indexOf finds byte patterns', () => {
  const p = bytes('ab\r\n--b\r\n\r\nxy')
  assert.equal(indexOf(p, bytes('--b'), 0), 4)
  assert.equal(indexOf(p, bytes('\r\n\r\n'), 4), 7)
  assert.equal(indexOf(p, bytes('--b'), 5), -1)
  assert.equal(indexOf(p, bytes('xyz'), 0), -1)
})

const allCompact = (p: Uint8Array, from = 0): [Frame[], number] => {
  const fs: Frame[] = []
  const i = parseCompact(p, from, (f) => (fs.push(f), true))
  return [fs, i]
}

test('parseCompact reads frames after LEB128 lengths', () => {
  const long = 'x'.repeat(200)
  const p = new Uint8Array([6, ...bytes('mhello'), 1, 104, 0xc9, 0x01, ...bytes('m' + long), 4, 98, 0, 1, 255])
  assert.deepEqual(allCompact(p), [
    [
      ['m', 'hello'],
      ['h', ''],
      ['m', long],
      ['b', new Uint8Array([0, 1, 255])],
    ],
    p.length,
  ])
  assert.deepEqual(allCompact(new Uint8Array()), [[], 0])
})

test('parseCompact reads text batches, ASCII or not, as it reads each frame', () => {
  const frames = ['mhello', 'a12', 'h', 'mh\u00e9 \u{1F600}', 'c1000 bye', 'M' + btoa('two\nlines')]
  const compactOf = (fs: string[]) => new Uint8Array(fs.flatMap((f) => [bytes(f).length, ...bytes(f)]))
  const want: Frame[] = [['m', 'hello'], ['a', '12'], ['h', ''], ['m', 'h\u00e9 \u{1F600}'], ['c', '1000 bye'], ['m', 'two\nlines']]
  // All ASCII but the fourth frame; without it, and with it.
  const ascii = frames.filter((_, k) => k != 3)
  const p = compactOf(ascii)
  assert.deepEqual(allCompact(p), [want.filter((_, k) => k != 3), p.length])
  const q = compactOf(frames)
  assert.deepEqual(allCompact(q), [want, q.length])
  // From an offset, with an incomplete frame after the complete ones.
  const r = new Uint8Array([7, ...p, 6, 109])
  assert.deepEqual(allCompact(r, 1), [want.filter((_, k) => k != 3), 1 + p.length])
  // fn returning false stops at once.
  let n = 0
  assert.equal(parseCompact(p, 0, () => ++n < 2), -1)
  assert.equal(n, 2)
})

test('parseCompact stops at incomplete frames and lengths', () => {
  assert.deepEqual(allCompact(new Uint8Array([1, 104, 6, 109])), [[['h', '']], 2])
  assert.deepEqual(allCompact(new Uint8Array([1, 104, 0x80])), [[['h', '']], 2])
})

test('parseCompact rejects malformed lengths', () => {
  for (const bad of [[0], [0x80, 0, 104], [0x80, 0x80, 0x80, 0x80, 0x80, 1], [1, 120]]) {
    assert.throws(() => allCompact(new Uint8Array(bad)), JSON.stringify(bad))
  }
})
