// The driver of `tether-bench -browser`: loads the bench page in Debian's
// Chromium (playwright-core, as js-client's browser tests do), one page for
// every system, and writes one JSON line per system to stdout.
//
// The echo is measured in rounds, the systems taking turns (in order, then
// in reverse order, and so on): on a shared machine the load drifts over a
// run, and a system measured in one stretch of it would be compared with
// another measured in a quieter or busier one. The rounds are many and
// short, so that the systems compared see the same drift, and a first
// round is not measured: the browser, the page's code and the servers warm
// up in it, for every system alike. A WebSocket system keeps its session
// from one turn to the next (an application keeps its connection); an HTTP
// one opens a session per turn, as an idle stream or poll held between
// turns would take one of the browser's six connections per host. The
// stream follows, in rounds the same way, each of streamN messages.
//
//	node cmd/tether-bench/browser/drive.mjs '{"url":"http://127.0.0.1:PORT/page/","systems":["raw/websocket"],
//	  "echoN":2000,"httpEchoN":1000,"rounds":20,"httpEvery":4,"warmup":20,"streamN":20000,"streamRounds":5,"timeoutMs":30000}'
//
// Tether-bench runs it; it is not meant to be run by hand.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startBrowser } from '../../../js-client/test/browser/harness.mjs'

const cfg = JSON.parse(process.argv[2])
const dir = mkdtempSync(join(tmpdir(), 'tether-bench-browser-'))
let browser
try {
  browser = await startBrowser(dir)
  // One page measures every system, so that no system depends on the
  // process and core its page happened to get (runs with a page per system
  // differed by a fifth, the same system in every round of a run).
  const page = await browser.newPage()
  let current // the system being measured, for the page's errors
  page.on('pageerror', (e) => current?.problems.push('page error: ' + e.message))
  await page.goto(cfg.url)
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 20000 })
  const systems = cfg.systems.map((name) => ({ name, problems: [], rounds: [], out: { name } }))
  const run = (sys, opts) => ((current = sys), page.evaluate(([name, opts]) => window.measure(name, opts), [sys.name, { ...cfg, ...opts }]))
  // A WebSocket system takes a turn in every round, an HTTP one in every
  // httpEvery-th (its round trips are slower, and each of its turns opens a
  // session): echoN round trips in all for the one, httpEchoN for the other.
  const held = (sys) => sys.name.endsWith('/websocket')
  const every = (sys) => (held(sys) ? 1 : cfg.httpEvery)
  const total = (sys) => (held(sys) ? cfg.echoN : cfg.httpEchoN)
  const perTurn = (sys) => Math.ceil(total(sys) / Math.ceil(cfg.rounds / every(sys)))
  // Round -1 warms up and is not measured.
  for (let r = -1; r < cfg.rounds; r++) {
    // In order, then in reverse order, for the systems of every round and for those of every httpEvery-th alike.
    for (const sys of (r % 2) ^ (Math.floor(r / cfg.httpEvery) % 2) ? [...systems].reverse() : systems) {
      if (sys.out.err || (r >= 0 && r % every(sys))) continue
      const done = sys.rounds.reduce((sum, e) => sum + e.rtts.length, 0)
      const n = r < 0 ? Math.min(perTurn(sys), 100) : Math.min(perTurn(sys), total(sys) - done)
      if (n <= 0) continue
      try {
        const got = await run(sys, { echoN: n, streamN: 0, hold: held(sys) })
        sys.out.transport ||= got.transport
        sys.out.refused = (sys.out.refused || 0) + got.refused
        if (got.echo && r >= 0) {
          sys.rounds.push(got.echo)
          if ((r + 1) % 5 == 0) process.stderr.write(`round ${r + 1}/${cfg.rounds}: ${sys.name} echo ${(got.echo.rtts.length / (got.echo.ms / 1000)).toFixed(0)}/s\n`)
        }
        if (got.err) sys.out.err = got.err
      } catch (e) {
        sys.out.err = String(e.message || e)
      }
    }
  }
  await page.evaluate(() => window.release())
  // The stream, then, in rounds as well: a few hundred milliseconds each.
  for (let r = 0; r < cfg.streamRounds && cfg.streamN; r++) {
    for (const sys of r % 2 ? [...systems].reverse() : systems) {
      if (sys.out.err) continue
      try {
        const got = await run(sys, { echoN: 0 })
        sys.out.transport ||= got.transport
        sys.out.refused = (sys.out.refused || 0) + got.refused
        if (got.stream) (sys.streams ||= []).push(got.stream)
        if (got.err) sys.out.err = got.err
      } catch (e) {
        sys.out.err = String(e.message || e)
      }
    }
  }
  for (const sys of systems) {
    const { out } = sys
    if (sys.rounds.length) out.echo = merge(sys.rounds)
    if (sys.streams?.length) {
      const messages = sys.streams.reduce((sum, s) => sum + s.messages, 0)
      const ms = sys.streams.reduce((sum, s) => sum + s.ms, 0)
      out.stream = { messages, perSec: messages / (ms / 1000), wrong: sys.streams.reduce((sum, s) => sum + s.wrong, 0) }
    }
    if (sys.problems.length) out.err = [out.err, ...sys.problems].filter(Boolean).join('; ')
    process.stdout.write(JSON.stringify(out) + '\n')
  }
} finally {
  await browser?.close()
  rmSync(dir, { recursive: true, force: true })
}

/** merge makes one echo result of the rounds' round-trip times. */
function merge(rounds) {
  const rtts = rounds.flatMap((r) => r.rtts).sort((a, b) => a - b)
  const ms = rounds.reduce((sum, r) => sum + r.ms, 0)
  const quantile = (q) => rtts[Math.min(rtts.length - 1, Math.floor((rtts.length - 1) * q))]
  return {
    roundTrips: rtts.length,
    perSec: rtts.length / (ms / 1000),
    p50us: quantile(0.5),
    p99us: quantile(0.99),
    wrong: rounds.reduce((sum, r) => sum + r.wrong, 0),
  }
}
