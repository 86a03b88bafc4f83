import { mock, test } from 'node:test'
import assert from 'node:assert/strict'
import { Heartbeat } from '../../src/heartbeat'

test('two cuts after about the same idle time, shorter than the heartbeat, shorten it (PROTOCOL.md 10.4)', () => {
  const h = new Heartbeat(30000, () => {})
  try {
    const steps: [number, number, number][] = [
      // [idle of the first cut, idle of the second, heartbeat after them]
      [6000, 12000, 30000], // not alike
      [500, 600, 30000], // too short for an idle timeout
      [5000, 31000, 30000], // the second idle longer than the heartbeat: no idle cut
      [5000, 5200, 2500], // a proxy cutting after about 5 s
      [4000, 4100, 2500], // not shorter than the heartbeat now: no idle cut
      [2400, 2300, 1150], // cut again at the shorter interval: shortened again
      [2000, 2000, 1150], // not shorter than the heartbeat: no idle cut
    ]
    assert.equal(h._asked, undefined)
    for (const [a, b, want] of steps) {
      const was = h._interval
      h._cut(a)
      assert.equal(h._cut(b), want != was, `the second cut, idle ${b} ms, reports a change`)
      assert.equal(h._interval, want, `after cuts idle ${a} and ${b} ms`)
    }
    assert.equal(h._asked, 1150)
  } finally {
    h._stop()
  }
})

test('the tick runs every half interval, and at the new pace once shortened', () => {
  mock.timers.enable({ apis: ['setInterval'] })
  let ticks = 0
  const h = new Heartbeat(10000, () => ticks++)
  try {
    mock.timers.tick(5000)
    assert.equal(ticks, 1)
    h._cut(4000)
    h._cut(4000) // shortened to 2000: a tick every 1000
    mock.timers.tick(3000)
    assert.equal(ticks, 4)
    h._stop()
    mock.timers.tick(10000)
    assert.equal(ticks, 4)
  } finally {
    h._stop()
    mock.timers.reset()
  }
})
