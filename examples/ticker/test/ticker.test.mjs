// The ticker's browser test: builds and starts the ticker on a free loopback
// port with a few simulated subscribers, loads its page in Debian's Chromium
// (driven by playwright-core from js-client's dev dependencies) once per
// transport, and checks that the page shows the transport, prices that
// update tick after tick in order, the subscribers counted by presence and
// the simulated subscribers' deliveries; it saves a screenshot in
// test-output/ at the repository's root.
//
//	node --test examples/ticker/test/        (bash examples/ticker/test.sh)

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { repo, startGoServer, startBrowser } from '../../../js-client/test/browser/harness.mjs'

const transports = ['websocket', 'sse', 'streaming', 'longpoll']
const simulated = 8

test('the ticker page shows live prices on every transport', { timeout: 120000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-ticker-'))
  let ticker, browser
  // One teardown, in order: Chromium writes its profile (in dir) until it
  // has closed, so dir goes last.
  t.after(async () => {
    await browser?.close()
    await ticker?.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  let since = Date.now()
  ticker = await startGoServer(dir, {
    pkg: './examples/ticker',
    args: ['-rate', '20', '-stats', '200ms', '-simulate', String(simulated)],
    stop: 'SIGTERM',
  })
  browser = await startBrowser(dir, { viewport: { width: 900, height: 560 } })
  t.diagnostic(`ticker built and started, Chromium started: ${Date.now() - since} ms`)
  const origin = new URL(ticker.url).origin

  for (const transport of transports) {
    since = Date.now()
    const page = await browser.newPage()
    const problems = []
    page.on('pageerror', (e) => problems.push('page error: ' + e.message))
    page.on('console', (m) => m.type() == 'error' && problems.push('console: ' + m.text()))
    // Everything comes from the ticker: any other request fails the test.
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) problems.push('request elsewhere: ' + r.url())
    })
    await page.goto(ticker.url + '?transport=' + transport)

    // Every symbol has had five ticks since the page subscribed, and the
    // statistics count this page and the simulated subscribers.
    await page.waitForFunction(
      (simulated) => {
        const s = window.ticker
        return (
          s.symbols.length > 0 &&
          s.symbols.every((sym) => (s.ticks[sym]?.length ?? 0) >= 5) &&
          s.stats?.simulated == simulated &&
          s.stats.ticks > 0 &&
          s.stats.deliveries > 0
        )
      },
      simulated,
      { timeout: 30000, polling: 50 },
    )
    const state = await page.evaluate(() => window.ticker)
    assert.equal(state.transport, transport)
    assert.equal(await page.textContent('#transport'), transport)
    for (const sym of state.symbols) {
      const seqs = state.ticks[sym]
      seqs.forEach((seq, i) => i > 0 && assert.equal(seq, seqs[i - 1] + 1, `${transport}: ${sym}: tick ${seq} after ${seqs[i - 1]}`))
      // Each symbol shows its last price, and counts this page among its
      // subscribers (presence): 1 + the simulated ones on it.
      const row = page.locator('#quotes tr', { hasText: sym })
      const price = (await row.locator('td.price').textContent()).trim()
      assert.match(price, /^\d+\.\d\d$/, `${transport}: ${sym}: price ${price}`)
      const subscribers = Number(await row.locator('td.subscribers').textContent())
      assert.ok(subscribers >= 1, `${transport}: ${sym}: ${subscribers} subscribers`)
    }
    // Two symbols for each simulated subscriber, one for each for this page.
    const total = Object.values(state.stats.subscribers).reduce((a, b) => a + b, 0)
    assert.equal(total, 2 * simulated + state.symbols.length, `${transport}: subscribers ${JSON.stringify(state.stats.subscribers)}`)
    t.diagnostic(
      `${transport}: ${state.symbols.length} symbols, ${Math.min(...Object.values(state.ticks).map((s) => s.length))} ` +
        `ticks each at least, in ${Date.now() - since} ms`,
    )

    if (transport == transports[0]) {
      // Unticking a symbol unsubscribes the page from it: presence counts
      // one subscriber less.
      const sym = state.symbols[0]
      const before = state.stats.subscribers[sym]
      await page.locator('#quotes tr', { hasText: sym }).locator('input').uncheck()
      await page.waitForFunction(([sym, n]) => window.ticker.stats.subscribers[sym] == n, [sym, before - 1], {
        timeout: 20000,
        polling: 50,
      })
      mkdirSync(join(repo, 'test-output'), { recursive: true })
      const shot = join(repo, 'test-output', 'ticker.png')
      await page.screenshot({ path: shot, fullPage: true })
      t.diagnostic('screenshot: ' + shot)
    }
    await page.close()
    assert.deepEqual(problems, [])
  }
})
