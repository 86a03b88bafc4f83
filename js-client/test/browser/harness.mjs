// The browser tests' harness: builds and starts the Go test server, starts
// Debian's Chromium through playwright-core, and installs helpers in every
// page. Browser traffic goes to 127.0.0.1 only.

import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { chromium } from 'playwright-core'

const jsClient = join(dirname(fileURLToPath(import.meta.url)), '../..')
export const chromiumPath = '/usr/bin/chromium'

/** repo is the repository's root. */
export const repo = join(jsClient, '..')

/**
 * startGoServer builds the Go package pkg (relative to the repository) into
 * dir and starts it with -addr 127.0.0.1:0 and args. The program prints
 * "listening <url>" once it listens, and ends when its standard input closes
 * (stop: 'stdin') or on SIGTERM (stop: 'SIGTERM'). It resolves to
 * { url, stop, command }: stop resolves once the program has exited;
 * command(line, answer, ms) writes line to the program's standard input and
 * resolves once it prints the line answer (a string, or a RegExp the line
 * matches), to that line, failing after ms.
 */
export const startGoServer = async (dir, { pkg, args = [], stop = 'stdin' }) => {
  const bin = join(dir, pkg.replaceAll('/', '_'))
  execFileSync('go', ['build', '-o', bin, pkg], { cwd: repo, stdio: 'inherit' })
  const p = spawn(bin, ['-addr', '127.0.0.1:0', ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: p.stdout })
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(pkg + ' did not start within 20s')), 20000)
    p.on('exit', (code) => reject(new Error(pkg + ' exited with ' + code)))
    lines.on('line', (l) => {
      const m = /^listening (\S+)/.exec(l)
      if (m) clearTimeout(t), resolve(m[1])
    })
  })
  return {
    url,
    command: (line, answer, ms = 20000) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${pkg}: no "${answer}" within ${ms}ms after "${line}"`)), ms)
        const on = (l) => (answer instanceof RegExp ? answer.test(l) : l == answer) && (clearTimeout(t), lines.off('line', on), resolve(l))
        lines.on('line', on)
        p.stdin.write(line + '\n')
      }),
    stop: () =>
      new Promise((resolve) => {
        if (p.exitCode != null) return resolve()
        const t = setTimeout(() => p.kill('SIGKILL'), 10000)
        p.on('exit', () => (clearTimeout(t), resolve()))
        if (stop == 'SIGTERM') p.kill('SIGTERM')
        else p.stdin.end()
      }),
  }
}

/** startServer builds js-client/testserver and starts it with args. */
export const startServer = (dir, args = []) => startGoServer(dir, { pkg: './js-client/testserver', args })

/**
 * startBrowser starts Chromium with a fresh profile in dir, and options for
 * playwright's launchPersistentContext (a viewport, say); it resolves to a
 * BrowserContext.
 */
export const startBrowser = (dir, options = {}) =>
  chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), {
    ...options,
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60000,
  })

/** tempDir makes a temporary directory and returns it with its removal. */
export const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-browser-'))
  return [dir, () => rmSync(dir, { recursive: true, force: true })]
}

/**
 * pageHelpers runs in every page before its scripts: connect() makes a Tether
 * that records what it receives and which events it dispatched; until()
 * waits for a condition with a bound.
 */
export const pageHelpers = () => {
  window.connect = (prefix, options = {}) => {
    const t = new Tether(prefix, { minDelay: 50, maxDelay: 500, ...options })
    t.binaryType = 'arraybuffer'
    t.got = []
    t.events = []
    t.transports = []
    t.onmessage = (e) => t.got.push(e.data)
    for (const type of ['open', 'resuming', 'resumed', 'reconnecting', 'transport', 'close', 'error']) {
      t.addEventListener(type, (e) => {
        t.events.push(type)
        if (type == 'close') t.closeEvent = { code: e.code, reason: e.reason, wasClean: e.wasClean }
        if (type == 'open' || type == 'transport') t.transports.push(t.transport)
      })
    }
    return t
  }
  window.until = async (what, cond, ms = 20000) => {
    const end = Date.now() + ms
    while (!cond()) {
      if (Date.now() > end) throw new Error('timed out after ' + ms + 'ms waiting for ' + what)
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  window.numbers = (n, from = 1) => Array.from({ length: n }, (_, i) => String(i + from))
  window.hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('')
}
