// The demo's browser test: builds and starts the demo on a free loopback
// port, loads its page in Debian's Chromium (driven by playwright-core from
// js-client's dev dependencies), runs the comparison, checks that every
// transport reports its results and that no message was lost across the
// cut, and saves a screenshot in test-output/ at the repository's root.
//
//	node --test examples/demo/test/        (bash examples/demo/test.sh)

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { repo, startGoServer, startBrowser } from '../../../js-client/test/browser/harness.mjs'


const transports = ['websocket', 'sse', 'streaming', 'longpoll', 'auto']

test('the demo compares every transport with no message lost', { timeout: 240000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-demo-'))
  let demo, browser
  // One teardown, in order: Chromium writes its profile (in dir) until it
  // has closed, so dir goes last. (after hooks run in the order they are
  // added, so separate ones would remove dir first.)
  t.after(async () => {
    await browser?.close()
    await demo?.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  demo = await startGoServer(dir, { pkg: './examples/demo', stop: 'SIGTERM' }) // it shuts down gracefully on SIGTERM
  browser = await startBrowser(dir, { viewport: { width: 1440, height: 1000 } })

  const page = await browser.newPage()
  const problems = []
  page.on('pageerror', (e) => problems.push('page error: ' + e.message))
  page.on('console', (m) => {
    // The cuts make the browser log the requests they broke.
    if (m.type() == 'error' && !/^Failed to load resource: net::ERR_/.test(m.text())) problems.push('console: ' + m.text())
  })
  // Everything comes from the demo: any other request fails the test.
  const origin = new URL(demo.url).origin
  page.on('request', (r) => {
    if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) problems.push('request elsewhere: ' + r.url())
  })

  await page.goto(demo.url)
  await page.waitForFunction(() => window.demoReady === true, null, { timeout: 20000 })
  await page.click('#run')
  await page.waitForFunction(() => window.demoDone === true, null, { timeout: 180000, polling: 100 })
  const results = await page.evaluate(() => window.results)

  // The button cuts a session left open after the run, again with nothing lost.
  const before = results.longpoll.cut
  await page.click('.card[data-transport="longpoll"] .cut')
  await page.waitForFunction(() => /^Long polling: /.test(document.querySelector('#status').textContent), null, {
    timeout: 60000,
    polling: 100,
  })
  const again = await page.evaluate(() => window.results.longpoll.cut)
  assert.notDeepEqual(again, before, 'the cut button changed nothing')
  assert.ok(again.interrupted, 'the cut button broke no connection')
  assert.equal(again.lost, 0, 'messages lost after the cut button')
  assert.equal(again.disordered, 0, 'messages out of order after the cut button')

  mkdirSync(join(repo, 'test-output'), { recursive: true })
  const shot = join(repo, 'test-output', 'demo.png')
  await page.screenshot({ path: shot, fullPage: true })
  t.diagnostic('screenshot: ' + shot)

  for (const id of transports) {
    const r = results[id]
    assert.ok(r, `${id}: no results`)
    assert.equal(r.error, undefined, `${id}: ${r.error}`)
    assert.ok(r.done, `${id}: not done`)
    if (id != 'auto') assert.equal(r.transport, id, `${id}: ran on ${r.transport}`)
    for (const k of ['connectMs', 'p50', 'p99', 'rate', 'down', 'up', 'requests']) {
      assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${id}: ${k} = ${r[k]}`)
    }
    assert.equal(r.rtts.length, 200, `${id}: round trips`)
    assert.ok(r.p50 <= r.p99, `${id}: p50 ${r.p50} > p99 ${r.p99}`)
    assert.ok(r.cut, `${id}: no cut result`)
    assert.ok(r.cut.interrupted, `${id}: the cut broke no connection`)
    assert.ok(r.cut.resumeMs >= 0, `${id}: resume time ${r.cut.resumeMs}`)
    assert.ok(r.cut.sent > 0, `${id}: no messages flowed across the cut`)
    assert.equal(r.cut.lost, 0, `${id}: messages lost: ${JSON.stringify(r.cut)}`)
    assert.equal(r.cut.disordered, 0, `${id}: messages out of order`)
    t.diagnostic(
      `${id}: on ${r.transport}, connect ${r.connectMs.toFixed(1)} ms, p50 ${r.p50.toFixed(2)} ms, ` +
        `p99 ${r.p99.toFixed(2)} ms, ${Math.round(r.rate)} msg/s, ${r.down.toFixed(1)} B/msg down, ` +
        `${r.up.toFixed(1)} B/msg up, ${r.requests} requests, resumed in ${Math.round(r.cut.resumeMs)} ms, ` +
        `${r.cut.sent} messages across the cut, ${r.cut.lost} lost`,
    )
  }
  // One session per transport went over its own transport: long polling
  // makes more requests than a WebSocket.
  assert.ok(results.longpoll.requests > results.websocket.requests, 'long polling made no more requests than WebSocket')
  assert.deepEqual(problems, [])
})
