// The modules of src/ import one another without a cycle (a cycle once ran
// tether.ts -> http.ts -> websocket.ts -> tether.ts), and the transports
// know the session only through conn.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

// test.sh runs the unit tests from js-client/.
const src = 'src'

/** imports returns, per module of src/, the modules of src/ it imports (type-only imports too). */
const imports = (): Map<string, string[]> => {
  const graph = new Map<string, string[]>()
  for (const f of readdirSync(src).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(src, f), 'utf8')
    const deps = [...text.matchAll(/^(?:import|export)\b[^'"]*?from\s+'\.\/([\w.]+)'/gm)].map((m) => m[1] + '.ts')
    for (const d of deps) assert.ok(existsSync(join(src, d)), `${f} imports ${d}, which is not in src/`)
    graph.set(f, deps)
  }
  return graph
}

test('src/ has no import cycle', () => {
  assert.ok(existsSync(join(src, 'tether.ts')), 'run from js-client/ (test.sh does)')
  const graph = imports()
  assert.ok(graph.size >= 8, 'modules found: ' + [...graph.keys()])
  const done = new Set<string>()
  const visit = (f: string, path: string[]) => {
    const i = path.indexOf(f)
    assert.ok(i < 0, 'import cycle: ' + [...path.slice(i), f].join(' -> '))
    if (done.has(f)) return
    for (const d of graph.get(f)!) visit(d, [...path, f])
    done.add(f)
  }
  for (const f of graph.keys()) visit(f, [])
})

test('the transports import conn.ts and the codec, never the session', () => {
  const graph = imports()
  for (const t of ['websocket.ts', 'http.ts']) {
    assert.deepEqual(graph.get(t)!.filter((d) => d != 'codec.ts'), ['conn.ts'], t)
  }
})
