// The bundled client in real Chromium against a cluster of three Tether
// echo nodes, each a process of its own, joined by a bus on a real engine
// (redis-server, nats-server), behind a real nginx doing round robin with no
// stickiness (js-client/testserver/cluster): any request of a session may
// reach any node, and a node that does not hold the session relays it over
// the bus to the one that does.
//
// For each bus: every transport forced, and the automatic choice, carry
// messages each way exactly (nothing lost, duplicated or reordered); and a
// node killed mid-run ends its sessions with 4006, after which their
// clients negotiate new sessions by themselves, while the sessions of the
// other nodes go on exactly. And with the nodes durable (their sessions'
// state in Redis), over WebSocket and long polling, the node that owns a
// session is killed twice mid-run and started again: another node takes the
// session over each time, and it goes on, the same session, every message
// and echo exactly once. Every wait is bounded; no assertion is on time.
// CLUSTER_BUSES=redis (comma-separated) runs one bus only.

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

/** The buses the suite runs on. */
const buses = (process.env.CLUSTER_BUSES || 'redis,nats').split(',')

/** The ways of connecting, one tab each: null is the automatic choice. */
const modes = [null, 'websocket', 'sse', 'streaming', 'longpoll']
const modeName = (m) => m ?? 'automatic'

/** Messages each way per transport: echoes of the page's, then a stream. */
const echoes = 2000
const streamed = 1000

/**
 * pageHelpers runs in every page. track() makes a Tether that records what
 * it receives, its events (with the session at the time and how many
 * messages it had sent), and the sessions it had; exchange() sends numbered
 * messages, a stream command and an end marker, and waits, bounded, for
 * the end marker's echo; wait() waits for a condition with a bound.
 */
function pageHelpers() {
  window.track = (mode) => {
    const t = new Tether('/rt/', { ...(mode ? { transports: [mode] } : {}), minDelay: 50, maxDelay: 1000 })
    t.got = []
    t.events = []
    t.sent = 0
    t.sessions = []
    t.onmessage = (e) => t.got.push(e.data)
    for (const type of ['open', 'resuming', 'resumed', 'reconnecting', 'transport', 'close', 'error']) {
      t.addEventListener(type, (e) => {
        const ev = { type, transport: t.transport, session: t.session, sent: t.sent }
        if (e.code !== undefined) Object.assign(ev, { code: e.code, reason: e.reason })
        if (e.request) Object.assign(ev, { request: e.request, failed: e.transport, status: e.status })
        if (type == 'open' && t.sessions.at(-1) != t.session) t.sessions.push(t.session)
        t.events.push(ev)
      })
    }
    const send = t.send.bind(t)
    t.send = (m) => (t.sent++, send(m))
    return t
  }
  // wait resolves to whether cond() holds, once it does, ms have passed,
  // or the session t (if given) is closed.
  window.wait = async (cond, ms, t) => {
    const end = Date.now() + ms
    while (!cond() && Date.now() < end && t?.readyState != Tether.CLOSED) await new Promise((r) => setTimeout(r, 10))
    return cond()
  }
  // exchange sends tag1 .. tagN, "stream S" and the marker "end-tag", and
  // resolves, once the marker's echo arrived or after ms, to what arrived
  // meanwhile and what was expected.
  window.exchange = async (t, { tag, n, stream = 0, ms = 60000 }) => {
    const from = t.got.length
    const want = []
    for (let i = 1; i <= n; i++) t.send(tag + i), want.push(tag + i)
    if (stream) t.send('stream ' + stream)
    for (let i = 1; i <= stream; i++) want.push(String(i))
    t.send('end-' + tag), want.push('end-' + tag)
    const ok = await wait(() => t.got.includes('end-' + tag), ms, t)
    return { tag, ok, want, got: t.got.slice(from) }
  }
  // pump sends tag1, tag2, ... in t, five every 10 ms, while it has sent
  // fewer than t.limit (raise it to send more).
  window.pump = (t, tag) => {
    t.flow = 0
    t.limit = 0
    const i = setInterval(() => {
      if (t.readyState == Tether.CLOSED) return clearInterval(i)
      for (let j = 0; j < 5 && t.flow < t.limit; j++) t.send(tag + ++t.flow)
    }, 10)
  }
  window.summary = (t) => ({
    readyState: t.readyState,
    transport: t.transport,
    session: t.session,
    sessions: t.sessions,
    sent: t.sent,
    received: t.got.length,
    events: t.events,
  })
  window.finish = async (t) => {
    t.close(1000, 'done')
    const closed = await wait(() => t.readyState == Tether.CLOSED, 10000, t)
    return { closed, ...summary(t) }
  }
}

/**
 * compare says how got differs from want: counts of lost and duplicated
 * messages, whether the first arrivals are out of order, and where the two
 * first differ. Exact means got equals want.
 */
const compare = (got, want) => {
  const gotSet = new Set(got)
  const wantSet = new Set(want)
  const firsts = got.filter((g, i) => got.indexOf(g) == i && wantSet.has(g))
  const at = got.findIndex((g, i) => g !== want[i])
  return {
    exact: got.length == want.length && at < 0,
    lost: want.filter((w) => !gotSet.has(w)).length,
    duplicated: got.length - gotSet.size + [...gotSet].filter((g) => !wantSet.has(g)).length,
    reordered: firsts.join() != want.filter((w) => gotSet.has(w)).join(),
    firstDifference: at < 0 ? null : { at, got: got.slice(at, at + 3), want: want.slice(at, at + 3) },
  }
}

/** assertExact asserts that exchange e delivered exactly what it sent. */
const assertExact = (e, what) => {
  const c = compare(e.got, e.want)
  assert.ok(e.ok, `${what}: the end marker never came back; ${JSON.stringify(c)}; saw ${JSON.stringify(e.seen)}`)
  assert.ok(c.exact, `${what}: not exact: ${JSON.stringify(c)}`)
}

/** owner returns the id of the node that holds a session: what precedes the first '.'. */
const owner = (session) => session?.split('.')[0]

/** eventName shows an event in a report line. */
const eventName = (e) =>
  e.type + (e.code ? ' ' + e.code : '') + (e.request ? ` (${e.request} ${e.failed} ${e.status})` : '') + (e.transport ? ':' + e.transport : '')

/**
 * assertResumedOnly: every lost connection the application heard of
 * (resuming) was resumed before the next was lost and before the close,
 * and the session was never replaced by a new one (reconnecting).
 */
const assertResumedOnly = (events, what) => {
  let lost = false
  for (const e of events) {
    assert.notEqual(e.type, 'reconnecting', `${what}: a new session: ${events.map(eventName)}`)
    if (e.type == 'resuming' || e.type == 'close') assert.ok(!lost, `${what}: ${e.type} while a lost connection was not resumed: ${events.map(eventName)}`)
    if (e.type == 'resuming') lost = true
    if (e.type == 'resumed') lost = false
  }
}

/** assertClosed: close() ended in a clean close event with 1000. */
const assertClosed = (r, what) => {
  assert.ok(r.closed, `${what}: close() did not end in a close event; saw ${JSON.stringify(r)}`)
  const last = r.events.at(-1)
  assert.deepEqual([last.type, last.code, last.reason], ['close', 1000, 'done'], `${what}: ${r.events.map(eventName)}`)
}

/**
 * run starts the cluster on bus, with args added to its flags, and a tab
 * per mode of tabs on it, each on a host of its own, and runs
 * scenario(server, pages).
 */
const run = async (bus, scenario, { tabs = modes, args = [] } = {}) => {
  const server = await startGoServer(dir, {
    pkg: './js-client/testserver/cluster',
    args: ['-bus', bus, '-readme', join(repo, 'README.md'), '-hosts', String(tabs.length), ...args],
  })
  const pages = []
  const errors = []
  try {
    for (const [i, _] of tabs.entries()) {
      const page = await browser.newPage()
      page.on('pageerror', (e) => errors.push(e))
      pages.push(page)
      // A host of its own per tab: Chromium keeps at most 6 HTTP/1.1
      // connections per host, and the streams and polls of two sessions
      // and their sends would otherwise wait for the other tabs'.
      await page.goto(server.url.replace('127.0.0.1', '127.0.0.' + (i + 1)))
    }
    const r = await scenario(server, pages)
    assert.deepEqual(errors, [], 'uncaught errors in the page')
    return r
  } finally {
    for (const page of pages) await page.close()
    await server.stop()
  }
}

for (const bus of buses) {
  test(`${bus}: every transport forced, and the automatic choice: ${echoes} messages each way and a stream of ${streamed}, exact`, async () => {
    const rs = await run(bus, (_, pages) =>
      Promise.all(
        pages.map((page, i) =>
          page.evaluate(
            async ({ mode, echoes, streamed }) => {
              const t = track(mode)
              const e = await exchange(t, { tag: 'm', n: echoes, stream: streamed })
              return { mode, e, ...(await finish(t)) }
            },
            { mode: modes[i], echoes, streamed },
          ),
        ),
      ),
    )
    for (const r of rs) {
      const c = compare(r.e.got, r.e.want)
      console.log(
        `cluster chromium ${bus} ${modeName(r.mode)}: transport ${r.transport}, session ${r.session}, sent ${r.sent}, ` +
          `received ${r.e.got.length} of ${r.e.want.length}, lost ${c.lost}, duplicated ${c.duplicated}, reordered ${c.reordered}; events ${r.events.map(eventName).join(' ')}`,
      )
    }
    for (const r of rs) {
      const what = `${bus} ${modeName(r.mode)}`
      assertExact(r.e, what)
      assertResumedOnly(r.events, what)
      assertClosed(r, what)
      assert.equal(r.sessions.length, 1, `${what}: sessions ${r.sessions}`)
      if (r.mode) assert.equal(r.transport, r.mode, `${what}: ran on ${r.transport}`)
    }
  })

  test(`${bus}: a node killed mid-run: its sessions get 4006 and their clients negotiate new ones by themselves; the other sessions go on exactly`, async () => {
    const rs = await run(bus, async (server, pages) => {
      // Two sessions a tab, so that the killed node holds some of the ten
      // sessions and not all of them.
      const before = await Promise.all(
        pages.map((page, i) =>
          page.evaluate(async (mode) => {
            window.ts = [track(mode), track(mode)]
            const es = await Promise.all(ts.map((t) => exchange(t, { tag: 'a', n: 100 })))
            es.forEach((e, k) => e.ok || (e.seen = summary(ts[k])))
            return { es, sessions: ts.map((t) => t.session) }
          }, modes[i]),
        ),
      )
      for (const [i, b] of before.entries()) b.es.forEach((e, k) => assertExact(e, `${bus} ${modeName(modes[i])} session ${k}, before the kill`))
      const sessions = before.flatMap((b) => b.sessions)
      const victim = owner(sessions[0])
      assert.ok(
        sessions.some((s) => owner(s) != victim),
        `every session is held by one node (${victim}): nginx's round robin reached no other node for negotiate`,
      )
      // Messages b1 .. b150, one every 20 ms, in every session; the node
      // dies while they flow.
      await Promise.all(
        pages.map((page) =>
          page.evaluate(() => {
            for (const t of ts) {
              t.flow = 0
              const i = setInterval(() => (t.flow < 150 && t.readyState != Tether.CLOSED ? t.send('b' + ++t.flow) : clearInterval(i)), 20)
            }
          }),
        ),
      )
      await Promise.all(pages.map((page) => page.evaluate(() => wait(() => ts.every((t) => t.flow >= 40), 20000))))
      await server.command(`kill ${victim}`, `killed ${victim}`)
      return Promise.all(
        pages.map((page, i) =>
          page.evaluate(
            async ({ mode, victim }) => {
              const owner = (s) => s?.split('.')[0]
              return Promise.all(
                ts.map(async (t, k) => {
                  const first = t.sessions[0]
                  const held = owner(first) == victim
                  await wait(() => t.flow >= 150, 20000, t)
                  // The sessions of the killed node: a reconnecting event,
                  // then open on a new session. The others: every b echo.
                  const settled = held
                    ? await wait(() => t.sessions.length > 1 && t.readyState == Tether.OPEN, 40000, t)
                    : await wait(() => t.got.includes('b150'), 40000, t)
                  const b = t.got.filter((m) => /^b\d+$/.test(m))
                  const c = await exchange(t, { tag: 'c', n: 100 })
                  return { mode, k, first, held, settled, b, c, ...(await finish(t)) }
                }),
              )
            },
            { mode: modes[i], victim },
          ),
        ),
      ).then((rss) => ({ victim, rs: rss.flat() }))
    })
    const { victim } = rs
    for (const r of rs.rs) {
      console.log(
        `cluster chromium ${bus} kill ${modeName(r.mode)}/${r.k}: ${r.held ? 'held by the killed node' : 'held by another node'} (${victim}), ` +
          `sessions ${r.sessions.join(' ')}, b received ${r.b.length} of 150, transport ${r.transport}; events ${r.events.map(eventName).join(' ')}`,
      )
    }
    assert.ok(rs.rs.some((r) => r.held) && rs.rs.some((r) => !r.held))
    for (const r of rs.rs) {
      const what = `${bus} kill ${modeName(r.mode)}/${r.k}`
      assert.ok(r.settled, `${what}: not settled: ${JSON.stringify(r)}`)
      assertExact(r.c, `${what}, after the kill`)
      assertClosed(r, what)
      if (r.mode) assert.equal(r.transport, r.mode, `${what}: ran on ${r.transport}`)
      if (!r.held) {
        // Not a message lost, duplicated or reordered across the kill.
        assertResumedOnly(r.events, what)
        assert.deepEqual(r.sessions, [r.first], `${what}: the session changed`)
        const all = Array.from({ length: 150 }, (_, i) => 'b' + (i + 1))
        assert.deepEqual(r.b, all, `${what}: ${JSON.stringify(compare(r.b, all))}`)
        continue
      }
      // 4006 told the client to negotiate a new session, which it did by
      // itself, on a node alive; what arrived of the old session's
      // messages arrived once and in order, and every message sent once the
      // new session was open came back.
      const reconnecting = r.events.findIndex((e) => e.type == 'reconnecting')
      assert.ok(reconnecting >= 0, `${what}: no reconnecting event: ${r.events.map(eventName)}`)
      assert.equal(r.events[reconnecting].code, 4006, `${what}: ${r.events.map(eventName)}`)
      const open = r.events.findIndex((e, i) => i > reconnecting && e.type == 'open')
      assert.ok(open > reconnecting, `${what}: no open after reconnecting: ${r.events.map(eventName)}`)
      assert.equal(r.sessions.length, 2, `${what}: sessions ${r.sessions}`)
      assert.notEqual(owner(r.sessions[1]), victim, `${what}: the new session is held by the killed node`)
      assert.ok(!r.events.some((e) => e.type == 'close' && e.code != 1000), `${what}: ${r.events.map(eventName)}`)
      const nums = r.b.map((m) => +m.slice(1))
      assert.ok(
        nums.every((n, i) => i == 0 || n > nums[i - 1]),
        `${what}: the b messages arrived duplicated or out of order: ${r.b}`,
      )
      // Before b, the session sent a1 .. a100 and end-a.
      const bAtOpen = Math.min(150, r.events[open].sent - 101)
      const after = Array.from({ length: 150 - bAtOpen }, (_, i) => 'b' + (bAtOpen + i + 1))
      assert.deepEqual(r.b.slice(r.b.length - after.length), after, `${what}: the messages sent on the new session did not all come back`)
    }
  })
}

/** The durable test: its transports, messages each way, kills of each session's owner, and lease. */
const durableModes = ['websocket', 'longpoll']
const durableEchoes = 3000
const durableKills = 2
const durableLeaseTTL = '1s'
/** How many messages past its kill point a session sends while its owner is killed. */
const killLead = 300

for (const bus of buses) {
  test(
    `${bus}, durable nodes: over WebSocket and long polling, the owner of each session killed ${durableKills} times mid-run and started again: ` +
      `${durableEchoes} messages each way, exact, the same session throughout`,
    async () => {
      const r = await run(
        bus,
        async (server, pages) => {
          const sessions = await Promise.all(
            pages.map((page, i) =>
              page.evaluate(async (mode) => {
                window.t = track(mode)
                pump(t, 'd')
                await wait(() => t.readyState == Tether.OPEN, 20000, t)
                return t.session
              }, durableModes[i]),
            ),
          )
          const state = (i) => pages[i].evaluate(() => ({ flow: t.flow, got: t.got.length, readyState: t.readyState }))
          const limit = (i, n) => pages[i].evaluate((n) => (t.limit = Math.max(t.limit, n)), Math.min(n, durableEchoes))
          const owner = async (i) => (await server.command(`owner ${sessions[i]}`, new RegExp(`^owner ${sessions[i]} `))).split(' ')[2]
          const kills = sessions.map(() => [])
          const log = []
          for (let k = 1; k <= durableKills; k++) {
            const point = Math.floor((durableEchoes * k) / (durableKills + 1))
            for (const i of sessions.keys()) await limit(i, point + killLead)
            for (const i of sessions.keys()) {
              if (kills[i].length >= k) continue // the kill of another session's owner was its owner's
              // Kill while it sends: once it has sent its kill point, with
              // killLead more to send.
              const sent = await pages[i].evaluate((point) => wait(() => t.flow >= point, 30000, t), point)
              assert.ok(sent, `${bus} ${durableModes[i]}: did not send ${point} messages: ${JSON.stringify(await state(i))}`)
              let node = 'none'
              for (const end = Date.now() + 20000; node == 'none' && Date.now() < end; ) {
                node = await owner(i)
                if (node == 'none') await new Promise((r) => setTimeout(r, 50))
              }
              assert.notEqual(node, 'none', `${bus} ${durableModes[i]}: no node owns ${sessions[i]}`)
              const victims = []
              for (const j of sessions.keys()) if ((await owner(j)) == node) victims.push(j)
              await server.command(`kill ${node}`, `killed ${node}`)
              const at = Date.now()
              const before = await Promise.all(victims.map(state))
              for (const [v, j] of victims.entries()) {
                kills[j].push({ node, inFlight: before[v].flow - before[v].got })
                // Something to send after the kill, whatever it had sent: a
                // session whose new owner (after an earlier kill of this
                // round) is killed too may have sent its whole limit.
                await limit(j, Math.max(Math.floor((durableEchoes * (k + 1)) / (durableKills + 1)), before[v].flow) + killLead)
              }
              log.push(`killed ${node}, owner of ${victims.map((j) => durableModes[j]).join(' ')}`)
              // Wait until every session of the killed node has gone on: an
              // echo beyond what had come before the kill.
              for (const [v, j] of victims.entries()) {
                // One that had sent and received everything has nothing to go on with (the end checks it).
                if (before[v].got >= durableEchoes) continue
                const on = await pages[j].evaluate(({ mark }) => wait(() => t.got.length > mark, 40000, t), { mark: before[v].got })
                assert.ok(on, `${bus} ${durableModes[j]}: did not go on within 40 s of the kill of ${node}: ${JSON.stringify(await state(j))}`)
                kills[j].at(-1).wentOnAfter = Date.now() - at
              }
            }
          }
          return Promise.all(
            pages.map((page, i) =>
              page.evaluate(
                async ({ mode, n, first }) => {
                  t.limit = n
                  const ok = await wait(() => t.got.length >= n, 60000, t)
                  const want = Array.from({ length: n }, (_, i) => 'd' + (i + 1))
                  return { mode, first, e: { tag: 'd', ok, want, got: t.got.slice() }, ...(await finish(t)) }
                },
                { mode: durableModes[i], n: durableEchoes, first: sessions[i] },
              ),
            ),
          ).then((rs) => rs.map((r, i) => ({ ...r, kills: kills[i], log })))
        },
        { tabs: durableModes, args: ['-state', 'true', '-lease-ttl', durableLeaseTTL] },
      )
      for (const x of r) {
        const c = compare(x.e.got, x.e.want)
        console.log(
          `cluster chromium ${bus} durable ${x.mode}: sent ${x.sent}, received ${x.e.got.length} of ${x.e.want.length}, lost ${c.lost}, duplicated ${c.duplicated}, ` +
            `reordered ${c.reordered}; owner killed ${x.kills.length} times (in flight ${x.kills.map((k) => k.inFlight).join(' ')}, ` +
            `went on after ${x.kills.map((k) => k.wentOnAfter + ' ms').join(' ')}); sessions ${x.sessions.join(' ')}; events ${x.events.map(eventName).join(' ')}`,
        )
      }
      console.log(`cluster chromium ${bus} durable: ${r[0].log.join('; ')}`)
      for (const x of r) {
        const what = `${bus} durable ${x.mode}`
        assert.ok(x.kills.length >= durableKills, `${what}: its owner was killed ${x.kills.length} times, want ${durableKills}`)
        assertExact(x.e, what)
        assertResumedOnly(x.events, what)
        assert.deepEqual(x.sessions, [x.first], `${what}: the session changed`)
        assert.equal(x.transport, x.mode, `${what}: ran on ${x.transport}`)
        assertClosed(x, what)
      }
    },
  )
}
