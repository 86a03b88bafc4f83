// Prints the size of each bundle minified and gzipped, and fails when one is
// over the budget of 6 KB (6144 bytes).
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'

const budget = 6144
let over = false
for (const name of ['tether.js', 'tether.mjs']) {
  const src = readFileSync(new URL('dist/' + name, import.meta.url))
  const gz = gzipSync(src, { level: 9 }).length
  console.log(`size: dist/${name}: ${src.length} bytes minified, ${gz} bytes min+gzip (budget ${budget})`)
  if (gz > budget) over = true
}
if (over) {
  console.error('size: over budget')
  process.exit(1)
}
