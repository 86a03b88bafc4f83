// The npm package as a user gets it: packed with npm pack, installed from the
// tarball into a scratch project, imported by an app that esbuild bundles and
// tsc type-checks, and the bundled app run in Node against the Go echo
// server. Nothing is downloaded: the package has no dependencies, and esbuild
// and tsc are js-client's own.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { repo, startServer, tempDir } from '../browser/harness.mjs'

const jsClient = join(repo, 'js-client')
const pkg = JSON.parse(readFileSync(join(jsClient, 'package.json'), 'utf8'))
const [dir, removeDir] = tempDir()
const app = join(dir, 'app')
const installed = join(app, 'node_modules', ...pkg.name.split('/'))
let packed // npm pack's report on the tarball
let server

const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 60000 })
const write = (path, text) => {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, text)
}

// The app a user would write: both ways of importing the class, the option
// and event types, and an echo over a transport it chooses.
const main = `import Default, { Tether, type TetherCloseEvent, type TetherMessageEvent, type TetherOptions } from '${pkg.name}'

/** echo sends text over one transport and resolves to what came back, the transport and the close code. */
export const echo = (url: string, transport: string, text: string): Promise<[string, string, number]> =>
  new Promise((resolve) => {
    const options: TetherOptions = { transports: [transport], timeout: 10000 }
    const t = new Tether(url, options)
    let got = ''
    let used = ''
    t.onopen = () => {
      used = t.transport ?? ''
      t.send(text)
    }
    t.onmessage = (e: TetherMessageEvent) => {
      got = String(e.data)
      t.close(1000, 'done')
    }
    t.onclose = (e: TetherCloseEvent) => resolve([got, used, e.code])
  })

export const sameClass = Default === Tether
export const states = [Tether.CONNECTING, Tether.OPEN, Tether.CLOSING, Tether.CLOSED]
`

// Type-checked, never bundled: misuse the published types must refuse. Were
// the package untyped (any), the expected errors would not happen and tsc
// would fail on the directives.
const misuse = `import { Tether } from '${pkg.name}'

const t = new Tether('/rt/')
// @ts-expect-error send takes text or binary data, not a number
t.send(42)
// @ts-expect-error binaryType is 'blob' or 'arraybuffer'
t.binaryType = 'text'
// @ts-expect-error an option that does not exist
new Tether('/rt/', { transport: 'sse' })
`

before(async () => {
  packed = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], jsClient))[0]
  write(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }))
  npm(['install', '--offline', '--no-audit', '--no-fund', join(dir, packed.filename)], app)
  write(join(app, 'src/main.ts'), main)
  write(join(app, 'src/misuse.ts'), misuse)
  server = await startServer(dir)
})

after(async () => {
  await server?.stop()
  removeDir()
})

test('the tarball holds the bundles, their types, the README and the LICENSE', () => {
  assert.equal(packed.name, pkg.name)
  assert.equal(packed.version, pkg.version)
  assert.deepEqual(packed.files.map((f) => f.path).sort(), [
    'LICENSE',
    'README.md',
    'dist/tether.d.ts',
    'dist/tether.js',
    'dist/tether.mjs',
    'package.json',
  ])
  assert.equal(readFileSync(join(installed, 'LICENSE'), 'utf8'), readFileSync(join(repo, 'LICENSE'), 'utf8'))
  const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'))
  assert.equal(manifest.private, undefined, 'a private package cannot be published')
  assert.equal(manifest.license, 'MIT')
  assert.equal(manifest.sideEffects, false)
})

test('the installed bundle is the one the Go server serves', async () => {
  for (const name of ['tether.mjs', 'tether.js']) {
    const got = readFileSync(join(installed, 'dist', name))
    assert.ok(got.equals(readFileSync(join(jsClient, 'dist', name))), name + ' differs from dist/')
    const served = Buffer.from(await (await fetch(server.url + 'rt/' + name)).arrayBuffer())
    assert.ok(got.equals(served), name + ' differs from what the server serves at {prefix}' + name)
  }
})

test('tsc type-checks the app against the installed types', () => {
  const tsc = join(jsClient, 'node_modules/.bin/tsc')
  const common = ['--ignoreConfig', '--noEmit', '--strict', '--target', 'es2020', '--lib', 'es2022,dom', '--types', '']
  const files = [join(app, 'src/main.ts'), join(app, 'src/misuse.ts')]
  for (const resolution of [['--module', 'esnext', '--moduleResolution', 'bundler'], ['--module', 'nodenext', '--moduleResolution', 'nodenext']]) {
    try {
      execFileSync(tsc, [...common, ...resolution, ...files], { cwd: app, encoding: 'utf8', timeout: 60000 })
    } catch (e) {
      assert.fail(`tsc ${resolution.join(' ')}:\n${e.stdout}${e.stderr}`)
    }
  }
})

test('esbuild bundles the app from the exports map, and it echoes over each HTTP transport', async () => {
  const out = join(app, 'dist/app.mjs')
  const { metafile } = await build({
    absWorkingDir: app,
    entryPoints: ['src/main.ts'],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    outfile: out,
    metafile: true,
    logLevel: 'warning',
  })
  const inputs = Object.keys(metafile.inputs)
  assert.ok(inputs.includes(`node_modules/${pkg.name}/dist/tether.mjs`), 'bundled inputs: ' + inputs.join(', '))

  const { echo, sameClass, states } = await import(pathToFileURL(out).href)
  assert.equal(sameClass, true, 'the default export is the Tether class')
  assert.deepEqual(states, [0, 1, 2, 3])
  // Node 20 has no WebSocket; the HTTP transports run on its fetch.
  for (const transport of ['sse', 'streaming', 'longpoll']) {
    const text = 'hello from the npm package over ' + transport
    assert.deepEqual(await echo(server.url + 'rt/', transport, text), [text, transport, 1000])
  }
})

test('an app that imports the client and uses none of it bundles to nothing (sideEffects: false)', async () => {
  write(join(app, 'src/unused.ts'), `import { Tether } from '${pkg.name}'\nexport const unused = typeof Tether\n`)
  write(join(app, 'src/unused-entry.ts'), `import './unused'\nexport const n = 1\n`)
  const { metafile } = await build({
    absWorkingDir: app,
    entryPoints: ['src/unused-entry.ts'],
    bundle: true,
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
    outfile: join(app, 'dist/unused.mjs'),
  })
  const [output] = Object.values(metafile.outputs)
  assert.deepEqual(Object.keys(output.inputs).filter((i) => i.includes(pkg.name)), [], 'the client was bundled though unused')
})
