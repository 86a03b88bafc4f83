// Browser tests of the SockJS bridge: sockjs-client (the npm package, at
// the version package-lock.json pins) in Debian's Chromium, driven by
// playwright-core, against sockjs/testserver. Traffic goes to 127.0.0.1
// only.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startGoServer, startBrowser } from '../../js-client/test/browser/harness.mjs'

const here = dirname(fileURLToPath(import.meta.url))

let dir, server, browser

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tether-sockjs-'))
  const client = join(here, 'node_modules/sockjs-client/dist/sockjs.min.js')
  server = await startGoServer(dir, { pkg: './sockjs/testserver', args: ['-client', client] })
  browser = await startBrowser(dir)
})

after(async () => {
  await browser?.close()
  await server?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

// session runs in the page: it opens a SockJS connection restricted to one
// transport, sends each of sends once open, and resolves when the server
// has closed the session (the last send asks it to) with what happened.
const session = ([transport, sends]) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no close within 30s')), 30000)
    const sock = new SockJS('/sockjs', null, { transports: [transport] })
    const got = []
    let used = ''
    sock.onopen = () => {
      used = sock.transport
      for (const m of sends) sock.send(m)
    }
    sock.onmessage = (e) => got.push(e.data)
    sock.onclose = (e) => {
      clearTimeout(timer)
      resolve({ used, got, code: e.code, reason: e.reason })
    }
  })

for (const transport of ['websocket', 'xhr-polling', 'xhr-streaming']) {
  test(`sockjs-client on ${transport}: echo, transport, binary, close`, async () => {
    const page = await browser.newPage()
    try {
      await page.goto(server.url)
      const texts = ['hello', 'héllo ✓ 😀', '', 'line\nbreak', '"quoted" \\ </script>']
      const many = Array.from({ length: 200 }, (_, i) => `m${i}`)
      const r = await page.evaluate(session, [
        transport,
        [...texts, ...many, 'transport', 'binary', 'close 4100 bye now'],
      ])
      assert.equal(r.used, transport, 'the transport sockjs-client used')
      assert.deepEqual(r.got, [...texts, ...many, 'transport sockjs', 'AAEC/w=='])
      assert.equal(r.code, 4100)
      assert.equal(r.reason, 'bye now')
    } finally {
      await page.close()
    }
  })
}
