package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The chart is one SVG file: a panel per workload, stacked, each a
// horizontal bar chart (gonum.org/v1/plot) with a bar per system, coloured by
// family and labelled with its value.

// familyColor colours the bars of each family of systems.
var familyColor = map[string]color.RGBA{
	"tether": {46, 110, 200, 255},
	"raw":    {130, 130, 130, 255},
	"sockjs": {230, 140, 40, 255},
	// relayed: Tether through a cluster node that does not hold the session.
	"relayed": {120, 170, 230, 255},
}

// Sizes of the chart: its width, and the height of a panel's bar row and of
// its title and axis.
const (
	chartWidth   = 26 * vg.Centimeter
	barRowHeight = 0.75 * vg.Centimeter
	panelMargin  = 2.2 * vg.Centimeter
	panelGap     = 0.4 * vg.Centimeter
)

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
		for _, name := range fanoutSystems {
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
	return append(ps, clusterPanels(res)...)
}

// panelPlot makes the plot of one panel.
func panelPlot(p panel) (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = p.title
	pl.Title.TextStyle.Font.Size = vg.Points(11)
	pl.X.Min = 0
	names := make([]string, len(p.bars))
	maxValue := 0.0
	for i, b := range p.bars {
		// One chart per bar, so that each takes its family's colour; the
		// first bar is drawn at the top.
		row := float64(len(p.bars) - 1 - i)
		names[len(p.bars)-1-i] = b.label
		bc, err := plotter.NewBarChart(plotter.Values{b.value}, barRowHeight*0.7)
		if err != nil {
			return nil, err
		}
		bc.Horizontal = true
		bc.XMin = row
		bc.Color = familyColor[b.family]
		bc.LineStyle.Width = 0
		labels, err := plotter.NewLabels(plotter.XYLabels{
			XYs:    []plotter.XY{{X: b.value, Y: row}},
			Labels: []string{b.text},
		})
		if err != nil {
			return nil, err
		}
		labels.Offset = vg.Point{X: vg.Points(4), Y: -vg.Points(4)}
		pl.Add(bc, labels)
		maxValue = max(maxValue, b.value)
	}
	// Room on the right for the longest label.
	pl.X.Max = max(maxValue, 1) * 1.55
	pl.NominalY(names...)
	pl.Add(plotter.NewGrid())
	return pl, nil
}

// writeChart draws the panels into an SVG file, one above the other.
func writeChart(res *results, path string) error {
	panels := chartPanels(res)
	heights := make([]vg.Length, len(panels))
	var total vg.Length
	for i, p := range panels {
		heights[i] = panelGap + panelMargin + vg.Length(len(p.bars))*barRowHeight
		total += heights[i]
	}
	canvas := vgsvg.New(chartWidth, max(total, barRowHeight))
	dc := draw.New(canvas)
	top := dc.Max.Y
	for i, p := range panels {
		pl, err := panelPlot(p)
		if err != nil {
			return fmt.Errorf("chart panel %q: %w", p.title, err)
		}
		area := dc
		area.Max.Y = top - panelGap
		area.Min.Y = top - heights[i]
		pl.Draw(area)
		top -= heights[i]
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
