package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"strings"
)

// The chart is drawn with image/png and a 5×7 bitmap font of its own: one
// panel per workload, one horizontal bar per system, labelled with its
// value.

// glyphs holds 7 rows of 5 bits per character (bit 4 is the left column).
var glyphs = map[rune][7]byte{
	'0': {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, '1': {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
	'2': {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, '3': {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
	'4': {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, '5': {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
	'6': {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, '7': {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
	'8': {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, '9': {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},
	'A': {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}, 'B': {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},
	'C': {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}, 'D': {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},
	'E': {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}, 'F': {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},
	'G': {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}, 'H': {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},
	'I': {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, 'J': {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},
	'K': {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}, 'L': {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},
	'M': {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}, 'N': {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},
	'O': {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, 'P': {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},
	'Q': {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}, 'R': {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},
	'S': {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}, 'T': {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},
	'U': {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, 'V': {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},
	'W': {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}, 'X': {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},
	'Y': {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}, 'Z': {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},
	'/': {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}, '-': {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00},
	'.': {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}, ',': {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08},
	':': {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}, '(': {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},
	')': {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}, '%': {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},
	'×': {0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x00}, '=': {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00},
	' ': {},
}

const (
	chartScale = 2
	charW      = 6 * chartScale
	rowH       = 22
	chartW     = 1100
	labelW     = 22 * charW
)

var (
	white     = color.RGBA{255, 255, 255, 255}
	ink       = color.RGBA{30, 30, 30, 255}
	gridColor = color.RGBA{225, 225, 225, 255}
	famColor  = map[string]color.RGBA{
		"tether": {46, 110, 200, 255},
		"raw":    {130, 130, 130, 255},
		"sockjs": {230, 140, 40, 255},
	}
)

// drawText writes s at (x, y), y being the top of the glyphs.
func drawText(img *image.RGBA, x, y int, s string, c color.Color) {
	for _, r := range strings.ToUpper(s) {
		g, ok := glyphs[r]
		if !ok {
			g = glyphs['-']
		}
		for row := range 7 {
			for col := range 5 {
				if g[row]&(1<<(4-col)) == 0 {
					continue
				}
				for dy := range chartScale {
					for dx := range chartScale {
						img.Set(x+col*chartScale+dx, y+row*chartScale+dy, c)
					}
				}
			}
		}
		x += charW
	}
}

func fillRect(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			img.Set(x, y, c)
		}
	}
}

// bar is one bar of a panel.
type bar struct {
	label  string
	family string
	value  float64
	text   string
}

type panel struct {
	title string
	bars  []bar
}

func chartPanels(res *results) []panel {
	var ps []panel
	if len(res.Echo) > 0 {
		p := panel{title: "1. Echo ping-pong: round trips/s (higher is better)"}
		for _, s := range systems {
			if r, ok := res.Echo[s.Name]; ok {
				p.bars = append(p.bars, bar{s.Name, s.Family, r.PerSec, fmt.Sprintf("%.0f  p99 %.1f ms", r.PerSec, r.P99us/1000)})
			}
		}
		ps = append(ps, p)
	}
	if len(res.Stream) > 0 {
		p := panel{title: "2. Stream server to client: messages/s (higher is better)"}
		for _, s := range systems {
			if r, ok := res.Stream[s.Name]; ok {
				p.bars = append(p.bars, bar{s.Name, s.Family, r.PerSec, fmt.Sprintf("%.0f", r.PerSec)})
			}
		}
		ps = append(ps, p)
	}
	for _, n := range res.Config.FanoutSizes {
		p := panel{title: fmt.Sprintf("3. Fan-out to %d sessions: p99 ms (lower is better)", n)}
		for _, name := range wsSystems {
			if r, ok := res.Fanout[name][n]; ok {
				p.bars = append(p.bars, bar{name, systemByName(name).Family, r.P99ms, fmt.Sprintf("p99 %.1f  p50 %.1f ms", r.P99ms, r.P50ms)})
			}
		}
		if len(p.bars) > 0 {
			ps = append(ps, p)
		}
	}
	for _, n := range res.Config.IdleSizes {
		p := panel{title: fmt.Sprintf("4. Idle, %d sessions: RSS KiB per session (lower is better)", n)}
		for _, name := range wsSystems {
			if r, ok := res.Idle[name][n]; ok {
				p.bars = append(p.bars, bar{name, systemByName(name).Family, r.RSSPerSession / 1024,
					fmt.Sprintf("%.1f KiB, %.2f goroutines", r.RSSPerSession/1024, r.GoroutinesPerSess)})
			}
		}
		if len(p.bars) > 0 {
			ps = append(ps, p)
		}
	}
	if len(res.Echo) > 0 {
		p := panel{title: "5. Bytes on the wire per echoed message (lower is better)"}
		for _, s := range systems {
			if r, ok := res.Echo[s.Name]; ok {
				p.bars = append(p.bars, bar{s.Name, s.Family, r.BytesPerMsg, fmt.Sprintf("%.0f B, stream %.0f B", r.BytesPerMsg, res.Stream[s.Name].BytesPerMsg)})
			}
		}
		ps = append(ps, p)
	}
	return ps
}

// writeChart draws the panels into a PNG file.
func writeChart(res *results, path string) error {
	ps := chartPanels(res)
	h := 20
	for _, p := range ps {
		h += 40 + len(p.bars)*rowH + 16
	}
	img := image.NewRGBA(image.Rect(0, 0, chartW, h))
	fillRect(img, 0, 0, chartW, h, white)
	y := 20
	for _, p := range ps {
		drawText(img, 16, y, p.title, ink)
		y += 30
		maxV := 0.0
		for _, b := range p.bars {
			maxV = max(maxV, b.value)
		}
		barMax := chartW - labelW - 40 - 26*charW
		x0 := 16 + labelW
		fillRect(img, x0-1, y-4, x0, y+len(p.bars)*rowH, gridColor)
		for _, b := range p.bars {
			drawText(img, 16, y+2, b.label, ink)
			w := 0
			if maxV > 0 {
				w = int(float64(barMax) * b.value / maxV)
			}
			fillRect(img, x0, y, x0+max(w, 1), y+rowH-6, famColor[b.family])
			drawText(img, x0+w+8, y+2, b.text, ink)
			y += rowH
		}
		y += 26
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
