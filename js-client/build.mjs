// Builds the bundles into dist/ (or the directory given as the first
// argument): tether.mjs (ES module), tether.js (classic script defining the
// global Tether) and tether.d.ts. test.sh builds into a temporary directory
// and compares, so the committed bundle can never be stale.
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(fileURLToPath(import.meta.url))
const out = process.argv[2] || join(root, 'dist')

const common = {
  bundle: true,
  minify: true,
  target: 'es2020',
  // Internal members start with an underscore; shorten them.
  mangleProps: /^_/,
  legalComments: 'none',
  logLevel: 'warning',
}
await build({ ...common, entryPoints: [join(root, 'src/tether.ts')], format: 'esm', outfile: join(out, 'tether.mjs') })
await build({ ...common, entryPoints: [join(root, 'src/global.ts')], format: 'iife', outfile: join(out, 'tether.js') })

// Declarations: tether.ts's public surface names no internal type, so its
// declaration file stands alone.
const tmp = mkdtempSync(join(tmpdir(), 'tether-dts-'))
try {
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.json'), '--declaration', '--emitDeclarationOnly', '--outDir', tmp], { stdio: 'inherit' })
  copyFileSync(join(tmp, 'tether.d.ts'), join(out, 'tether.d.ts'))
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
