// The driver of `tether-bench -browser`: loads the bench page in Debian's
// Chromium (playwright-core, as js-client's browser tests do), measures each
// system in a fresh page, and writes one JSON line per system to stdout.
//
//	node cmd/tether-bench/browser/drive.mjs '{"url":"http://127.0.0.1:PORT/page/","systems":["raw/websocket"],
//	  "echoN":2000,"warmup":100,"streamN":20000,"timeoutMs":30000}'
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
  // A first page, not reported, so that the first system measured does
  // not pay for the browser's start (its network service, the code caches).
  const warm = await browser.newPage()
  await warm.goto(cfg.url)
  await warm.waitForFunction(() => window.benchReady === true, null, { timeout: 20000 })
  await warm.evaluate((o) => window.measure('raw/websocket', o), { ...cfg, echoN: 50, warmup: 0, streamN: 500 })
  await warm.close()
  for (const name of cfg.systems) {
    const page = await browser.newPage()
    const problems = []
    page.on('pageerror', (e) => problems.push('page error: ' + e.message))
    try {
      await page.goto(cfg.url)
      await page.waitForFunction(() => window.benchReady === true, null, { timeout: 20000 })
      const r = await page.evaluate(([name, opts]) => window.measure(name, opts), [name, cfg])
      if (problems.length) r.err = [r.err, ...problems].filter(Boolean).join('; ')
      process.stdout.write(JSON.stringify(r) + '\n')
    } catch (e) {
      process.stdout.write(JSON.stringify({ name, err: String(e.message || e) }) + '\n')
    } finally {
      await page.close()
    }
  }
} finally {
  await browser?.close()
  rmSync(dir, { recursive: true, force: true })
}
