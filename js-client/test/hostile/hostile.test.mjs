// The bundled client in real Chromium, with its default options, through a
// real nginx in front of the Tether echo server, in each setup of issue 11
// (internal/hostile): README's configuration, Upgrade headers dropped,
// buffering and gzip on every type, an idle timeout below the heartbeat, an
// outage of the proxy, round robin over two independent servers. For each it
// asserts that every wait ends (a failure surfaces as an event, never a
// hang), that messages arrive exactly (nothing lost, duplicated or
// reordered) wherever the session works, and it prints the time to open and
// to the first echo, the transport, and the resumes. No assertion is on
// time.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { repo, startBrowser, startGoServer, tempDir } from '../browser/harness.mjs'

const [dir, removeDir] = tempDir()
let browser

before(async () => {
  browser = await startBrowser(dir)
  await browser.addInitScript(pageHelpers)
})

after(async () => {
  await browser?.close()
  removeDir()
})

/**
 * The idle setup: the bound of the first idle period, until the client has
 * adapted its heartbeat (two cuts by the 5 s proxy timeout, and a little),
 * and the second idle period, three of the proxy's timeouts.
 */
const adaptBoundMs = 40000
const afterIdleMs = 15000
/** The outage of the outage setup, ms (the command stops nginx for as long). */
const outageMs = 4000

/**
 * pageHelpers runs in every page. track() makes a Tether with the default
 * options that records every message and event with its time since
 * construction; phase() sends numbered messages and a stream command and
 * waits, bounded, for their echoes; begin() starts a scenario's session and
 * runs its first phases; finish() closes and waits, bounded, for the close
 * event; seen() is what a failed wait reports.
 */
function pageHelpers() {
  window.track = (options) => {
    const t0 = performance.now()
    const ms = () => Math.round(performance.now() - t0)
    const t = new Tether('/rt/', options)
    t.ms = ms
    t.rec = { got: [], events: [], open: null, firstMessage: null }
    t.onmessage = (e) => {
      t.rec.got.push(e.data)
      t.rec.firstMessage ??= ms()
    }
    for (const type of ['open', 'resuming', 'resumed', 'reconnecting', 'transport', 'close', 'error']) {
      t.addEventListener(type, (e) => {
        const ev = { type, at: ms(), transport: t.transport }
        if (e.code !== undefined) Object.assign(ev, { code: e.code, reason: e.reason })
        // A failed attempt: what request, on which transport, what status.
        if (e.request) Object.assign(ev, { request: e.request, failed: e.transport, status: e.status })
        if (type == 'close') ev.wasClean = e.wasClean
        if (type == 'open') t.rec.open ??= ev.at
        t.rec.events.push(ev)
      })
    }
    return t
  }
  // wait resolves to whether cond() holds, once it does, ms have passed, or
  // the session is closed.
  window.wait = async (t, cond, ms) => {
    const end = Date.now() + ms
    while (!cond() && Date.now() < end && t.readyState != Tether.CLOSED) await new Promise((r) => setTimeout(r, 10))
    return cond()
  }
  window.seen = (t) => ({
    readyState: t.readyState,
    transport: t.transport,
    bufferedAmount: t.bufferedAmount,
    received: t.rec.got.length,
    last: t.rec.got.slice(-3),
    events: t.rec.events,
  })
  // phase sends tag1 .. tagN (each followed by pad), then "stream S", and waits up to ms for the
  // echoes and the streamed "1" .. "S"; want lists what sent before (the
  // messages of an outage) adds to what is expected.
  window.phase = async (t, { tag, n, stream = 0, ms = 30000, want = [], pad = '' }) => {
    want = [...want]
    for (let i = 1; i <= n; i++) t.send(tag + i + pad), want.push(tag + i + pad)
    if (stream) t.send('stream ' + stream)
    for (let i = 1; i <= stream; i++) want.push(String(i))
    const ok = await wait(t, () => t.rec.got.length >= want.length, ms)
    return { tag, ok, want, got: t.rec.got.splice(0), seen: ok ? undefined : seen(t) }
  }
  // begin starts window.t on mode (null: the automatic choice), then
  // waits for the first echo and phase a, into window.phases.
  window.begin = async (mode) => {
    const t = (window.t = track(mode ? { transports: [mode] } : undefined))
    t.send('first')
    window.phases = [await phase(t, { tag: 'first', n: 0, want: ['first'] }), await phase(t, { tag: 'a', n: 20, stream: 50 })]
  }
  window.finish = async (t) => {
    t.close(1000, 'done')
    const closed = await wait(t, () => t.readyState == Tether.CLOSED, 10000)
    return { closed, transport: t.transport, rec: t.rec, seen: seen(t) }
  }
}

/**
 * counts compares the messages received with those expected: lost are
 * missing, duplicated arrived more than once or were not expected,
 * reordered is whether the first arrivals are out of order.
 */
const counts = (got, want) => {
  const gotSet = new Set(got)
  const wantSet = new Set(want)
  const firsts = got.filter((g, i) => got.indexOf(g) == i && wantSet.has(g))
  return {
    lost: want.filter((w) => !gotSet.has(w)).length,
    duplicated: got.length - gotSet.size + [...gotSet].filter((g) => !wantSet.has(g)).length,
    reordered: firsts.join() != want.filter((w) => gotSet.has(w)).join(),
  }
}

/** sum adds up the counts of several phases. */
const sum = (phases) =>
  phases
    .map((p) => counts(p.got, p.want))
    .reduce((a, c) => ({ lost: a.lost + c.lost, duplicated: a.duplicated + c.duplicated, reordered: a.reordered || c.reordered }))

/**
 * run starts setup and n pages on it (each tab has its own sessionStorage,
 * where the client remembers its transport), and runs
 * scenario(pages[0], server, pages).
 */
const run = async (setup, scenario, n = 1) => {
  const server = await startGoServer(dir, {
    pkg: './internal/hostile/hostileserver',
    args: ['-setup', setup, '-readme', join(repo, 'README.md')],
  })
  const pages = []
  const errors = []
  try {
    for (let i = 0; i < n; i++) {
      const page = await browser.newPage()
      page.on('pageerror', (e) => errors.push(e))
      pages.push(page)
      await page.goto(server.url)
    }
    const r = await scenario(pages[0], server, pages)
    assert.deepEqual(errors, [], 'uncaught errors in the page')
    return r
  } finally {
    for (const page of pages) await page.close()
    await server.stop()
  }
}

const ms = (v) => (v == null ? 'none' : v + ' ms')

/** eventName shows an event in the table: type, code or failed request, time, transport. */
const eventName = (e) =>
  e.type +
  (e.code ? ' ' + e.code : '') +
  (e.request ? ` (${e.request} ${e.failed} ${e.status})` : '') +
  '@' +
  e.at +
  (e.transport ? ':' + e.transport : '')

/** report prints one line of the table and returns r. */
const report = (setup, r) => {
  const ev = r.rec.events
  const c = sum(r.phases)
  const extra = r.extra ? ', ' + Object.entries(r.extra).map(([k, v]) => `${k} ${v}`).join(', ') : ''
  console.log(
    `hostile chromium ${setup}: transport ${r.transport}, open ${ms(r.rec.open)}, first echo ${ms(r.rec.firstMessage)}, ` +
      `resumes ${ev.filter((e) => e.type == 'resuming').length}, lost ${c.lost}, duplicated ${c.duplicated}, ` +
      `reordered ${c.reordered}${extra}; events ${ev.map(eventName).join(' ')}`,
  )
  return r
}

/**
 * assertWorked: every phase ended (no hang), every message arrived exactly
 * once and in order, and close() ended in a clean close event.
 */
const assertWorked = (r) => {
  for (const p of r.phases) {
    assert.ok(p.ok, `phase ${p.tag}: not every message arrived; saw ${JSON.stringify(p.seen)}`)
    assert.deepEqual(counts(p.got, p.want), { lost: 0, duplicated: 0, reordered: false }, `phase ${p.tag}: got ${p.got}`)
  }
  // Every lost connection the application heard of (resuming) was
  // resumed (resumed) before the next was lost and before the close, and
  // the session was never replaced by a new one (reconnecting).
  let lost = false
  for (const e of r.rec.events) {
    assert.notEqual(e.type, 'reconnecting', `a new session at ${e.at} ms: ${r.rec.events.map(eventName)}`)
    if (e.type == 'resuming' || e.type == 'close') assert.ok(!lost, `${e.type} at ${e.at} ms while a lost connection was not resumed: ${r.rec.events.map(eventName)}`)
    if (e.type == 'resuming') lost = true
    if (e.type == 'resumed') assert.ok(lost, `resumed at ${e.at} ms without resuming`), (lost = false)
  }
  assert.ok(r.closed, `close() did not end in a close event; saw ${JSON.stringify(r.seen)}`)
  assert.deepEqual(r.rec.events.at(-1), { type: 'close', at: r.rec.events.at(-1).at, transport: r.transport, code: 1000, reason: 'done', wasClean: true })
}

/**
 * basic sends "first", 50 echoes and a stream of 2,000 from construction on
 * (so that they cross the open and the move to a better transport), waits
 * (bounded) for the session to be on best, the best transport that works
 * through the setup, runs 50 echoes and a stream of 100 there, then closes.
 */
const basic = (best) => (page) =>
  page.evaluate(async (best) => {
    const t = (window.t = track())
    t.send('first')
    const phases = [await phase(t, { tag: 'a', n: 50, stream: 2000, want: ['first'] })]
    await wait(t, () => t.transport == best, 20000)
    phases.push(await phase(t, { tag: 'b', n: 50, stream: 100 }))
    return { phases, ...(await finish(t)) }
  }, best)

/** onBest adds to r's report when it reached transport best. */
const onBest = (r, best) => {
  const at = r.rec.events.find((e) => (e.type == 'open' || e.type == 'transport') && e.transport == best)?.at
  r.extra = { ...r.extra, [`on ${best}`]: at == null ? 'never' : `at ${at} ms` }
  return r
}

for (const [setup, doc, best] of [
  ['plain', 'README configuration', 'websocket'],
  ['noupgrade', 'Upgrade headers dropped', 'sse'],
  ['antivirus', 'buffering and gzip on every type, no upgrades: streams never deliver their prelude', 'longpoll'],
  ['defaults-host', "a minimal location with nginx's defaults (HTTP/1.0 upstream, no Upgrade, buffering on), Host passed", 'sse'],
]) {
  test(`${setup}: ${doc}`, async () => {
    const r = report(setup, onBest(await run(setup, basic(best)), best))
    assertWorked(r)
    assert.equal(r.transport, best)
    if (best != 'websocket') {
      const failed = r.rec.events.filter((e) => e.type == 'error' && e.failed == 'websocket')
      assert.ok(failed.length > 0, 'the failed WebSocket attempt is an error event the application can log')
    }
  })
}

test("defaults: nginx's defaults send the upstream's name as Host: a browser is refused (403) at once, as an error then a close event", async () => {
  const r = await run('defaults', (page) =>
    page.evaluate(async () => {
      const t = (window.t = track())
      t.send('first')
      const p = await phase(t, { tag: 'a', n: 0, ms: 15000, want: ['first'] })
      return { phases: [p], transport: t.transport, closed: t.readyState == Tether.CLOSED, rec: t.rec, seen: seen(t) }
    }),
  )
  report('defaults', r)
  const ev = r.rec.events
  assert.ok(r.closed, `no close event within 15 s: ${JSON.stringify(r.seen)}`)
  assert.deepEqual(
    ev.map((e) => [e.type, e.code, e.reason]),
    [
      ['error', undefined, undefined],
      ['close', 1008, 'origin not allowed'],
    ],
  )
})

test('hiccup: WebSocket refused (502) at first, then let through: a later upgrade round moves the session from sse to WebSocket', async () => {
  const r = await run('hiccup', async (page, server) => {
    await page.evaluate(async () => {
      const t = (window.t = track())
      t.send('first')
      window.phases = [await phase(t, { tag: 'a', n: 50, stream: 200, want: ['first'] })]
      await wait(t, () => t.transport == 'sse', 20000)
    })
    await server.command('pass-websocket', 'websocket passed')
    return page.evaluate(async () => {
      const passed = t.ms()
      // Messages all along, in phases, until the session is on WebSocket
      // (bounded: longer than the longest delay between rounds, 64 s).
      for (let i = 0; t.transport != 'websocket' && t.ms() - passed < 90000; i++) {
        const p = await phase(t, { tag: 'b' + i + '-', n: 20, stream: 50 })
        phases.push(p)
        if (!p.ok) break
      }
      const extra = { 'on websocket': t.transport == 'websocket' ? `${t.ms() - passed} ms after nginx passed it` : 'never' }
      phases.push(await phase(t, { tag: 'c', n: 50, stream: 100 }))
      const remembered = sessionStorage.getItem('tether:' + t.url)
      return { phases, extra, remembered, ...(await finish(t)) }
    })
  })
  report('hiccup', r)
  assertWorked(r)
  assert.equal(r.transport, 'websocket')
  assert.ok(
    r.rec.events.some((e) => e.type == 'error' && e.failed == 'websocket'),
    'the refused WebSocket attempt is an error event the application can log',
  )
  assert.ok(!r.rec.events.some((e) => e.type == 'resuming'), 'moved by an upgrade round, not by a cut: ' + r.rec.events.map(eventName))
  // Remembered after the first round (sse), then the transport the later round moved to.
  assert.equal(r.remembered, 'websocket')
})

/**
 * The ways of connecting that the idle and outage setups run at once, one
 * session each, each in a tab of its own: null is the automatic choice.
 */
const modes = [null, 'websocket', 'sse', 'streaming', 'longpoll']

/** modeName names a mode in the table. */
const modeName = (m) => m ?? 'automatic'

test('idle: proxy timeouts of 5 s below the 25 s heartbeat, every transport; the client adapts its heartbeat', async () => {
  const rs = await run(
    'idle',
    (_, server, pages) =>
      Promise.all(
        pages.map(async (page, i) => {
          // The heartbeatMs the client asks for on its attaches (PROTOCOL.md 10.4).
          const asked = new Set()
          const note = (u) => {
            const v = new URL(u).searchParams.get('heartbeatMs')
            if (v) asked.add(v)
          }
          page.on('request', (q) => note(q.url()))
          page.on('websocket', (w) => note(w.url()))
          const r = await page.evaluate(
            async ({ mode, adaptMs, idleMs }) => {
              await begin(mode)
              const count = (type) => t.rec.events.filter((e) => e.type == type).length
              const start = t.ms()
              const was = count('resuming')
              // First idle period: until two idle cuts have shown the proxy's
              // timeout (the client then shortens its heartbeat) and the session
              // is back on its transport (bounded).
              await wait(t, () => count('resuming') - was >= 2 && count('resumed') == count('resuming') && t.transport == (mode ?? 'websocket'), adaptMs)
              const idle1 = t.ms() - start
              const before = count('resuming') - was
              // Second idle period: three of the proxy's timeouts.
              await new Promise((r) => setTimeout(r, idleMs))
              const after = count('resuming') - was - before
              phases.push(await phase(t, { tag: 'b', n: 20, stream: 50 }))
              const perMin = (n, ms) => Math.round((n * 60000) / ms)
              const extra = {
                'idle resumes before adapting': `${before} in ${idle1} ms (${perMin(before, idle1)} per idle minute)`,
                after: `${after} in ${idleMs} ms (${perMin(after, idleMs)} per idle minute)`,
              }
              return { mode, phases, before, after, extra, ...(await finish(t)) }
            },
            { mode: modes[i], adaptMs: adaptBoundMs, idleMs: afterIdleMs },
          )
          r.asked = [...asked]
          r.extra['heartbeatMs asked'] = r.asked.join('/') || 'none'
          return r
        }),
      ),
    modes.length,
  )
  for (const r of rs) report('idle ' + modeName(r.mode), r)
  for (const r of rs) {
    assertWorked(r)
    if (r.mode) assert.equal(r.transport, r.mode)
    assert.ok(r.asked.length > 0, `${modeName(r.mode)}: the client never asked for a shorter heartbeat after idle cuts`)
    assert.ok(r.after == 0 || r.after < r.before, `${modeName(r.mode)}: resumes after adapting ${r.after}, before ${r.before}; want fewer`)
  }
})

test('outage: nginx stopped for 4 s mid-session, traffic before, during and after, every transport', async () => {
  const rs = await run(
    'outage',
    async (_, server, pages) => {
      await Promise.all(
        pages.map((page, i) =>
          page.evaluate(async (mode) => {
            await begin(mode)
            // Messages sent while nginx is down, one every 200 ms.
            window.during = 0
            const i = setInterval(() => (during < 20 ? t.send('b' + ++during) : clearInterval(i)), 200)
          }, modes[i]),
        ),
      )
      await server.command(`outage ${outageMs}`, 'outage over', outageMs + 20000)
      return Promise.all(
        pages.map((page, i) =>
          page.evaluate(async (mode) => {
            const over = t.ms()
            await wait(t, () => during == 20, 10000)
            const want = Array.from({ length: 20 }, (_, i) => 'b' + (i + 1))
            phases.push(await phase(t, { tag: 'c', n: 20, stream: 50, ms: 40000, want }))
            const best = mode ?? 'websocket'
            const onBest = await wait(t, () => t.transport == best, 20000)
            const extra = { [`on ${best}`]: onBest ? `${t.ms() - over} ms after the outage` : 'not within 20 s' }
            return { mode, phases, onBest, extra, ...(await finish(t)) }
          }, modes[i]),
        ),
      )
    },
    modes.length,
  )
  for (const r of rs) report('outage ' + modeName(r.mode), r)
  for (const r of rs) {
    assertWorked(r)
    assert.ok(r.rec.events.some((e) => e.type == 'resuming'), `outage ${modeName(r.mode)}: the cut never reached the application`)
    // Attempts refused while nginx was down are error events the application can log.
    assert.ok(r.rec.events.some((e) => e.type == 'error' && e.request), `outage ${modeName(r.mode)}: no error event for a failed attempt`)
    assert.ok(r.onBest, `outage ${modeName(r.mode)}: not back on ${r.mode ?? 'websocket'}: an outage is no evidence against a transport`)
  }
})

test('roundrobin: two independent servers, no shared state', async () => {
  // One session per way of connecting, one after the other: requests
  // alternate between the servers, so a session's requests reach the
  // server that does not hold it at different steps in each. The automatic
  // client meets a 404 on a request made before its session first attached,
  // and falls back to WebSocket alone (one connection, so one server:
  // PROTOCOL.md 10.6); a forced WebSocket works as it is; a forced HTTP
  // transport ends with 4005.
  const rs = await run('roundrobin', (page) =>
    page.evaluate(async (modes) => {
      const rs = []
      for (const mode of modes) {
        const t = track(mode ? { transports: [mode] } : undefined)
        t.send('first')
        const p = await phase(t, { tag: 'a', n: 10, ms: 10000, want: ['first'] })
        // The session worked, or the application got a close event.
        const outcome = p.ok ? 'worked' : t.readyState == Tether.CLOSED ? 'closed' : 'hang'
        const phases = [p]
        // A second phase on the same session, a stream too: exact counts
        // on the connection it ended on.
        if (p.ok) phases.push(await phase(t, { tag: 'b', n: 20, stream: 50, ms: 10000 }))
        rs.push({ mode, outcome, phases, ...(await finish(t)) })
      }
      return rs
    }, modes),
  )
  for (const r of rs) {
    const close = r.rec.events.find((e) => e.type == 'close')
    report('roundrobin ' + modeName(r.mode), { ...r, extra: { outcome: r.outcome, close: close ? `${close.code} ${close.reason}` : 'none' } })
  }
  for (const r of rs) {
    const what = `roundrobin ${modeName(r.mode)}: saw ${JSON.stringify(r.seen)}`
    assert.notEqual(r.outcome, 'hang', `${what}: neither every echo nor a close event within the bound`)
    if (r.mode == null || r.mode == 'websocket') {
      // Every message echoed once, in order, on WebSocket.
      assert.equal(r.outcome, 'worked', `${what}: the session did not work`)
      assertWorked(r)
      assert.equal(r.transport, 'websocket', what)
    }
    if (r.mode == null)
      assert.ok(
        r.rec.events.some((e) => e.type == 'error' && e.status == 404),
        `${what}: the request answered 404 before the fall back is an error event the application can log`,
      )
    if (r.outcome == 'worked') assertWorked(r)
    assert.ok(r.closed, `${what}: close() did not end in a close event`)
    if (r.outcome == 'closed') {
      const close = r.rec.events.findIndex((e) => e.type == 'close')
      assert.equal(r.rec.events[close - 1]?.type, 'error', `${what}: a close that is not clean follows an error event`)
      assert.equal(r.rec.events[close].code, 4005, `${what}: a server without the session is 4005 session unknown (4001 would say it expired)`)
      assert.ok(
        r.rec.events.some((e) => e.type == 'error' && e.status == 404),
        `${what}: the request answered 404 is an error event the application can log`,
      )
    }
  }
})

/**
 * allModes runs setup with one tab per mode, each running begin(mode), then
 * scenario(mode) in the page (window.t is the session, window.phases its
 * phases so far), and reports each tab's result as "setup mode".
 */
const allModes = async (setup, scenario, arg) => {
  const rs = await run(
    setup,
    (_, server, pages) =>
      Promise.all(
        pages.map((page, i) =>
          page.evaluate(
            async ({ mode, scenario, arg }) => {
              await begin(mode)
              return { mode, ...(await new Function('return ' + scenario)()(mode, arg)) }
            },
            { mode: modes[i], scenario: scenario.toString(), arg },
          ),
        ),
      ),
    modes.length,
  )
  for (const r of rs) report(`${setup} ${modeName(r.mode)}`, r)
  return rs
}

test('keepalive: upstream connections kept (keepalive 16) and shared by the requests of every tab, every transport', async () => {
  const rs = await allModes('keepalive', async (mode) => {
    phases.push(await phase(t, { tag: 'b', n: 50, stream: 100 }))
    await wait(t, () => t.transport == (mode ?? 'websocket'), 20000)
    return { phases, ...(await finish(t)) }
  })
  for (const r of rs) assertWorked(r), assert.equal(r.transport, r.mode ?? 'websocket')
})

test('buffered-requests: nginx buffers bodies and answers those over 16 KiB 413; bursts arrive exactly, a message nginx refuses ends the session (1009)', async () => {
  const rs = await allModes(
    'buffered-requests',
    async (mode, size) => {
      // 40 messages of 1 KiB at once: more than nginx passes in one body.
      phases.push(await phase(t, { tag: 'b', n: 40, pad: '.'.repeat(1000) }))
      const best = mode ?? 'websocket'
      await wait(t, () => t.transport == best, 20000)
      const big = 'x'.repeat(size + 1)
      t.send(big)
      if (best == 'websocket') {
        phases.push(await phase(t, { tag: 'c', n: 0, want: [big] }))
        return { phases, extra: { 'large message': 'echoed' }, ...(await finish(t)) }
      }
      // Over a send request nginx never passes it: a close event, bounded.
      const transport = t.transport
      const closed = await wait(t, () => t.readyState == Tether.CLOSED, 15000)
      return { phases, transport, closed, rec: t.rec, seen: seen(t), extra: { 'large message': closed ? 'closed' : 'hang' } }
    },
    16384,
  )
  for (const r of rs) {
    const what = `buffered-requests ${modeName(r.mode)}`
    if (!r.mode) {
      assertWorked(r)
      assert.equal(r.transport, 'websocket')
      continue
    }
    for (const p of r.phases) assert.deepEqual(counts(p.got, p.want), { lost: 0, duplicated: 0, reordered: false }, `${what}: phase ${p.tag}`)
    if (r.mode == 'websocket') {
      assertWorked(r)
      continue
    }
    assert.ok(r.closed, `${what}: a message nginx refuses neither came back nor closed the session: ${JSON.stringify(r.seen)}`)
    const ev = r.rec.events
    assert.deepEqual(
      { ...ev.at(-1), at: 0 },
      { type: 'close', at: 0, transport: r.transport, code: 1009, reason: 'message too big', wasClean: false },
      `${what}: ${ev.map(eventName)}`,
    )
    assert.ok(
      ev.some((e) => e.type == 'error' && e.request == 'send' && e.status == 413),
      `${what}: the send answered 413 is an error event the application can log: ${ev.map(eventName)}`,
    )
  }
})

test('slowidle: buffering on (X-Accel-Buffering honoured), proxy_read_timeout 3s below the heartbeat, every transport', async () => {
  const rs = await allModes(
    'slowidle',
    async (mode, idleMs) => {
      const was = t.rec.events.filter((e) => e.type == 'resuming').length
      await new Promise((r) => setTimeout(r, idleMs))
      const resumes = t.rec.events.filter((e) => e.type == 'resuming').length - was
      phases.push(await phase(t, { tag: 'b', n: 20, stream: 50 }))
      await wait(t, () => t.transport == (mode ?? 'websocket'), 20000)
      return { phases, extra: { 'idle resumes': `${resumes} in ${idleMs} ms` }, ...(await finish(t)) }
    },
    12000,
  )
  for (const r of rs) assertWorked(r), assert.equal(r.transport, r.mode ?? 'websocket')
})
