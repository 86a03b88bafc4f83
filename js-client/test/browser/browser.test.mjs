// Browser tests: the bundled client in real Chromium against the Go server
// (js-client/testserver), over each transport, with a refused WebSocket,
// with cuts in the middle of streams, and with binary messages.

import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { pageHelpers, startBrowser, startServer, tempDir } from './harness.mjs'

// The server starts before the tests are declared: which transports it
// offers decides which tests are skipped.
const [dir, removeDir] = tempDir()
// TETHER_TEST_TRANSPORTS (for example "websocket,longpoll") restricts what
// the server offers, to run the suite as against an older server.
const only = process.env.TETHER_TEST_TRANSPORTS
// A resume window of 6 s bounds the wait for close 4004.
const server = await startServer(dir, ['-heartbeat', '1s', '-resume-window', '6s', ...(only ? ['-transports', only] : [])])
const offered = (await (await fetch(server.url + 'rt/negotiate?v=1', { method: 'POST' })).json()).transports
let browser

before(async () => {
  browser = await startBrowser(dir)
  await browser.addInitScript(pageHelpers)
})

after(async () => {
  await browser?.close()
  await server.stop()
  removeDir()
})

/** inPage opens a fresh page and runs f(arg) in it; watch, if given, is called with the page first. */
const inPage = async (f, arg, watch) => {
  const page = await browser.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(e))
  watch?.(page)
  try {
    await page.goto(server.url)
    const result = await page.evaluate(f, arg)
    assert.deepEqual(errors, [], 'uncaught errors in the page')
    return result
  } finally {
    await page.close()
  }
}

/** skip returns a reason to skip a test of transport name, or false. */
const skip = (name) =>
  !offered.includes(name) && `the server does not offer ${name} (it offers ${offered.join(', ')})`

const all = ['websocket', 'sse', 'streaming', 'longpoll']

describe('each transport, forced', () => {
  for (const name of all) {
    test(name + ': text echo, a stream of 500, close', { skip: skip(name) }, async () => {
      const r = await inPage(async (name) => {
        // The WebSockets the client opens, to see the subprotocol chosen.
        const sockets = []
        window.WebSocket = class extends WebSocket {
          constructor(...args) {
            super(...args)
            sockets.push(this)
          }
        }
        const t = connect('/rt/', { transports: [name] })
        const texts = ['', 'hello', 'two\nlines\r\n', 'h\u00e9 \u{1F600}', '\uFEFFbom', 'x'.repeat(70000 / 2)]
        for (const s of texts) t.send(s)
        await until('echoes', () => t.got.length >= texts.length)
        const echoed = t.got.splice(0)
        t.send('stream 500')
        await until('500 messages', () => t.got.length >= 500)
        await new Promise((r) => setTimeout(r, 100))
        const streamed = t.got.splice(0)
        const protocol = sockets.at(-1)?.protocol
        t.close(1000, 'done')
        await until('close', () => t.readyState == Tether.CLOSED)
        return { transport: t.transport, protocol, echoed, sent: texts, exact: streamed.join() == numbers(500).join(), n: streamed.length, events: t.events, close: t.closeEvent }
      }, name)
      assert.equal(r.transport, name)
      // The server chose compact batches (PROTOCOL.md section 4.2).
      if (name == 'websocket') assert.equal(r.protocol, 'tether.compact')
      assert.deepEqual(r.echoed, r.sent)
      assert.ok(r.exact, `stream of 500 arrived as ${r.n} messages, not exactly 1..500 in order`)
      assert.deepEqual(r.events, ['open', 'close'])
      assert.deepEqual(r.close, { code: 1000, reason: 'done', wasClean: true })
    })

    test(name + ': a message over maxMessageBytes is refused by send, and the session goes on', { skip: skip(name) }, async () => {
      const r = await inPage(async (name) => {
        const t = connect('/rt/', { transports: [name] })
        await until('open', () => t.readyState == Tether.OPEN)
        t.send('before')
        const refused = []
        const refuse = (m) => {
          try {
            t.send(m)
            refused.push('sent')
          } catch (e) {
            refused.push({ name: e.name, range: e instanceof RangeError, size: e.size, limit: e.limit })
          }
        }
        refuse('x'.repeat(1 << 20))
        const limit = refused[0].limit
        refuse(new Uint8Array(limit + 1))
        refuse('\u00e9'.repeat(limit / 2) + 'x')
        refuse(new Blob([new Uint8Array(limit + 1)]))
        // At the limit exactly, counted the same way by the client and the server.
        t.send(new Uint8Array(limit).fill(7))
        t.send('\u00e9'.repeat(limit / 2))
        t.send('after')
        await until('echoes', () => t.got.length >= 4)
        const got = t.got.map((m) => (typeof m == 'string' ? (m.length > 10 ? m.length + ' chars' : m) : m.byteLength + ' bytes'))
        const events = t.events.slice()
        t.close(1000, 'done')
        await until('close', () => t.readyState == Tether.CLOSED)
        return { transport: t.transport, refused, limit, got, events, close: t.closeEvent }
      }, name)
      assert.equal(r.transport, name)
      const tooBig = (size) => ({ name: 'MessageTooBigError', range: true, size, limit: r.limit })
      assert.deepEqual(r.refused, [tooBig(1 << 20), tooBig(r.limit + 1), tooBig(r.limit + 1), tooBig(r.limit + 1)])
      assert.deepEqual(r.got, ['before', r.limit + ' bytes', r.limit / 2 + ' chars', 'after'])
      assert.deepEqual(r.events, ['open'])
      assert.deepEqual(r.close, { code: 1000, reason: 'done', wasClean: true })
    })

    test(name + ': binary round trips; the token in a header, in the URL of a WebSocket only; a stream with acks=1 goes past the byte limit', { skip: skip(name) }, async () => {
      const seen = []
      const r = await inPage(async (name) => {
        const t = connect('/rt/', { transports: [name] })
        const all = new Uint8Array(256).map((_, i) => i)
        const big = new Uint8Array(60000).map((_, i) => (i * 7) & 255)
        const sent = [all, big, new Uint8Array(0), new Uint8Array([10, 13, 0])]
        t.send(all.buffer)
        t.send(new Blob([big]))
        t.send(new Uint8Array(0))
        t.send(new DataView(new Uint8Array([9, 10, 13, 0, 9]).buffer, 1, 3))
        t.send('text between')
        t.send(new Uint16Array([0x0a0d]).subarray(0, 1))
        await until('echoes', () => t.got.length >= 6)
        const got = t.got.map((m) => (typeof m == 'string' ? m : hex(m)))
        // Blobs too, with the default binaryType.
        t.binaryType = 'blob'
        t.got = []
        t.send(all)
        await until('blob echo', () => t.got.length >= 1)
        const blob = t.got[0] instanceof Blob ? hex(await t.got[0].arrayBuffer()) : 'not a Blob'
        // 400 KB down, past the streams' byte limit (128 KiB on the test
        // server): the client's streams ask for none (acks=1) and
        // acknowledge as they read; a long poll ends and the next follows.
        t.binaryType = 'arraybuffer'
        t.got = []
        const chunks = Array.from({ length: 25 }, (_, i) => new Uint8Array(16384).fill(i))
        for (const c of chunks) t.send(c)
        await until('25 echoes of 16 KiB', () => t.got.length >= 25)
        await new Promise((r) => setTimeout(r, 100))
        const chunksOk = t.got.length == 25 && t.got.every((m, i) => m.byteLength == 16384 && new Uint8Array(m).every((x) => x == i))
        const events = t.events.slice()
        t.close()
        return { transport: t.transport, got, want: [...sent.map(hex), 'text between', '0d0a'], blob, allHex: hex(all), chunksOk, events }
      }, name, (page) => {
        page.on('request', (q) => seen.push({ url: q.url(), header: q.headers()['tether-token'] }))
        // A WebSocket's handshake is no 'request' here; a page cannot set its headers.
        page.on('websocket', (ws) => seen.push({ url: ws.url() }))
      })
      assert.equal(r.transport, name)
      assert.deepEqual(r.got, r.want)
      assert.equal(r.blob, r.allHex)
      assert.ok(r.chunksOk, '25 binary messages of 16 KiB did not come back exactly')
      assert.deepEqual(r.events, ['open'], 'a response ending is no loss')
      // PROTOCOL.md section 3: the token travels in the Tether-Token header
      // of every same-origin fetch, in the URL of a WebSocket only; streams
      // ask for no byte limit (acks=1), so one response carried 400 KB,
      // past the test server's 128 KiB.
      const tokens = new Set()
      const counts = {}
      for (const { url, header } of seen) {
        const u = new URL(url)
        const endpoint = u.pathname.slice(4)
        if (!u.pathname.startsWith('/rt/') || endpoint == 'negotiate') continue
        counts[endpoint] = (counts[endpoint] || 0) + 1
        const token = u.searchParams.get('token')
        if (endpoint == 'websocket') assert.ok(token && !header, 'websocket: the token in the URL')
        else assert.ok(!token && header, endpoint + ': the token in the header, not in the URL')
        tokens.add(token || header)
        assert.equal(u.searchParams.get('acks'), ['sse', 'streaming'].includes(endpoint) ? '1' : null, endpoint + ': acks')
      }
      assert.equal(tokens.size, 1, 'one token throughout')
      if (name == 'sse' || name == 'streaming') assert.equal(counts[name], 1, 'one response carried it all: ' + JSON.stringify(counts))
    })

    test(name + ': resume after cuts in the middle of a stream, both directions', { skip: skip(name) }, async () => {
      const r = await inPage(async (name) => {
        const t = connect('/rt/', { transports: [name] })
        await until('open', () => t.readyState == Tether.OPEN)
        // Server to client: 3000 messages, every connection cut three times on the way.
        t.send('stream 3000 200 1200 2500')
        await until('3000 messages', () => t.got.length >= 3000, 60000)
        await new Promise((r) => setTimeout(r, 200))
        const down = t.got.splice(0)
        // Client to server: 400 messages with a cut among them; the echo
        // comes back exactly once each, in order.
        for (let i = 1; i <= 400; i++) {
          t.send('c' + i)
          if (i == 150) t.send('cut')
          if (i % 50 == 0) await new Promise((r) => setTimeout(r, 5))
        }
        await until('400 echoes', () => t.got.length >= 400, 60000)
        await new Promise((r) => setTimeout(r, 200))
        const up = t.got.splice(0)
        t.send('count')
        await until('count', () => t.got.length >= 1)
        const count = t.got[0]
        const events = t.events.slice()
        t.close()
        return {
          transport: t.transport,
          down: down.length,
          downExact: down.join() == numbers(3000).join(),
          firstWrong: down.findIndex((m, i) => m != String(i + 1)),
          up: up.length,
          upExact: up.join() == numbers(400).map((n) => 'c' + n).join(),
          count,
          events,
        }
      }, name)
      assert.equal(r.transport, name)
      assert.ok(r.downExact, `server to client: ${r.down} messages, first wrong at index ${r.firstWrong}`)
      assert.ok(r.upExact, `client to server: ${r.up} echoes, not exactly c1..c400`)
      // The server received: stream, 400 messages, cut, count.
      assert.equal(r.count, 'count 403')
      // Chrome silently retries a request whose reused connection was reset
      // before any answer, so a cut long poll need not show.
      if (name != 'longpoll') {
        assert.ok(r.events.includes('resuming') && r.events.includes('resumed'), 'events: ' + r.events)
      }
      assert.ok(!r.events.includes('close') && !r.events.includes('reconnecting'), 'the session survived: ' + r.events)
    })
  }
})

describe('automatic mode (fast connect)', () => {
  test('the server refuses WebSocket: long polling at once, then sse, remembered for the next session', async () => {
    const r = await inPage(async () => {
      sessionStorage.clear()
      const t = connect('/blocked/')
      const errors = []
      t.onerror = (e) => errors.push([e.request, e.transport, e.status])
      await until('sse', () => t.transport == 'sse')
      t.send('stream 100')
      await until('100 messages', () => t.got.length >= 100)
      const first = { transports: t.transports, exact: t.got.join() == numbers(100).join(), errors, events: t.events.slice() }
      t.close()
      // A second client in the same tab probes sse first, and WebSocket not at all.
      const u = connect('/blocked/')
      const uErrors = []
      u.onerror = (e) => uErrors.push([e.request, e.transport, e.status])
      await until('sse', () => u.transport == 'sse')
      u.close()
      return { first, second: { transports: u.transports, errors: uErrors }, remembered: sessionStorage.getItem('tether:' + location.origin + '/blocked/') }
    })
    assert.deepEqual(r.first.transports, ['longpoll', 'sse'])
    assert.ok(r.first.exact)
    assert.deepEqual(r.first.errors, [['attach', 'websocket', 0]])
    assert.deepEqual(r.first.events, ['open', 'error', 'transport'])
    assert.equal(r.remembered, 'sse')
    assert.deepEqual(r.second, { transports: ['longpoll', 'sse'], errors: [] })
  })

  test('a buffering proxy: the first echo comes over long polling at once; the buffered streams are probed, never used', async () => {
    const r = await inPage(async () => {
      sessionStorage.clear()
      const start = performance.now()
      const t = connect('/buffered/', { timeout: 1500 })
      const errors = []
      t.onerror = (e) => errors.push([e.request, e.transport, e.status])
      let open, echo
      t.onopen = () => (open = performance.now() - start)
      t.send('first')
      await until('echo', () => t.got.length >= 1)
      echo = performance.now() - start
      const before = errors.map((e) => e[0])
      await until('three failed probes', () => errors.length == 3, 15000)
      t.send('stream 100')
      await until('101 messages', () => t.got.length >= 101)
      const events = t.events.slice()
      t.close()
      return { transport: t.transport, open, echo, before, exact: t.got.join() == ['first', ...numbers(100)].join(), events, errors }
    })
    console.log(`buffered: open after ${r.open.toFixed(0)} ms, first echo after ${r.echo.toFixed(0)} ms (was 10 s with two stream timeouts)`)
    assert.equal(r.transport, 'longpoll')
    assert.ok(r.exact)
    // The echo came before any stream probe had failed: nothing waited for them.
    assert.ok(!r.before.includes('probe'), 'errors before the echo: ' + r.before)
    assert.deepEqual(r.errors, [
      ['attach', 'websocket', 0],
      // This proxy holds back the headers too: no status.
      ['probe', 'sse', 0],
      ['probe', 'streaming', 0],
    ])
    assert.deepEqual(r.events, ['open', 'error', 'error', 'error'])
  })

  test('with nothing blocked the client moves to WebSocket', { skip: skip('websocket') }, async () => {
    const r = await inPage(async () => {
      sessionStorage.clear()
      const start = performance.now()
      const t = connect('/rt/')
      t.send('first')
      await until('echo', () => t.got.length >= 1)
      const echo = performance.now() - start
      await until('websocket', () => t.transport == 'websocket')
      const ws = performance.now() - start
      t.close()
      return { transports: t.transports, echo, ws, events: t.events }
    })
    console.log(`plain: first echo after ${r.echo.toFixed(0)} ms, on websocket after ${r.ws.toFixed(0)} ms`)
    assert.deepEqual(r.transports, ['longpoll', 'websocket'])
    assert.deepEqual(r.events, ['open', 'transport', 'close'])
  })

  test('upgrade: starts on long polling, moves to WebSocket without losing a message', { skip: skip('websocket') || skip('longpoll') }, async () => {
    const r = await inPage(async () => {
      sessionStorage.clear()
      const t = connect('/rt/', { upgrade: true })
      t.send('stream 2000')
      for (let i = 1; i <= 200; i++) t.send('u' + i)
      await until('upgrade', () => t.transport == 'websocket')
      await until('all messages', () => t.got.length >= 2200, 60000)
      await new Promise((r) => setTimeout(r, 200))
      const streamed = t.got.filter((m) => !m.startsWith('u'))
      const echoed = t.got.filter((m) => m.startsWith('u'))
      t.close()
      return {
        transports: t.transports,
        events: t.events,
        total: t.got.length,
        streamExact: streamed.join() == numbers(2000).join(),
        echoExact: echoed.join() == numbers(200).map((n) => 'u' + n).join(),
      }
    })
    assert.deepEqual(r.transports, ['longpoll', 'websocket'])
    assert.deepEqual(r.events, ['open', 'transport', 'close'])
    assert.equal(r.total, 2200)
    assert.ok(r.streamExact, 'stream not exactly 1..2000')
    assert.ok(r.echoExact, 'echo not exactly u1..u200')
  })

  test('cuts while messages flow both ways: each resume starts on long polling and upgrades again, nothing lost', { skip: skip('websocket') || skip('longpoll') }, async () => {
    // Every cut puts each session back on long polling, then fast connect
    // moves it to WebSocket again while echoes flow: the switch the demo's
    // "automatic" session makes (a poll answered while the WebSocket
    // attaches; acknowledgements of the poll's messages reaching the server
    // before the WebSocket replays them).
    const r = await inPage(async () => {
      sessionStorage.clear()
      const sessions = [connect('/rt/'), connect('/rt/'), connect('/rt/')]
      await until('all on websocket', () => sessions.every((t) => t.transport == 'websocket'))
      const sent = sessions.map(() => 0)
      const ticker = setInterval(() => sessions.forEach((t, i) => t.send('u' + ++sent[i])), 5)
      let upgrades = 0
      try {
        for (let cut = 0; cut < 5; cut++) {
          const n = sessions.map((t) => t.transports.length)
          sessions[0].send('cut')
          // Back on long polling, then on WebSocket again, each session.
          await until('upgraded again', () => sessions.every((t, i) => t.transports.length >= n[i] + 2 && t.transport == 'websocket'))
          upgrades += sessions.length
          await new Promise((r) => setTimeout(r, 50 + 100 * Math.random()))
        }
      } finally {
        clearInterval(ticker)
      }
      sessions.forEach((t) => t.send('count'))
      await until('counts', () => sessions.every((t) => t.got.at(-1)?.startsWith('count')), 30000)
      const out = sessions.map((t, i) => ({
        exact: t.got.slice(0, -1).join() == numbers(sent[i]).map((n) => 'u' + n).join(),
        got: t.got.length - 1,
        sent: sent[i],
        // The server received: u1..uN, the cuts (session 0), count.
        count: t.got.at(-1),
        wantCount: 'count ' + (sent[i] + (i == 0 ? 5 : 0) + 1),
        events: t.events.join(),
      }))
      sessions.forEach((t) => t.close())
      return { out, upgrades }
    })
    assert.equal(r.upgrades, 15)
    for (const s of r.out) {
      assert.ok(s.exact, `echoes not exactly u1..u${s.sent} in order: ${s.got} arrived; events ${s.events}`)
      assert.equal(s.count, s.wantCount, 'messages the server received')
      assert.ok(!s.events.includes('close'), 'events: ' + s.events)
    }
  })

  test('an outage: back on WebSocket once the network is back, nothing lost, the remembered choice unchanged', { skip: skip('websocket') }, async () => {
    const r = await inPage(async () => {
      sessionStorage.clear()
      const t = connect('/rt/')
      const errors = []
      t.addEventListener('error', (e) => errors.push([e.request, e.transport, e.status, Math.round(performance.now())]))
      await until('websocket', () => t.transport == 'websocket')
      t.send('stream 200 100')
      await until('200', () => t.got.length >= 200)
      // The stream's cut was resumed; now the outage.
      await until('on websocket after the cut', () => t.transport == 'websocket' && t.events.at(-1) != 'resuming').catch((e) => {
        throw new Error(e.message + ': events ' + t.events + ' transports ' + t.transports + ' errors ' + JSON.stringify(errors) + ' now ' + Math.round(performance.now()))
      })
      const cuts = () => t.events.filter((e) => e == 'resuming').length
      const k = cuts()
      const n0 = t.transports.length
      t.send('down 1500')
      await until('resuming', () => cuts() > k)
      const lost = performance.now()
      for (let i = 1; i <= 50; i++) t.send('o' + i)
      await until('50 echoes', () => t.got.length >= 250, 30000)
      const echoes = performance.now() - lost
      // Back on WebSocket: the transports after the cut end with it.
      await until('websocket again', () => t.transports.length > n0 && t.transport == 'websocket', 30000).catch(() => {})
      const back = performance.now() - lost
      const after = t.transports.slice(n0)
      t.send('count')
      await until('count', () => t.got.length >= 251)
      const events = t.events.slice()
      t.close()
      return {
        exact: t.got.slice(0, 250).join() == [...numbers(200), ...numbers(50).map((n) => 'o' + n)].join(),
        count: t.got[250],
        echoes,
        back,
        after,
        events,
        remembered: sessionStorage.getItem('tether:' + location.origin + '/rt/'),
      }
    })
    console.log(`outage of 1.5 s: echoes after ${r.echoes.toFixed(0)} ms, back on websocket after ${r.back.toFixed(0)} ms`)
    assert.ok(r.exact, 'messages not exactly once, in order')
    // The server received: stream, down, o1..o50, count.
    assert.equal(r.count, 'count 53')
    assert.deepEqual(r.after, ['longpoll', 'websocket'], 'events: ' + r.events)
    assert.ok(r.events.includes('resumed'), 'events: ' + r.events)
    assert.ok(!r.events.includes('close'), 'events: ' + r.events)
    assert.equal(r.remembered, null)
  })

  test('a send that reaches a server without the session: error, then close 4005, in bounded time', async () => {
    const r = await inPage(async () => {
      sessionStorage.clear()
      const errors = []
      const u = connect('/split/', { transports: ['longpoll'] })
      u.onerror = (e) => errors.push([e.request, e.transport, e.status])
      u.send('hello')
      await until('close', () => u.readyState == Tether.CLOSED, 15000)
      const v = connect('/split/', { transports: ['longpoll'] })
      await until('v closed', () => v.readyState == Tether.CLOSED, 15000)
      // close() while a send hangs on 404 still ends in a close event.
      const w = connect('/split/', { transports: ['sse'] })
      await until('w open', () => w.readyState == Tether.OPEN)
      w.send('x')
      w.close(4100, 'bye')
      await until('w closed', () => w.readyState == Tether.CLOSED, 15000)
      return { u: u.closeEvent, uEvents: u.events, errors, v: v.closeEvent, w: w.closeEvent }
    })
    assert.deepEqual(r.u, { code: 4005, reason: 'session unknown', wasClean: false })
    assert.deepEqual(r.v, { code: 4005, reason: 'session unknown', wasClean: false })
    assert.deepEqual(r.w, { code: 4100, reason: 'bye', wasClean: false })
    assert.ok(r.errors.some((e) => e.join() == 'send,longpoll,404'), 'errors: ' + JSON.stringify(r.errors))
    assert.equal(r.uEvents.at(-1), 'close')
  })

  test('a forced transport that can never attach: an error per attempt, then close 4004', async () => {
    const r = await inPage(async () => {
      const t = connect('/blocked/', { transports: ['websocket'] })
      const errors = []
      t.onerror = (e) => errors.push([e.request ?? '', e.transport ?? '', e.status ?? ''])
      await until('close', () => t.readyState == Tether.CLOSED, 15000)
      return { close: t.closeEvent, errors }
    })
    assert.deepEqual(r.close, { code: 4004, reason: 'no transport', wasClean: false })
    assert.ok(r.errors.length >= 3, 'errors: ' + JSON.stringify(r.errors))
    assert.deepEqual(r.errors.slice(0, -1), r.errors.slice(0, -1).map(() => ['attach', 'websocket', 0]))
    assert.deepEqual(r.errors.at(-1), ['', '', ''])
  })
})

describe('session lifecycle', () => {
  test('a server close frame reaches onclose with its code and reason', async () => {
    const r = await inPage(async () => {
      const t = connect('/rt/')
      const errors = []
      t.addEventListener('error', (e) => errors.push({ request: e.request, transport: e.transport, inUse: t.transport }))
      t.send('before')
      t.send('close 4100 app is done')
      await until('close', () => t.readyState == Tether.CLOSED)
      return { got: t.got, close: t.closeEvent, events: t.events, errors }
    })
    assert.deepEqual(r.got, ['before'])
    assert.deepEqual(r.close, { code: 4100, reason: 'app is done', wasClean: true })
    // The session ends while the better transports are probed beside long
    // polling: a probe that reaches the server after the close is refused,
    // and may fail (an error event) before the close frame arrives on the
    // poll. Any error is such a probe, never the transport in use.
    assert.deepEqual(r.events.filter((e) => e != 'error'), ['open', 'close'])
    for (const e of r.errors) assert.ok(['attach', 'probe'].includes(e.request) && e.transport != e.inUse, 'error event: ' + JSON.stringify(e))
  })

  test('after close code 1012 the client negotiates a new session by itself', async () => {
    const r = await inPage(async () => {
      const t = connect('/rt/')
      // Once on WebSocket, no probe is in flight: a probe cut by the close
      // would add its own error event, which this test is not about.
      await until('on websocket', () => t.readyState == Tether.OPEN && t.transport == 'websocket')
      const first = t.session
      t.send('close 1012 restarting')
      await until('second session', () => t.session != first && t.readyState == Tether.OPEN)
      t.send('again')
      await until('echo', () => t.got.length >= 1)
      t.close()
      await until('closed', () => t.readyState == Tether.CLOSED)
      return { got: t.got, events: t.events }
    })
    assert.deepEqual(r.got, ['again'])
    assert.deepEqual(r.events.filter((e) => e != 'transport'), ['open', 'reconnecting', 'open', 'close'])
  })

  test('silence (heartbeats missing) is detected and the session resumes', async () => {
    const r = await inPage(async () => {
      const t = connect('/rt/', { timeout: 1500 })
      await until('open', () => t.readyState == Tether.OPEN)
      t.send('stream 10')
      await until('10', () => t.got.length >= 10)
      // Hold all traffic for 4 heartbeats: the client must give up on the
      // silent connection and attach again once traffic flows.
      t.send('pause 4000')
      await until('resuming', () => t.events.includes('resuming'), 15000)
      t.send('stream 10')
      await until('20', () => t.got.length >= 20, 30000)
      t.close()
      return { got: t.got, events: t.events }
    })
    assert.deepEqual(r.got, [...Array(10).keys(), ...Array(10).keys()].map((i) => String(i + 1)))
    assert.ok(r.events.includes('resumed') && !r.events.includes('reconnecting'), 'events: ' + r.events)
  })
})

describe('what Chromium sends', () => {
  test('Origin: on same-origin POSTs, not on same-origin GETs (PROTOCOL.md section 7)', { skip: skip('sse') }, async () => {
    const page = await browser.newPage()
    const seen = []
    page.on('request', (r) => seen.push(r))
    try {
      await page.goto(server.url)
      await page.evaluate(async () => {
        const t = connect('/rt/', { transports: ['sse'] })
        t.send('hello')
        await until('echo', () => t.got.length >= 1)
        t.close(1000, 'done')
        await until('close', () => t.readyState == Tether.CLOSED)
      })
      const origins = {}
      for (const r of seen) {
        const name = new URL(r.url()).pathname.split('/').pop()
        if (['negotiate', 'sse', 'send'].includes(name)) origins[r.method() + ' ' + name] = (await r.allHeaders()).origin ?? 'none'
      }
      const own = new URL(server.url).origin
      assert.deepEqual(origins, { 'POST negotiate': own, 'GET sse': 'none', 'POST send': own })
    } finally {
      await page.close()
    }
  })
})
