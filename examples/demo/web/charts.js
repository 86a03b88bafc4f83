// Two small canvas charts for the demo page, with no dependencies:
// histogram() for a distribution of round trips, and bars() for one metric
// compared across transports. Both draw at the device's pixel ratio and
// redraw from scratch on every call.

const font = (px, weight = 400) => `${weight} ${px}px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`

/** setup sizes canvas to its CSS box at the device pixel ratio and returns its context. */
const setup = (canvas) => {
  const ratio = window.devicePixelRatio || 1
  const { width, height } = canvas.getBoundingClientRect()
  canvas.width = Math.max(1, Math.round(width * ratio))
  canvas.height = Math.max(1, Math.round(height * ratio))
  const g = canvas.getContext('2d')
  g.setTransform(ratio, 0, 0, ratio, 0, 0)
  g.clearRect(0, 0, width, height)
  return [g, width, height]
}

/** quantile returns the q-quantile (0..1) of sorted values, nearest rank. */
export const quantile = (sorted, q) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] : NaN

/** nice rounds x up to 1, 2 or 5 times a power of ten. */
const nice = (x) => {
  if (!(x > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(x))
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= x)
}

/** fmt formats a number for an axis or a label. */
export const fmt = (v) =>
  !isFinite(v) ? '–' : Number.isInteger(v) && v < 10000 ? String(v) : v >= 10000 ? Math.round(v / 1000) + 'k' : v >= 100 ? String(Math.round(v)) : v >= 10 ? v.toFixed(1) : v.toFixed(2)

/**
 * histogram draws the distribution of values (milliseconds) in bins from 0
 * to a round number above their 99th percentile; values beyond land in the
 * last bin. Dashed lines mark p50 and p99.
 */
export const histogram = (canvas, values, { color = '#4263eb', bins = 24 } = {}) => {
  const [g, w, h] = setup(canvas)
  const pad = { l: 30, r: 8, t: 8, b: 20 }
  const pw = w - pad.l - pad.r
  const ph = h - pad.t - pad.b
  g.font = font(10)
  g.fillStyle = '#868e96'
  if (!values.length) {
    g.textAlign = 'center'
    g.fillText('no data yet', w / 2, h / 2)
    return
  }
  const sorted = [...values].sort((a, b) => a - b)
  const p50 = quantile(sorted, 0.5)
  const p99 = quantile(sorted, 0.99)
  const top = nice(p99 * 1.15)
  const counts = new Array(bins).fill(0)
  for (const v of sorted) counts[Math.min(bins - 1, Math.floor((v / top) * bins))]++
  const most = Math.max(...counts)

  // Axes: the x axis with 0, the middle and the top; the y axis with the count.
  g.strokeStyle = '#dee2e6'
  g.lineWidth = 1
  g.beginPath()
  g.moveTo(pad.l, pad.t + ph + 0.5)
  g.lineTo(pad.l + pw, pad.t + ph + 0.5)
  g.stroke()
  g.textBaseline = 'top'
  for (const [v, align] of [[0, 'left'], [top / 2, 'center'], [top, 'right']]) {
    g.textAlign = align
    g.fillText(fmt(v) + (v == top ? ' ms' : ''), pad.l + (v / top) * pw, pad.t + ph + 5)
  }
  g.textAlign = 'right'
  g.textBaseline = 'middle'
  g.fillText(String(most), pad.l - 5, pad.t + 4)
  g.fillText('0', pad.l - 5, pad.t + ph)

  const bw = pw / bins
  g.fillStyle = color
  counts.forEach((c, i) => {
    if (!c) return
    const bh = Math.max(1, (c / most) * (ph - 4))
    g.fillRect(pad.l + i * bw + 1, pad.t + ph - bh, bw - 2, bh)
  })

  for (const [label, v] of [['p50', p50], ['p99', p99]]) {
    const x = pad.l + Math.min(1, v / top) * pw
    g.strokeStyle = '#212529'
    g.setLineDash([3, 3])
    g.beginPath()
    g.moveTo(x + 0.5, pad.t)
    g.lineTo(x + 0.5, pad.t + ph)
    g.stroke()
    g.setLineDash([])
    g.fillStyle = '#212529'
    g.textAlign = x > pad.l + pw - 30 ? 'right' : 'left'
    g.textBaseline = 'top'
    g.fillText(label, x + (g.textAlign == 'left' ? 3 : -3), pad.t + (label == 'p50' ? 0 : 12))
  }
}

/**
 * bars draws one horizontal bar per row: rows are { label, color, values }
 * where values has one number per series; series are { name, alpha }.
 * A row whose values are all missing shows a dash.
 */
export const bars = (canvas, rows, { series = [{ name: '' }], unit = '' } = {}) => {
  const [g, w, h] = setup(canvas)
  const pad = { l: 96, r: 56, t: series.length > 1 ? 18 : 4, b: 4 }
  const pw = w - pad.l - pad.r
  const rh = (h - pad.t - pad.b) / Math.max(1, rows.length)
  const max = Math.max(0, ...rows.flatMap((r) => r.values.filter((v) => isFinite(v))))
  const top = max > 0 ? max : 1
  const bh = Math.min(12, (rh - 6) / series.length)

  g.font = font(11)
  if (series.length > 1) {
    // Legend: one swatch per series.
    let x = pad.l
    g.textBaseline = 'middle'
    g.textAlign = 'left'
    for (const s of series) {
      g.globalAlpha = s.alpha ?? 1
      g.fillStyle = '#495057'
      g.fillRect(x, 5, 10, 8)
      g.globalAlpha = 1
      g.fillText(s.name, x + 14, 9)
      x += 22 + g.measureText(s.name).width
    }
  }
  rows.forEach((r, i) => {
    const y = pad.t + i * rh
    g.fillStyle = '#343a40'
    g.textAlign = 'right'
    g.textBaseline = 'middle'
    g.font = font(11, 500)
    g.fillText(r.label, pad.l - 8, y + rh / 2)
    g.font = font(11)
    const y0 = y + (rh - bh * series.length) / 2
    series.forEach((s, j) => {
      const v = r.values[j]
      const by = y0 + j * bh
      g.textAlign = 'left'
      if (!isFinite(v)) {
        g.fillStyle = '#adb5bd'
        g.fillText('–', pad.l + 4, by + bh / 2)
        return
      }
      const len = Math.max(2, (v / top) * pw)
      g.globalAlpha = s.alpha ?? 1
      g.fillStyle = r.color
      g.fillRect(pad.l, by + 1, len, bh - 2)
      g.globalAlpha = 1
      g.fillStyle = '#495057'
      g.fillText(fmt(v) + unit, pad.l + len + 4, by + bh / 2)
    })
  })
}
