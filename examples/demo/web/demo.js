// The demo page: runs the same measurements over each transport, one
// session after the other, and draws the results. The server's side is
// app.go (the commands) and meter.go (bytes, requests, cuts).

import { Tether } from '/rt/tether.mjs'
import { histogram, bars, quantile, fmt } from './charts.js'

const PREFIX = '/rt/'
const PAYLOAD = 64 // bytes of every measured message, both directions
const WARMUP = 10 // round trips not measured
const PINGS = 200 // round trips measured, one at a time
const FLOOD = 2000 // messages of the throughput run
const STREAM_MS = 400 // messages flow this long before the cut, and again after the resume

const specs = [
  { id: 'websocket', label: 'WebSocket', color: '#364fc7', options: { transports: ['websocket'] } },
  { id: 'sse', label: 'SSE', color: '#0b7285', options: { transports: ['sse'] } },
  { id: 'streaming', label: 'Streaming', color: '#6741d9', options: { transports: ['streaming'] } },
  { id: 'longpoll', label: 'Long polling', color: '#d9480f', options: { transports: ['longpoll'] } },
  { id: 'auto', label: 'Automatic', color: '#2b8a3e', options: {} },
]

/** results holds each transport's measurements, by spec id; the browser test reads it. */
const results = (window.results = {})
const probes = {}

const $ = (sel, root = document) => root.querySelector(sel)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const status = (text) => ($('#status').textContent = text)

/**
 * Probe is one measured session: a Tether whose messages go to the
 * listeners waiting for them.
 */
class Probe {
  constructor(spec) {
    this.spec = spec
    this.listeners = new Set()
  }

  /** open connects and resolves to the milliseconds it took. */
  open() {
    // The client puts the transport that last worked first; every run
    // starts from the same place instead.
    try {
      sessionStorage.clear()
    } catch {}
    const t0 = performance.now()
    const t = (this.t = new Tether(PREFIX, this.spec.options))
    t.onmessage = (e) => {
      for (const l of [...this.listeners]) l(e.data)
    }
    t.addEventListener('transport', () => this.onTransport?.(t.transport))
    t.addEventListener('close', (e) => this.onClose?.(e))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no open within 15 s')), 15000)
      t.addEventListener('open', () => (clearTimeout(timer), resolve(performance.now() - t0)), { once: true })
      t.addEventListener('close', (e) => (clearTimeout(timer), reject(new Error(`closed: ${e.code} ${e.reason}`))), {
        once: true,
      })
    })
  }

  /** next resolves to the first message that satisfies pred, within ms. */
  next(pred, ms, what) {
    return new Promise((resolve, reject) => {
      const l = (d) => {
        if (pred(d)) clearTimeout(timer), this.listeners.delete(l), resolve(d)
      }
      const timer = setTimeout(() => (this.listeners.delete(l), reject(new Error('timed out waiting for ' + what))), ms)
      this.listeners.add(l)
    })
  }

  /** event resolves to the time of the next event of type, within ms, or to null. */
  event(type, ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => (this.t.removeEventListener(type, f), resolve(null)), ms)
      const f = () => (clearTimeout(timer), resolve(performance.now()))
      this.t.addEventListener(type, f, { once: true })
    })
  }

  /** stats fetches the server's counts for this session. */
  async stats() {
    const r = await fetch('/demo/stats?session=' + encodeURIComponent(this.t.session), { cache: 'no-store' })
    if (!r.ok) throw new Error('stats: ' + r.status)
    return r.json()
  }

  /** latency times PINGS round trips of PAYLOAD bytes, one at a time. */
  async latency(onProgress) {
    const rtts = []
    let before
    for (let i = 0; i < WARMUP + PINGS; i++) {
      if (i == WARMUP) before = await this.stats()
      const tag = 'p' + String(i).padStart(PAYLOAD - 1, '0')
      const t0 = performance.now()
      const echo = this.next((d) => d === tag, 10000, 'round trip ' + i)
      this.t.send(tag)
      await echo
      if (i >= WARMUP) rtts.push(performance.now() - t0)
      if (i % 20 == 0) onProgress(rtts)
    }
    const after = await this.stats()
    return { rtts, up: (after.bytesIn - before.bytesIn) / PINGS }
  }

  /** throughput has the server send FLOOD messages and times them. */
  async throughput() {
    const before = await this.stats()
    let n = 0
    const count = (d) => typeof d == 'string' && d.length == PAYLOAD && d[0] == 'f' && n++
    this.listeners.add(count)
    const done = this.next((d) => typeof d == 'string' && d.startsWith('flood done'), 60000, 'the flood')
    const t0 = performance.now()
    this.t.send(`flood ${FLOOD} ${PAYLOAD}`)
    await done
    const ms = performance.now() - t0
    this.listeners.delete(count)
    const after = await this.stats()
    if (n != FLOOD) throw new Error(`flood: ${n} of ${FLOOD} messages arrived`)
    return { rate: FLOOD / (ms / 1000), down: (after.bytesOut - before.bytesOut) / FLOOD }
  }

  /**
   * cut streams numbered messages both ways, has the server cut the TCP
   * connection under the session, and counts what arrived once resumed.
   */
  async cut() {
    const t = this.t
    let got = 0
    let disordered = 0
    const count = (d) => {
      if (typeof d != 'string' || !d.startsWith('s ')) return
      if (Number(d.slice(2)) != ++got) disordered++
    }
    this.listeners.add(count)
    let up = 0
    t.send('stream start')
    const ticker = setInterval(() => t.send('u ' + ++up), 5)
    try {
      await sleep(STREAM_MS)
      const lost = this.event('resuming', 5000)
      const resumed = this.event('resumed', 20000)
      const cutAt = performance.now()
      const r = await fetch('/demo/cut?session=' + encodeURIComponent(t.session), { method: 'POST' })
      if (!r.ok) throw new Error('cut: ' + r.status)
      const lostAt = await lost
      const resumedAt = lostAt && (await resumed)
      if (lostAt && !resumedAt) throw new Error('no resume within 20 s')
      await sleep(STREAM_MS)
      clearInterval(ticker)
      const end = this.next((d) => typeof d == 'string' && d.startsWith('stream end'), 15000, 'the end of the stream')
      t.send('stream stop')
      const [sent, upReceived, upDisordered] = (await end).split(' ').slice(2).map(Number)
      return {
        interrupted: !!lostAt,
        resumeMs: lostAt ? resumedAt - lostAt : null,
        cutToResumeMs: lostAt ? resumedAt - cutAt : null,
        sent: sent + up,
        lost: sent - got + (up - upReceived),
        // Each direction on its own, for the browser test's messages.
        downLost: sent - got,
        upLost: up - upReceived,
        disordered: disordered + upDisordered,
      }
    } finally {
      clearInterval(ticker)
      this.listeners.delete(count)
    }
  }

  close() {
    this.t?.close()
  }
}

// ---- rendering ----

const cards = {}

const buildCards = () => {
  const tpl = $('#card')
  for (const spec of specs) {
    const el = tpl.content.firstElementChild.cloneNode(true)
    el.dataset.transport = spec.id
    el.style.setProperty('--c', spec.color)
    $('h2', el).textContent = spec.label
    $('.cut', el).addEventListener('click', () => manualCut(spec))
    $('#cards').append(el)
    cards[spec.id] = el
  }
  document.querySelectorAll('.payload').forEach((e) => (e.textContent = PAYLOAD))
}

const setMetric = (spec, key, html, cls = '') => {
  const dd = $(`[data-k="${key}"]`, cards[spec.id])
  dd.innerHTML = html
  dd.className = cls
}

const badge = (spec, text, cls = '') => {
  const b = $('.badge', cards[spec.id])
  b.textContent = text
  b.className = 'badge ' + cls
}

const ms = (v) => (v == null || !isFinite(v) ? '–' : `${fmt(v)} <small>ms</small>`)

const drawHistogram = (spec, rtts) => histogram($('canvas.hist', cards[spec.id]), rtts, { color: spec.color })

const showCut = (spec, c) => {
  const el = $('.resume', cards[spec.id])
  if (!c) return (el.textContent = 'resume: –')
  el.textContent = c.interrupted
    ? `resumed in ${Math.round(c.resumeMs)} ms · ${c.sent} msgs in flight`
    : 'the cut found no connection to break'
  setMetric(spec, 'lost', String(c.lost + c.disordered), c.lost + c.disordered == 0 ? 'zero' : 'lost')
}

const render = (spec) => {
  const r = results[spec.id]
  if (!r) return
  setMetric(spec, 'connect', ms(r.connectMs))
  setMetric(spec, 'p50', ms(r.p50))
  setMetric(spec, 'p99', ms(r.p99))
  setMetric(spec, 'rate', r.rate ? fmt(r.rate) : '–')
  setMetric(spec, 'down', r.down ? fmt(r.down) + ' <small>B</small>' : '–')
  setMetric(spec, 'up', r.up ? fmt(r.up) + ' <small>B</small>' : '–')
  setMetric(spec, 'requests', r.requests ? String(r.requests) : '–')
  showCut(spec, r.cut)
  drawHistogram(spec, r.rtts || [])
}

const drawSummary = () => {
  const row = (spec, values) => ({ label: spec.label, color: spec.color, values })
  const get = (id, k) => results[id]?.[k] ?? NaN
  bars(
    $('#chart-rtt'),
    specs.map((s) => row(s, [get(s.id, 'p50'), get(s.id, 'p99')])),
    { series: [{ name: 'p50' }, { name: 'p99', alpha: 0.45 }], unit: ' ms' },
  )
  bars($('#chart-rate'), specs.map((s) => row(s, [get(s.id, 'rate')])), { unit: '/s' })
  bars(
    $('#chart-bytes'),
    specs.map((s) => row(s, [get(s.id, 'down'), get(s.id, 'up')])),
    { series: [{ name: 'server → client' }, { name: 'client → server', alpha: 0.45 }], unit: ' B' },
  )
  bars($('#chart-requests'), specs.map((s) => row(s, [get(s.id, 'requests')])))
}

// ---- running ----

let busy = false

const setBusy = (b) => {
  busy = b
  $('#run').disabled = b
  for (const spec of specs) $('.cut', cards[spec.id]).disabled = b || !probes[spec.id]
}

/** runOne measures one transport and leaves its session open for manual cuts. */
const runOne = async (spec) => {
  probes[spec.id]?.close()
  delete probes[spec.id]
  const r = (results[spec.id] = { label: spec.label })
  const card = cards[spec.id]
  card.classList.add('running')
  badge(spec, 'connecting…')
  render(spec)
  const p = new Probe(spec)
  p.onTransport = (name) => ((r.transport = name), badge(spec, name, 'done'))
  try {
    r.connectMs = await p.open()
    r.transport = p.t.transport
    badge(spec, 'measuring…')
    render(spec)
    const lat = await p.latency((rtts) => drawHistogram(spec, rtts))
    const sorted = [...lat.rtts].sort((a, b) => a - b)
    Object.assign(r, { rtts: lat.rtts, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), up: lat.up })
    render(spec)
    Object.assign(r, await p.throughput())
    render(spec)
    badge(spec, 'cutting…')
    r.cut = await p.cut()
    r.requests = (await p.stats()).requests
    r.transport = p.t.transport
    r.done = true
    probes[spec.id] = p
    p.onClose = (e) => {
      if (probes[spec.id] == p) delete probes[spec.id], setBusy(busy), badge(spec, `closed ${e.code}`, 'failed')
    }
    badge(spec, spec.id == 'auto' ? `chose ${r.transport}` : r.transport, 'done')
  } catch (err) {
    r.error = String(err.message || err)
    badge(spec, 'failed', 'failed')
    $('.resume', card).textContent = r.error
    p.close()
  } finally {
    card.classList.remove('running')
    render(spec)
    drawSummary()
  }
}

const runAll = async () => {
  if (busy) return
  setBusy(true)
  window.demoDone = false
  for (const spec of specs) {
    status(`measuring ${spec.label}…`)
    await runOne(spec)
  }
  const failed = specs.filter((s) => results[s.id].error)
  const lost = specs.reduce((n, s) => n + (results[s.id].cut?.lost ?? 0), 0)
  status(
    failed.length
      ? `done; failed: ${failed.map((s) => s.label).join(', ')}`
      : `done · ${lost} messages lost across ${specs.length} cuts`,
  )
  setBusy(false)
  window.demoDone = true
}

const manualCut = async (spec) => {
  const p = probes[spec.id]
  if (!p || busy) return
  setBusy(true)
  cards[spec.id].classList.add('running')
  status(`cutting ${spec.label}…`)
  try {
    results[spec.id].cut = await p.cut()
    results[spec.id].requests = (await p.stats()).requests
    status(`${spec.label}: resumed, ${results[spec.id].cut.lost} messages lost`)
  } catch (err) {
    status(`${spec.label}: ${err.message || err}`)
  } finally {
    cards[spec.id].classList.remove('running')
    render(spec)
    drawSummary()
    setBusy(false)
  }
}

buildCards()
for (const spec of specs) drawHistogram(spec, [])
drawSummary()
addEventListener('resize', () => {
  for (const spec of specs) drawHistogram(spec, results[spec.id]?.rtts || [])
  drawSummary()
})
$('#run').addEventListener('click', runAll)
$('#run').disabled = false
status('ready')
window.demoReady = true
if (new URLSearchParams(location.search).has('run')) runAll()
