import { test } from 'node:test'
import { type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import assert from 'node:assert/strict'
import type { Heartbeat } from '../../src/heartbeat'
import { MessageTooBigError, Tether, type TetherCloseEvent, type TetherErrorEvent, type TetherMessageEvent } from '../../src/tether'
import { fake } from './fake'

// The real fetch, for the tests against a local HTTP server; the others use the fake's.
const realFetch = globalThis.fetch

// Every test is bounded: node --test runs this file with a timeout, and each
// wait below has its own.
const until = async (what: string, cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const client = (f: ReturnType<typeof fake>, options = {}) => {
  globalThis.fetch = f.fetch
  const t = new Tether('http://127.0.0.1:1/rt', { minDelay: 5, maxDelay: 20, timeout: 300, ...options })
  const got: (string | ArrayBuffer)[] = []
  const events: string[] = []
  let closed: TetherCloseEvent | undefined
  t.binaryType = 'arraybuffer'
  t.onmessage = (e: TetherMessageEvent) => got.push(e.data as string | ArrayBuffer)
  for (const type of ['open', 'resuming', 'resumed', 'reconnecting', 'transport', 'error']) t.addEventListener(type, () => events.push(type))
  t.onclose = (e) => {
    events.push('close')
    closed = e
  }
  return { t, got, events, closed: () => closed }
}

test('without upgrade the transports are tried one after another', async () => {
  const f = fake(['websocket', 'sse', 'streaming', 'longpoll'])
  ;(globalThis as any).WebSocket = class {
    onclose?: () => void
    constructor() {
      setTimeout(() => this.onclose?.())
    }
    close() {}
  }
  f.fault = (path) => {
    if (path == 'sse') return new Response(new ReadableStream({ pull: () => new Promise(() => {}) }), { headers: { 'content-type': 'text/event-stream' } })
    if (path == 'streaming') return new Response('bad gateway', { status: 502 })
  }
  try {
    const { t, events } = client(f, { upgrade: false })
    await until('open', () => t.readyState == Tether.OPEN)
    assert.equal(t.transport, 'longpoll')
    assert.deepEqual(f.log.filter((l) => !l.startsWith('POST send')).slice(0, 4), ['POST negotiate', 'GET sse', 'GET streaming', 'GET longpoll'])
    assert.deepEqual(events, ['error', 'error', 'error', 'open'])
    t.close()
  } finally {
    delete (globalThis as any).WebSocket
  }
})

test('long polling opens only once a request was answered', async () => {
  const f = fake(['longpoll'], 1000, 400)
  // The server is unreachable: no open, an error per attempt, then 4004.
  f.fault = (path) => (path != 'negotiate' ? new TypeError('network down') : undefined)
  const { t, events, closed } = client(f)
  await until('close', () => !!closed())
  assert.equal(closed()!.code, 4004)
  assert.ok(!events.includes('open'), 'no open: ' + events)
  assert.equal(events.at(-1), 'close')
  assert.ok(events.filter((e) => e == 'error').length >= 2, 'an error per attempt: ' + events)
  t.close()
})

test('a send answered 404 without a close frame ends the session with 4005', async () => {
  const f = fake()
  f.fault = (path, _q, count) => (path == 'send' && count > 1 ? new Response('unknown session', { status: 404 }) : undefined)
  const { t, events, closed } = client(f)
  await until('open', () => t.readyState == Tether.OPEN)
  t.send('lost in a server that does not know the session')
  await until('close', () => !!closed())
  assert.deepEqual([closed()!.code, closed()!.reason, closed()!.wasClean], [4005, 'session unknown', false])
  assert.deepEqual(events, ['open', 'error', 'error', 'close'])
})

test('close() ends in a close event even when nothing answers', async () => {
  const f = fake()
  const { t, closed } = client(f)
  await until('open', () => t.readyState == Tether.OPEN)
  let hang = false
  f.fault = (path) => {
    if (path == 'send') {
      hang = true
      return 'hang'
    }
  }
  t.close(4100, 'bye')
  await until('close', () => !!closed())
  assert.ok(hang)
  assert.deepEqual([closed()!.code, closed()!.reason, closed()!.wasClean], [4100, 'bye', false])
})

test('long polling delivers text and binary in order', async () => {
  const f = fake()
  const { t, got, events } = client(f)
  await until('open', () => t.readyState == Tether.OPEN)
  assert.equal(t.transport, 'longpoll')
  assert.equal(t.session, 'S1')
  f.send('one')
  f.send(new Uint8Array([0, 1, 255]))
  f.send('three\nlines')
  await until('3 messages', () => got.length == 3)
  assert.deepEqual(got.slice(0, 1), ['one'])
  assert.deepEqual(new Uint8Array(got[1] as ArrayBuffer), new Uint8Array([0, 1, 255]))
  assert.equal(got[2], 'three\nlines')
  t.close()
  await until('close', () => t.readyState == Tether.CLOSED)
  assert.deepEqual(events, ['open', 'close'])
})

test('the token: in a Tether-Token header on same-origin requests, in the URL on cross-origin ones (PROTOCOL.md section 3)', async () => {
  for (const origin of ['http://127.0.0.1:1', 'http://elsewhere.example']) {
    const f = fake(['sse', 'longpoll'])
    const seen: string[] = []
    const fetch = f.fetch
    f.fetch = (async (input: string | URL, init: RequestInit = {}) => {
      const u = new URL(input)
      const header = (init.headers as Record<string, string> | undefined)?.['Tether-Token']
      if (!u.pathname.endsWith('negotiate')) seen.push(`${u.pathname.slice(4)} ${u.searchParams.get('token') ?? '-'} ${header ?? '-'}`)
      return fetch(input, init)
    }) as typeof globalThis.fetch
    ;(globalThis as any).location = { origin, href: origin + '/' }
    try {
      const { t, got } = client(f)
      await until('open', () => t.readyState == Tether.OPEN)
      t.send('up')
      f.send('down')
      await until('a message each way', () => got.length == 1 && f.in.length == 1)
      t.close()
      await until('close', () => t.readyState == Tether.CLOSED)
    } finally {
      delete (globalThis as any).location
    }
    const want = origin == 'http://127.0.0.1:1' ? '- T1' : 'T1 -'
    assert.ok(seen.length >= 3 && seen.some((r) => r.startsWith('send ')), 'requests: ' + seen)
    for (const r of seen) assert.equal(r.slice(r.indexOf(' ') + 1), want, origin + ': ' + r)
  }
})

test('null options mean the defaults', async () => {
  const f = fake()
  globalThis.fetch = f.fetch
  const t = new Tether('http://127.0.0.1:1/rt', null)
  await until('open', () => t.readyState == Tether.OPEN)
  assert.equal(t.transport, 'longpoll')
  t.close()
  await until('close', () => t.readyState == Tether.CLOSED)
})

test('fast connect: long polling at once, then a refused WebSocket, a buffered stream and a failing stream are probed', async () => {
  const f = fake(['websocket', 'sse', 'streaming', 'longpoll'])
  // WebSocket refused: the handshake fails at once, as behind a proxy that strips Upgrade.
  ;(globalThis as any).WebSocket = class {
    onclose?: () => void
    constructor() {
      setTimeout(() => this.onclose?.())
    }
    close() {}
  }
  f.fault = (path) => {
    // sse: headers, then nothing, as through a buffering proxy.
    if (path == 'sse') return new Response(new ReadableStream({ pull: () => new Promise(() => {}) }), { headers: { 'content-type': 'text/event-stream' } })
    if (path == 'streaming') return new Response('bad gateway', { status: 502 })
  }
  try {
    const { t, events } = client(f)
    const errors: [string, string, number][] = []
    t.onerror = (e) => errors.push([e.request!, e.transport!, e.status!])
    await until('open', () => t.readyState == Tether.OPEN)
    assert.equal(t.transport, 'longpoll')
    await until('three failed probes', () => errors.length == 3)
    assert.deepEqual(f.log.filter((l) => !l.startsWith('POST send') && l != 'GET longpoll'), ['POST negotiate', 'GET sse', 'GET streaming'])
    assert.deepEqual(errors, [
      ['attach', 'websocket', 0],
      ['probe', 'sse', 200],
      ['probe', 'streaming', 502],
    ])
    assert.deepEqual(events, ['open', 'error', 'error', 'error'])
    assert.equal(t.transport, 'longpoll')
    t.close()
  } finally {
    delete (globalThis as any).WebSocket
  }
})

test('resume after cut polls and truncated bodies: every message exactly once, in order', async () => {
  const f = fake()
  const n = 200
  f.fault = (path, _q, count) => {
    if (path != 'longpoll') return
    if (count % 3 == 0) return new TypeError('network error')
    // A batch cut by a proxy: the client must not count the partial frame.
    if (count % 5 == 0) return 'truncate'
  }
  const { t, got, events } = client(f)
  await until('open', () => t.readyState == Tether.OPEN)
  for (let i = 1; i <= n; i++) {
    f.send('m' + i)
    if (i % 10 == 0) await new Promise((r) => setTimeout(r, 1))
  }
  await until(n + ' messages', () => got.length >= n, 15000)
  await new Promise((r) => setTimeout(r, 50))
  assert.deepEqual(
    got,
    Array.from({ length: n }, (_, i) => 'm' + (i + 1)),
  )
  assert.ok(events.includes('resuming') && events.includes('resumed'), 'resuming and resumed: ' + events)
  assert.ok(!events.includes('reconnecting'), 'a cut is no new session: ' + events)
  t.close()
})

test('client messages survive failed and repeated send requests', async () => {
  const f = fake()
  f.fault = (path, _q, count) => {
    if (path != 'send') return
    if (count % 2 == 1) return 'after' // accepted, but the answer is lost: the retry is a duplicate
    if (count % 3 == 0) return new TypeError('network error')
  }
  const { t } = client(f)
  const n = 50
  for (let i = 1; i <= n; i++) {
    t.send('c' + i)
    if (i % 7 == 0) t.send(new Uint8Array([i]))
    if (i % 5 == 0) await new Promise((r) => setTimeout(r, 2))
  }
  await until('all accepted', () => t.bufferedAmount == 0, 10000)
  const want: (string | Uint8Array)[] = []
  for (let i = 1; i <= n; i++) {
    want.push('c' + i)
    if (i % 7 == 0) want.push(new Uint8Array([i]))
  }
  assert.deepEqual(f.in, want)
  t.close(4100, 'bye')
  await until('closed', () => t.readyState == Tether.CLOSED)
  assert.deepEqual(f.closed, [4100, 'bye'])
})

test('a send request carries at most 64 KiB of messages, whatever maxBodyBytes allows (1 MiB here), as the Go client', async () => {
  const f = fake()
  const { t } = client(f)
  const bodies: number[] = []
  globalThis.fetch = ((input: string | URL, init: RequestInit = {}) => {
    if (new URL(input).pathname.endsWith('/send')) bodies.push((init.body as Uint8Array).length)
    return f.fetch(input, init)
  }) as typeof fetch
  // 300 KiB queued before the session opens: five requests at least.
  const n = 30
  for (let i = 0; i < n; i++) t.send(String(i).padEnd(10 << 10, '.'))
  await until('all accepted', () => f.in.length == n, 10000)
  assert.ok(bodies.length >= 5, `${bodies.length} send requests`)
  for (const b of bodies) assert.ok(b <= 64 << 10, `a send body of ${b} bytes`)
  t.close()
  await until('closed', () => t.readyState == Tether.CLOSED)
})

test('a send answered 413 by a proxy (16 KiB bodies at most) goes again in halves: every message arrives once, in order', async () => {
  const f = fake()
  const { t, events } = client(f)
  const bodies: number[] = []
  let refused = 0
  globalThis.fetch = ((input: string | URL, init: RequestInit = {}) => {
    if (new URL(input).pathname.endsWith('/send')) {
      const size = (init.body as Uint8Array).length
      bodies.push(size)
      // What nginx answers past client_max_body_size: its own page, not the server's form.
      if (size > 16 << 10) return refused++, Promise.resolve(new Response('<html>413 Request Entity Too Large</html>', { status: 413 }))
    }
    return f.fetch(input, init)
  }) as typeof fetch
  const n = 40
  const sent = Array.from({ length: n }, (_, i) => String(i).padEnd(1000, '.'))
  for (const m of sent) t.send(m)
  await until('all accepted', () => f.in.length == n, 10000)
  assert.deepEqual(f.in, sent)
  assert.ok(refused > 0, 'no body was refused: the test did not test the halving')
  // Sent from construction on: the halving does not wait for long polling to open.
  assert.ok(bodies.every((b) => b <= 64 << 10), JSON.stringify(bodies))
  assert.equal(t.readyState, Tether.OPEN)
  assert.deepEqual(events.filter((e) => e == 'error' || e == 'close'), [])
  t.close()
  await until('closed', () => t.readyState == Tether.CLOSED)
})

test('a message alone answered 413 (by a proxy) closes the session with 1009, after an error event for the send; no request loops', async () => {
  const f = fake()
  const { t, closed } = client(f)
  const errors: { request?: string; status?: number }[] = []
  t.addEventListener('error', (e) => errors.push(e as Event & { request?: string; status?: number }))
  let sends = 0
  globalThis.fetch = ((input: string | URL, init: RequestInit = {}) => {
    if (new URL(input).pathname.endsWith('/send') && (init.body as Uint8Array).length > 16 << 10)
      return sends++, Promise.resolve(new Response('<html>413 Request Entity Too Large</html>', { status: 413 }))
    return f.fetch(input, init)
  }) as typeof fetch
  t.send('x'.repeat(20 << 10))
  await until('closed', () => !!closed(), 10000)
  assert.equal(closed()!.code, 1009)
  assert.equal(closed()!.reason, 'message too big')
  assert.equal(sends, 1)
  assert.ok(
    errors.some((e) => e.request == 'send' && e.status == 413),
    JSON.stringify(errors.map((e) => [e.request, e.status])),
  )
})

test('a server close frame ends the session with its code', async () => {
  const f = fake()
  const { t, events, closed } = client(f)
  await until('open', () => t.readyState == Tether.OPEN)
  f.send('last')
  f.close(4100, 'done here')
  await until('close', () => !!closed())
  assert.equal(closed()!.code, 4100)
  assert.equal(closed()!.reason, 'done here')
  assert.equal(closed()!.wasClean, true)
  assert.deepEqual(events, ['open', 'close'])
})

test('close codes that say so make the client negotiate a new session', async () => {
  const f = fake()
  const { t, events, got } = client(f)
  await until('open', () => t.readyState == Tether.OPEN)
  const reconnecting: [number, string][] = []
  t.onreconnecting = (e) => reconnecting.push([e.code, e.reason])
  f.close(1012, 'restart')
  await until('second session', () => t.session == 'S2' && t.readyState == Tether.OPEN)
  f.send('hi')
  await until('message', () => got.length == 1)
  assert.deepEqual(events, ['open', 'reconnecting', 'open'])
  assert.deepEqual(reconnecting, [[1012, 'restart']])
  t.close()
})

test('4006 owner gone makes the client negotiate a new session', async () => {
  const f = fake()
  const { t, events, got } = client(f)
  await until('open', () => t.readyState == Tether.OPEN)
  const first = t.session
  const reconnecting: [number, string][] = []
  t.onreconnecting = (e) => reconnecting.push([e.code, e.reason])
  f.close(4006, 'owner gone')
  await until('second session', () => t.session != first && t.readyState == Tether.OPEN)
  f.send('on the new session')
  await until('message', () => got.length == 1)
  assert.deepEqual(events, ['open', 'reconnecting', 'open'])
  assert.deepEqual(reconnecting, [[4006, 'owner gone']])
  t.close()
})

test('an unknown session on attach closes with 4005', async () => {
  const f = fake()
  f.fault = (path, _q, count) => {
    if (path == 'longpoll' && count > 1) return new Response('unknown session', { status: 404 })
  }
  const { t, closed } = client(f)
  const errors: [string, string, number][] = []
  t.onerror = (e) => errors.push([e.request!, e.transport!, e.status!])
  await until('close', () => !!closed())
  assert.equal(closed()!.code, 4005)
  assert.equal(closed()!.reason, 'session unknown')
  assert.deepEqual(errors[0], ['attach', 'longpoll', 404])
  assert.equal(closed()!.wasClean, false)
  t.close()
})

test('negotiate refused by the auth hook closes with 1008 and its message', async () => {
  const f = fake()
  f.fault = (path) => (path == 'negotiate' ? new Response('no token\n', { status: 401 }) : undefined)
  const { closed, events } = client(f)
  await until('close', () => !!closed())
  assert.equal(closed()!.code, 1008)
  assert.equal(closed()!.reason, 'no token')
  assert.deepEqual(events, ['error', 'close'])
})

test('a negotiate answer in a protocol version other than 1, or 400 unsupported protocol version, closes with 4003 and attaches nothing', async () => {
  const answers = [
    () => Response.json({ protocol: 2, session: 'S', token: 'T', transports: ['longpoll'], heartbeatMs: 1000, resumeWindowMs: 1000, maxBodyBytes: 1 << 20 }),
    () => new Response('unsupported protocol version\n', { status: 400 }),
  ]
  for (const answer of answers) {
    const f = fake()
    f.fault = (path) => (path == 'negotiate' ? answer() : undefined)
    const { closed, events } = client(f)
    await until('close', () => !!closed())
    assert.equal(closed()!.code, 4003)
    assert.equal(closed()!.reason, 'unsupported protocol version')
    assert.deepEqual(events, ['error', 'close'])
    assert.deepEqual(f.log, ['POST negotiate'])
  }
})

test('a negotiate answer without a session or a token is a failed attempt, and the next answer is used', async () => {
  for (const bad of [{ token: 'T' }, { session: 'S' }]) {
    const f = fake(['longpoll'])
    let answered = 0
    f.fault = (path) => (path == 'negotiate' && answered++ == 0 ? Response.json({ protocol: 1, transports: ['longpoll'], heartbeatMs: 1000, resumeWindowMs: 1000, maxBodyBytes: 1 << 20, ...bad }) : undefined)
    const { t, events } = client(f)
    const failed: TetherErrorEvent[] = []
    t.addEventListener('error', (e) => failed.push(e as TetherErrorEvent))
    await until('open', () => events.includes('open'))
    assert.equal(failed.length, 1, JSON.stringify(bad))
    assert.equal(failed[0].request, 'negotiate')
    assert.equal(failed[0].status, 200)
    assert.equal(f.log.filter((l) => l == 'POST negotiate').length, 2)
    assert.notEqual(t.session, null)
    t.close()
  }
})

test('the WebSocket-shaped surface', () => {
  globalThis.fetch = (() => new Promise(() => {})) as any
  const t = new Tether('ws://127.0.0.1:1/rt')
  assert.equal(t.url, 'http://127.0.0.1:1/rt/')
  assert.deepEqual([t.CONNECTING, t.OPEN, t.CLOSING, t.CLOSED], [0, 1, 2, 3])
  assert.deepEqual([Tether.CONNECTING, Tether.OPEN, Tether.CLOSING, Tether.CLOSED], [0, 1, 2, 3])
  assert.equal(t.readyState, Tether.CONNECTING)
  assert.equal(t.binaryType, 'blob')
  t.send('12345')
  t.send(new Uint16Array([1, 2]))
  t.send(new DataView(new ArrayBuffer(3)))
  assert.equal(t.bufferedAmount, 12)
  assert.throws(() => t.close(1001), RangeError)
  assert.throws(() => t.close(1000, 'x'.repeat(124)), SyntaxError)
  t.close()
  assert.equal(t.readyState, Tether.CLOSED)
})

test('a session that cannot attach again within the resume window closes with 4001', async () => {
  const f = fake(['longpoll'], 1000, 300)
  let down = false
  f.fault = (path) => (down && path != 'negotiate' ? new TypeError('network down') : undefined)
  const { t, events, closed } = client(f)
  await until('open', () => t.readyState == Tether.OPEN)
  down = true
  try {
    await until('close', () => !!closed())
  } finally {
    t.close()
  }
  assert.equal(closed()!.code, 4001)
  assert.deepEqual(events.slice(0, 3), ['open', 'resuming', 'error'])
  assert.deepEqual(events.slice(-2), ['error', 'close'])
  assert.ok(!events.includes('resumed'))
})

test('silence on a connection for two heartbeats counts as a cut', async () => {
  const f = fake(['longpoll'], 100)
  let silent = 0
  // The second poll hangs without an answer (as through a dead network path).
  f.fault = (path, _q, count) => {
    if (path == 'longpoll' && count == 2) return new Response(new ReadableStream({ pull: () => new Promise(() => {}) }), { headers: { 'content-type': 'application/octet-stream' } })
    if (path == 'longpoll' && count > 2) silent = count
  }
  const { t, events, got } = client(f)
  await until('a poll after the silent one', () => silent > 0)
  f.send('after')
  await until('message', () => got.length == 1)
  assert.deepEqual(got, ['after'])
  // The hung poll is one cut. A loaded machine may answer a later poll
  // after two heartbeats of 100 ms too: another cut, resumed like the first.
  assert.equal(events[0], 'open')
  const cuts = events.slice(1)
  assert.ok(cuts.length >= 2 && cuts.every((e, i) => e == (i % 2 ? 'resumed' : 'resuming')), 'each cut resumed: ' + events)
  t.close()
})

test('a session never attached closes with 4004 once the resume window has passed', async () => {
  // A proxy's 502, and a stream of the right type that ends before its
  // first byte: a failed attempt each time, never a loop of attaches.
  for (const answer of [() => new Response('bad gateway', { status: 502 }), () => new Response('', { headers: { 'content-type': 'text/event-stream' } })]) {
    const f = fake(['sse'], 1000, 300)
    f.fault = (path) => (path == 'sse' ? answer() : undefined)
    const { t, events, closed } = client(f)
    try {
      await until('close', () => !!closed())
    } finally {
      t.close()
    }
    assert.equal(closed()!.code, 4004)
    assert.equal(closed()!.reason, 'no transport')
    assert.equal(events.at(-1), 'close')
    assert.ok(events.length >= 3 && events.slice(0, -1).every((e) => e == 'error'), 'an error per attempt, then close: ' + events)
    // Each attempt waited its backoff: a loop would have made thousands.
    assert.ok(f.log.filter((l) => l == 'GET sse').length < 100, String(f.log.length))
  }
})

test('after two idle cuts alike, attaches ask for the shorter heartbeat (PROTOCOL.md 10.4)', async () => {
  const f = fake(['longpoll'], 30000)
  const { t } = client(f)
  await until('open', () => t.readyState == Tether.OPEN)
  // The session's internals that this test drives and reads; heartbeat.test.ts has the cases.
  const internals = t as unknown as { _url(path: string, q: Record<string, number>): URL; _heartbeat: Heartbeat }
  const asked = () => internals._url('longpoll', { received: 0 }).searchParams.get('heartbeatMs')
  assert.equal(asked(), null)
  assert.equal(internals._heartbeat._cut(5000), false)
  assert.equal(internals._heartbeat._cut(5200), true)
  assert.equal(asked(), '2500')
  t.close()
  await until('close', () => t.readyState == Tether.CLOSED)
})

test('send() of a message over maxMessageBytes throws MessageTooBigError and the session goes on', async () => {
  const f = fake()
  const { t, events, got } = client(f)
  await until('open', () => t.readyState == Tether.OPEN)
  t.send('before')
  const refused: unknown[] = []
  // 65536 is the fake server's maxMessageBytes; a string counts its UTF-8 bytes.
  for (const m of ['x'.repeat(65537), '\u00e9'.repeat(32769), new Uint8Array(65537), new Blob([new Uint8Array(65537)])]) {
    try {
      t.send(m)
    } catch (e) {
      refused.push(e)
    }
  }
  assert.equal(refused.length, 4)
  for (const e of refused) {
    assert.ok(e instanceof MessageTooBigError && e instanceof RangeError, String(e))
    assert.equal(e.name, 'MessageTooBigError')
    assert.equal(e.limit, 65536)
  }
  assert.deepEqual(
    refused.map((e) => (e as MessageTooBigError).size),
    [65537, 65538, 65537, 65537],
  )
  t.send('x'.repeat(65536))
  t.send('after')
  await until('accepted', () => f.in.length == 3)
  assert.deepEqual(f.in, ['before', 'x'.repeat(65536), 'after'])
  f.send('still here')
  await until('message', () => got.length == 1)
  assert.equal(t.readyState, Tether.OPEN)
  assert.deepEqual(events, ['open'])
  t.close()
  await until('close', () => t.readyState == Tether.CLOSED)
})

test('a message sent before the negotiate answer and over its limit is dropped with an error event', async () => {
  const f = fake()
  const { t, events } = client(f)
  const errors: TetherErrorEvent[] = []
  t.addEventListener('error', (e) => errors.push(e))
  t.send('first')
  t.send('y'.repeat(65537))
  t.send(new Blob(['z'.repeat(65537)]))
  t.send('last')
  await until('accepted', () => f.in.length == 2)
  assert.deepEqual(f.in, ['first', 'last'])
  assert.deepEqual(
    errors.map((e) => [e.request, e.error?.name, (e.error as MessageTooBigError).size]),
    [
      ['send', 'MessageTooBigError', 65537],
      ['send', 'MessageTooBigError', 65537],
    ],
  )
  assert.equal(t.readyState, Tether.OPEN)
  assert.deepEqual(
    events.filter((e) => e != 'error'),
    ['open'],
  )
  t.close()
  await until('close', () => t.readyState == Tether.CLOSED)
})

// It also guards against send requests repeated at once while a WebSocket
// attaches (their messages are kept for it): against this fake, which answers
// without a macrotask, such a loop starves every timer and the test hangs.
test('a failed upgrade is tried again later: the session ends on WebSocket, every message exactly once, in order', async () => {
  const f = fake(['websocket', 'longpoll'])
  // The first WebSocket is refused, as by a proxy's hiccup; the next ones pass.
  f.fault = (path, _q, count) => (path == 'websocket' && count == 1 ? new Error('refused') : undefined)
  const stored = new Map<string, string>()
  ;(globalThis as any).WebSocket = f.WebSocket
  ;(globalThis as any).sessionStorage = { getItem: (k: string) => stored.get(k) ?? null, setItem: (k: string, v: string) => stored.set(k, v) }
  try {
    const { t, got, events } = client(f)
    const errors: string[] = []
    t.onerror = (e) => errors.push(e.request + ' ' + e.transport)
    await until('open', () => t.readyState == Tether.OPEN)
    // Messages both ways all along: the client's are echoed by the test.
    let up = 0
    let down = 0
    let echoed = 0
    const echo = () => {
      while (echoed < f.in.length) f.send(f.in[echoed++])
    }
    const traffic = setInterval(() => {
      t.send('u' + ++up)
      f.send('d' + ++down)
      echo()
    }, 10)
    try {
      await until('the refused WebSocket', () => errors.length == 1)
      assert.deepEqual(errors, ['attach websocket'])
      // The round that failed while long polling worked is remembered (PROTOCOL.md 10.2).
      assert.equal(stored.get('tether:' + t.url), 'longpoll')
      await until('websocket, after the upgrade round tried again', () => t.transport == 'websocket', 15000)
    } finally {
      clearInterval(traffic)
    }
    // The move after a failure is remembered: the failure no longer holds.
    assert.equal(stored.get('tether:' + t.url), 'websocket')
    await until('every message back', () => (echo(), f.in.length == up && got.length == up + down))
    const want = (tag: string, n: number) => Array.from({ length: n }, (_, i) => tag + (i + 1))
    assert.deepEqual(f.in, want('u', up))
    assert.deepEqual(got.filter((m) => (m as string)[0] == 'd'), want('d', down))
    assert.deepEqual(got.filter((m) => (m as string)[0] == 'u'), want('u', up))
    assert.deepEqual(events.filter((e) => e != 'error'), ['open', 'transport'])
    t.close()
    await until('close', () => t.readyState == Tether.CLOSED)
    assert.deepEqual(f.closed, [1000, ''])
  } finally {
    delete (globalThis as any).WebSocket
    delete (globalThis as any).sessionStorage
  }
})

// A balancer over servers that share no sessions (PROTOCOL.md 10.6): a
// request made before the session first attached, answered 404, moves the
// session to WebSocket alone; nothing is lost or duplicated.
const withWebSocket = async (f: ReturnType<typeof fake>, run: () => Promise<void>) => {
  ;(globalThis as any).WebSocket = f.WebSocket
  try {
    await run()
  } finally {
    delete (globalThis as any).WebSocket
  }
}

test('round robin: the first poll answered 404 after the send was accepted: on WebSocket alone, every message exactly once', async () => {
  const f = fake(['websocket', 'sse', 'streaming', 'longpoll'])
  f.fault = (path, _q, count) => (path == 'longpoll' && count == 1 ? new Response('unknown session\n', { status: 404 }) : undefined)
  await withWebSocket(f, async () => {
    const { t, got, events } = client(f)
    const errors: string[] = []
    t.onerror = (e) => e.request && errors.push([e.request, e.transport, e.status].join())
    t.send('a1')
    t.send('a2')
    await until('websocket', () => t.transport == 'websocket')
    t.send('b1')
    await until('every message in', () => f.in.length == 3)
    f.send('d1')
    await until('the message out', () => got.length == 1)
    // The send carrying a1 and a2 was accepted before the WebSocket, which carries them again: the server drops them.
    assert.deepEqual(f.in, ['a1', 'a2', 'b1'])
    assert.deepEqual(got, ['d1'])
    assert.deepEqual(errors, ['attach,longpoll,404'])
    assert.equal(f.log.filter((l) => l == 'GET longpoll').length, 1)
    assert.deepEqual(f.log.filter((l) => l == 'POST negotiate').length, 1)
    assert.ok(!events.includes('reconnecting') && !events.includes('resuming'), 'events: ' + events)
    t.close()
    await until('close', () => t.readyState == Tether.CLOSED)
    assert.deepEqual(f.closed, [1000, ''])
  })
})

test('round robin: the first send answered 404: after the grace, on WebSocket alone, its messages sent once', async () => {
  const f = fake(['websocket', 'longpoll'])
  f.fault = (path, _q, count) => (path == 'send' && count == 1 ? new Response('unknown session\n', { status: 404 }) : undefined)
  await withWebSocket(f, async () => {
    const { t, events } = client(f)
    t.send('a1')
    await until('websocket', () => t.transport == 'websocket')
    await until('the message in', () => f.in.length == 1)
    t.send('a2')
    await until('the next message in', () => f.in.length == 2)
    assert.deepEqual(f.in, ['a1', 'a2'])
    assert.ok(!events.includes('close'), 'events: ' + events)
    t.close()
    await until('close', () => t.readyState == Tether.CLOSED)
  })
})

test('round robin: WebSocket failing too after the fall back: an error per attempt, then 4005', async () => {
  const f = fake(['websocket', 'longpoll'], 1000, 400)
  f.fault = (path) => (path == 'longpoll' ? new Response('unknown session\n', { status: 404 }) : path == 'websocket' ? new Error('refused') : undefined)
  await withWebSocket(f, async () => {
    const { t, closed } = client(f)
    const errors: string[] = []
    t.onerror = (e) => e.request && errors.push([e.request, e.transport, e.status].join())
    await until('close', () => !!closed())
    assert.deepEqual([closed()!.code, closed()!.reason, closed()!.wasClean], [4005, 'session unknown', false])
    assert.equal(errors[0], 'attach,longpoll,404')
    assert.ok(errors.slice(1).length >= 1 && errors.slice(1).every((e) => e == 'attach,websocket,0'), 'errors: ' + errors)
    assert.equal(f.log.filter((l) => l == 'POST negotiate').length, 1)
    t.close()
  })
})

test('round robin: a session that attached and then meets 404 ends with 4005, no fall back', async () => {
  const f = fake(['websocket', 'longpoll'])
  let attached = false
  f.fault = (path) => (path == 'websocket' ? new Error('refused') : path == 'longpoll' && attached ? new Response('unknown session\n', { status: 404 }) : undefined)
  await withWebSocket(f, async () => {
    const { t, closed } = client(f)
    await until('open', () => t.readyState == Tether.OPEN)
    // Past the WebSocket probe, which fails.
    await until('the probe', () => f.log.includes('GET websocket'))
    const sockets = f.log.filter((l) => l == 'GET websocket').length
    attached = true
    f.send('d1')
    await until('close', () => !!closed())
    assert.equal(closed()!.code, 4005)
    assert.equal(f.log.filter((l) => l == 'GET websocket').length, sockets)
  })
})

// What nginx answers for status: its own HTML page, no line of Tether's.
const nginxPage = (status: number, text: string) =>
  `<html>\r\n<head><title>${status} ${text}</title></head>\r\n<body>\r\n<center><h1>${status} ${text}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`

// A captive portal's (or a login page's) 200 answer.
const portalPage = '<!DOCTYPE html>\n<html><body><form action="/login">Sign in to the Wi-Fi</form></body></html>\n'

/**
 * proxy runs a plain HTTP server on a free loopback port, standing where a
 * proxy, a captive portal or a login redirect stands in front of the server:
 * answer writes each request's answer. It returns the client's url and a
 * function that stops the server.
 */
const proxy = async (answer: (path: string, res: ServerResponse) => void) => {
  const server = createServer((req, res) => {
    req.resume()
    answer(new URL(req.url!, 'http://x').pathname.replace(/^\/rt\//, ''), res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/rt/`,
    stop: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  }
}

/** watch opens a session at url over the real fetch and records its events. */
const watch = (url: string, options = {}) => {
  globalThis.fetch = realFetch
  const t = new Tether(url, { minDelay: 5, maxDelay: 20, timeout: 300, ...options })
  const errors: TetherErrorEvent[] = []
  const events: string[] = []
  let closed: TetherCloseEvent | undefined
  t.addEventListener('error', (e) => (events.push('error'), errors.push(e as TetherErrorEvent)))
  t.addEventListener('open', () => events.push('open'))
  t.onclose = (e) => {
    events.push('close')
    closed = e
  }
  return { t, errors, events, closed: () => closed }
}

test("negotiate answered 4xx by a proxy's page closes with 1008 and 'HTTP <status>', never the page; Tether's own one-line message is the reason", async () => {
  const cases: [number, string, string, string][] = [
    [404, 'text/html', nginxPage(404, 'Not Found'), 'HTTP 404'],
    [413, 'text/html', nginxPage(413, 'Request Entity Too Large'), 'HTTP 413'],
    // net/http's own answer: no line feed.
    [400, 'text/plain; charset=utf-8', '400 Bad Request', 'HTTP 400'],
    [403, 'text/plain; charset=utf-8', 'forbidden\nsee the admin\n', 'HTTP 403'],
    [401, 'text/plain; charset=utf-8', 'x'.repeat(124) + '\n', 'HTTP 401'],
    [401, 'text/plain; charset=utf-8', 'é'.repeat(61) + 'x\n', 'é'.repeat(61) + 'x'],
    [403, 'text/plain; charset=utf-8', 'origin not allowed\n', 'origin not allowed'],
  ]
  for (const [status, type, body, reason] of cases) {
    const p = await proxy((_, res) => res.writeHead(status, { 'content-type': type }).end(body))
    try {
      // A timeout that a busy machine cannot reach: a negotiate timed out
      // would be one more error event than the one this test counts.
      const { closed, events, errors } = watch(p.url, { timeout: 5000 })
      await until('close', () => !!closed())
      assert.equal(closed()!.code, 1008)
      assert.equal(closed()!.reason, reason)
      assert.ok(new TextEncoder().encode(closed()!.reason).length <= 123)
      assert.deepEqual(events, ['error', 'close'])
      assert.equal(errors.length, 1)
    } finally {
      await p.stop()
    }
  }
})

test("negotiate answered 502 or 504 by a proxy, or 200 by a captive portal: an error event with the status each time, tried again, and the session opens once the server answers", async () => {
  const answers: [number, string, string][] = [
    [502, 'text/html', nginxPage(502, 'Bad Gateway')],
    [504, 'text/html', nginxPage(504, 'Gateway Time-out')],
    [200, 'text/html; charset=utf-8', portalPage],
  ]
  let negotiates = 0
  const p = await proxy((path, res) => {
    if (path == 'negotiate') {
      const a = answers[negotiates++]
      if (a) return res.writeHead(a[0], { 'content-type': a[1] }).end(a[2])
      return res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ protocol: 1, session: 'S', token: 'T', transports: ['longpoll'], heartbeatMs: 1000, resumeWindowMs: 1000, maxMessageBytes: 65536, maxBodyBytes: 1 << 20 }))
    }
    if (path == 'send') return res.writeHead(204).end()
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('1:h')
  })
  try {
    // As above: no negotiate may time out here.
    const { t, events, errors } = watch(p.url, { timeout: 5000 })
    await until('open', () => events.includes('open'))
    assert.deepEqual(
      errors.map((e) => [e.request, e.status]),
      [
        ['negotiate', 502],
        ['negotiate', 504],
        ['negotiate', 200],
      ],
    )
    t.close()
    await until('closed', () => t.readyState == Tether.CLOSED)
  } finally {
    await p.stop()
  }
})

test('attaches and sends answered by a login page (200, or a 302 redirect to one) open nothing: an error event for each, then close 4004 once the resume window has passed', async () => {
  for (const [mode, transports] of [
    ['page', ['longpoll', 'sse', 'streaming']],
    ['redirect', ['longpoll', 'sse', 'streaming']],
    ['page', ['sse']],
    ['redirect', ['streaming']],
  ] as [string, string[]][]) {
    const p = await proxy((path, res) => {
      if (path == 'negotiate')
        return res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ protocol: 1, session: 'S', token: 'T', transports, heartbeatMs: 1000, resumeWindowMs: 500, maxMessageBytes: 65536, maxBodyBytes: 1 << 20 }))
      if (mode == 'redirect' && path != 'login') return res.writeHead(302, { location: '/rt/login' }).end()
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(portalPage)
    })
    try {
      const { t, events, errors, closed } = watch(p.url)
      t.send('hello')
      await until('close', () => !!closed(), 10000)
      assert.equal(closed()!.code, 4004, mode + ' ' + transports)
      assert.equal(closed()!.reason, 'no transport')
      assert.ok(!events.includes('open'), events.join())
      assert.ok(
        errors.some((e) => e.request == 'attach' && e.status == 200),
        JSON.stringify(errors.map((e) => [e.request, e.transport, e.status])),
      )
    } finally {
      await p.stop()
    }
  }
})

test('a send answered 200 (a page) is no acceptance: an error event for the send, and the message goes again, exactly once', async () => {
  const f = fake()
  const { t } = client(f)
  const errors: TetherErrorEvent[] = []
  t.addEventListener('error', (e) => errors.push(e as TetherErrorEvent))
  f.fault = (path, _, count) => (path == 'send' && count <= 2 ? new Response(portalPage, { headers: { 'content-type': 'text/html' } }) : undefined)
  t.send('kept')
  await until('accepted', () => f.in.length == 1)
  assert.deepEqual(f.in, ['kept'])
  assert.ok(
    errors.some((e) => e.request == 'send' && e.status == 200),
    JSON.stringify(errors.map((e) => [e.request, e.status])),
  )
  t.close()
  await until('closed', () => t.readyState == Tether.CLOSED)
})
