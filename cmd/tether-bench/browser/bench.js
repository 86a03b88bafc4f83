// The browser half of `tether-bench -browser`: measures one system at a
// time in this page, on loopback, against the bench server that serves it.
// The driver (drive.mjs) calls window.measure(name, options) for each
// system and collects the results.
//
// Systems: raw/websocket (the browser's WebSocket against the raw gorilla
// echo), tether/<transport> (the bundled client) and sockjs/<transport>
// (sockjs-client). Each server echoes every message and answers "S:<n>"
// with n messages of 64 bytes (server.go).

import { Tether } from '/tether/tether.mjs'

const PAYLOAD = 64
const streamPayload = 's'.repeat(PAYLOAD)

// sockjs-go closes a session with 2010 when a poll or stream arrives before
// it has detached the previous one (a race of its own); sockjs-client then
// ends the session. The bench counts these refusals and opens a new session,
// as the Go bench does.
const REFUSED = 2010

/**
 * openers open a session of each family and resolve to a link: send(text),
 * close(), and the handlers onmessage(text) and onclose(code, reason) that
 * the measurement sets.
 */
const openers = {
  raw: () => {
    const ws = new WebSocket(location.origin.replace('http', 'ws') + '/raw')
    return wrap(ws, () => 'websocket')
  },
  tether: (transport) => {
    const t = new Tether('/tether/', { transports: [transport] })
    return wrap(t, () => t.transport)
  },
  sockjs: (transport) => {
    const s = new SockJS('/sockjs', null, { transports: [transport] })
    return wrap(s, () => s.transport)
  },
}

/** wrap makes a link of a WebSocket-shaped client c. */
const wrap = (c, transport) =>
  new Promise((resolve, reject) => {
    const link = { send: (m) => c.send(m), close: () => c.close(), transport, onmessage() {}, onclose() {} }
    c.onmessage = (e) => link.onmessage(e.data)
    c.onopen = () => resolve(link)
    c.onclose = (e) => (reject(new Error(`closed: ${e.code} ${e.reason}`)), link.onclose(e.code, e.reason))
  })

/** wait resolves with p, or rejects when ms pass first. */
const wait = (p, ms, what) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(what + ': nothing within ' + ms + ' ms')), ms)
    p.then(resolve, reject).finally(() => clearTimeout(timer))
  })

/**
 * Session is the measured session of one system: the link open now, and a
 * new one after a refusal (sockjs-go's 2010). step(start) runs one exchange:
 * start(link) sends and returns a promise of its end, which fails when the
 * link closes; after a refusal step opens a new link and starts again.
 */
class Session {
  constructor(family, transport, timeoutMs) {
    Object.assign(this, { family, transport, timeoutMs, refused: 0 })
  }

  async open() {
    this.link = await wait(openers[this.family](this.transport), this.timeoutMs, 'open')
    this.link.onclose = (code, reason) => this.closed?.(code, reason)
  }

  async step(what, start) {
    for (;;) {
      try {
        return await wait(
          new Promise((resolve, reject) => {
            this.closed = (code, reason) => reject(Object.assign(new Error(`${what}: closed ${code} ${reason}`), { code }))
            start(this.link).then(resolve, reject)
          }),
          this.timeoutMs,
          what,
        )
      } catch (e) {
        if (e.code != REFUSED || this.family != 'sockjs') throw e
        this.refused++
        await this.open()
      }
    }
  }

  close() {
    this.closed = null
    this.link?.close()
  }
}

/**
 * echo makes warmup + n round trips of 64-byte messages, one at a time,
 * and times the last n: their round-trip times (µs, in order) and the
 * milliseconds they took in all. The driver merges the rounds.
 */
const echo = async (s, n, warmup) => {
  const rtts = []
  let wrong = 0
  let start = 0
  for (let i = 0; i < warmup + n; i++) {
    if (i == warmup) start = performance.now()
    const want = String(i).padStart(PAYLOAD, 'e')
    const t0 = performance.now()
    await s.step('echo ' + i, (link) => {
      const got = new Promise((resolve) => (link.onmessage = (d) => (d === want ? resolve() : wrong++)))
      link.send(want)
      return got
    })
    if (i >= warmup) rtts.push((performance.now() - t0) * 1000)
  }
  return { rtts, ms: performance.now() - start, wrong }
}

/**
 * stream asks for n messages and times them until the last arrives; after
 * a refusal it asks the new session for the rest.
 */
const stream = async (s, n) => {
  let got = 0
  let wrong = 0
  const t0 = performance.now()
  await s.step('stream', (link) => {
    const all = new Promise((resolve) => {
      link.onmessage = (d) => {
        if (d !== streamPayload) wrong++
        else if (++got == n) resolve()
      }
    })
    link.send('S:' + (n - got))
    return all
  })
  const ms = performance.now() - t0
  return { messages: got, perSec: got / (ms / 1000), ms, wrong }
}

/** held are the sessions kept from one turn to the next, by name (see measure's hold). */
const held = new Map()

/**
 * measure runs the echo and the stream on a session of name ("tether/sse")
 * and resolves to their results (a failure is reported in err, beside what
 * was measured before it). The session is opened for the turn and closed
 * after it; with hold, it is kept for the next turn of the same system
 * (until window.release), as an application keeps its connection.
 */
window.measure = async (name, { echoN, warmup, streamN, timeoutMs, hold }) => {
  const [family, transport] = name.split('/')
  document.getElementById('status').textContent = 'measuring ' + name
  const out = { name }
  let s = held.get(name)
  const refused = s?.refused || 0 // before this turn
  try {
    if (!s) {
      s = new Session(family, transport, timeoutMs)
      await s.open()
      if (hold) held.set(name, s)
    }
    out.transport = s.link.transport()
    if (echoN) out.echo = await echo(s, echoN, warmup)
    if (streamN) out.stream = await stream(s, streamN)
  } catch (e) {
    out.err = String(e.message || e)
    if (s) held.delete(name), s.close()
  } finally {
    if (s) out.refused = s.refused - refused
    if (s && !hold) s.close()
  }
  document.getElementById('status').textContent = 'done ' + name
  return out
}

/** release closes every held session. */
window.release = () => {
  for (const s of held.values()) s.close()
  held.clear()
}

window.benchReady = true
document.getElementById('status').textContent = 'ready'
