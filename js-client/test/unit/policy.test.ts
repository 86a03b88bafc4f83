import { test } from 'node:test'
import assert from 'node:assert/strict'
import { backoff, defaults, order, probes, reconnects, withDefaults } from '../../src/policy'

const all = ['websocket', 'sse', 'streaming', 'longpoll']

test('order follows the server and the options', () => {
  const cases: [string, string[], Parameters<typeof order>[1], string | null, string[]][] = [
    ['everything offered', all, {}, null, all],
    ['only what is offered', ['websocket', 'longpoll'], {}, null, ['websocket', 'longpoll']],
    ["the server's order", ['longpoll', 'websocket'], {}, null, ['longpoll', 'websocket']],
    ['unknown transports skipped', ['webtransport', 'longpoll'], {}, null, ['longpoll']],
    ['forced', all, { transports: ['sse'] }, null, ['sse']],
    ['forced but not offered', ['websocket'], { transports: ['sse'] }, null, []],
    ['excluded', all, { exclude: ['websocket', 'sse'] }, null, ['streaming', 'longpoll']],
    ['remembered first', all, {}, 'streaming', ['streaming', 'websocket', 'sse', 'longpoll']],
    ['remembered but excluded', all, { exclude: ['streaming'] }, 'streaming', ['websocket', 'sse', 'longpoll']],
    ['remembered but no longer offered', ['websocket'], {}, 'longpoll', ['websocket']],
  ]
  for (const [name, offered, o, remembered, want] of cases) {
    assert.deepEqual(order(offered, o, remembered), want, name)
  }
})

test('probes: long polling carries the session while the others are probed', () => {
  const cases: [string, string[], boolean | undefined, string[] | undefined][] = [
    ['everything', all, undefined, ['websocket', 'sse', 'streaming']],
    ['remembered first', ['sse', 'websocket', 'streaming', 'longpoll'], undefined, ['sse', 'websocket', 'streaming']],
    ['upgrade true', ['websocket', 'longpoll'], true, ['websocket']],
    ['upgrade false: one after another', all, false, undefined],
    ['no long polling', ['websocket', 'sse'], undefined, undefined],
    ['only long polling', ['longpoll'], undefined, undefined],
  ]
  for (const [name, list, upgrade, want] of cases) assert.deepEqual(probes(list, upgrade), want, name)
})

test('backoff doubles from min up to max', () => {
  const mid = () => 1 // no jitter: the upper bound
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 100, 5000].map((a) => backoff(a, 250, 10000, mid)),
    [250, 500, 1000, 2000, 4000, 8000, 10000, 10000, 10000, 10000],
  )
})

test('backoff jitter stays within half of the delay and the delay', () => {
  for (let a = 0; a < 20; a++) {
    const d = Math.min(10000, 250 * 2 ** a)
    assert.equal(backoff(a, 250, 10000, () => 0), d / 2)
    for (let i = 0; i < 50; i++) {
      const x = backoff(a, defaults.minDelay, defaults.maxDelay)
      assert.ok(x >= d / 2 && x <= d, `backoff(${a}) = ${x}, want within [${d / 2}, ${d}]`)
    }
  }
})

test('reconnects after the codes of PROTOCOL.md section 6', () => {
  const yes = [1001, 1011, 1012, 1013, 4006]
  for (const code of [1000, 1001, 1006, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007, 4100, 4999]) {
    assert.equal(reconnects(code), yes.includes(code), `reconnects(${code})`)
  }
})

test('withDefaults fills in what the options leave out, and copies', () => {
  assert.deepEqual(withDefaults(null), defaults)
  assert.deepEqual(withDefaults(undefined), defaults)
  const given = { timeout: undefined, minDelay: 5, upgrade: false }
  assert.deepEqual(withDefaults(given), { timeout: defaults.timeout, minDelay: 5, maxDelay: defaults.maxDelay, upgrade: false })
  assert.deepEqual(given, { timeout: undefined, minDelay: 5, upgrade: false }, 'the caller\'s options are left as they were')
  assert.notEqual(withDefaults(null), withDefaults(null))
})
