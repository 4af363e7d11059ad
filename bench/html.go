package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// runColors tells the runs of a comparison apart in the charts.
var runColors = []string{"#1f6feb", "#d1242f", "#2da44e", "#8250df"}

// WriteHTML writes rep as one self-contained HTML page: the tables of the
// text report, the latency distribution of each scenario (latency by
// percentile) and latency and server usage over time, drawn as inline SVG.
// The page loads nothing from the network.
func WriteHTML(w io.Writer, rep *Report) error {
	var b strings.Builder
	m := rep.Machine
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>eventhub bench</title><style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1f2328;padding:0 1em}
table{border-collapse:collapse;margin:.6em 0 1.2em}td,th{padding:.2em .8em;border-bottom:1px solid #d0d7de;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f6f8fa}h2{margin-top:2em;border-bottom:2px solid #d0d7de}
.charts{display:flex;flex-wrap:wrap;gap:1em}svg{background:#fff;border:1px solid #d0d7de}
code{background:#f6f8fa;padding:.1em .3em}small{color:#57606a}
</style></head><body><h1>eventhub bench</h1>`)
	fmt.Fprintf(&b, "<p><small>%d CPUs (%s), %.1f GiB, Linux %s, %s, open files %s</small><br><code>%s</code></p>",
		m.CPUs, html.EscapeString(m.CPUModel), m.MemoryGiB, html.EscapeString(m.Kernel), html.EscapeString(m.Go),
		html.EscapeString(m.OpenFiles), html.EscapeString(rep.Command))
	for _, c := range rep.Comparisons {
		fmt.Fprintf(&b, "<h2>%s</h2>", html.EscapeString(c.Scenario))
		htmlTable(&b, summaryRows(c))
		if rows := ratioRows(c); rows != nil {
			b.WriteString("<h3>eventhub / floor, measured in the same run</h3>")
			htmlTable(&b, rows)
		}
		if rows := selectiveRows(c); rows != nil {
			b.WriteString("<h3>selective / broadcast, same hub binary and floor, measured in the same run</h3>")
			htmlTable(&b, rows)
		}
		if rows := conflationRows(c); rows != nil {
			b.WriteString("<h3>with conflation / without, same hub binary, measured in the same run</h3>")
			htmlTable(&b, rows)
		}
		for _, r := range c.Runs {
			if rows := phaseRows(r); rows != nil {
				fmt.Fprintf(&b, "<h3>phases: %s</h3>", html.EscapeString(runName(c, r)))
				htmlTable(&b, rows)
			}
		}
		b.WriteString(`<div class="charts">`)
		b.WriteString(distributionChart(c))
		b.WriteString(overTimeChart(c))
		b.WriteString(usageChart(c))
		b.WriteString("</div>")
	}
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func htmlTable(b *strings.Builder, rows [][]string) {
	b.WriteString("<table>")
	for i, cells := range rows {
		b.WriteString("<tr>")
		for _, c := range cells {
			tag := "td"
			if i == 0 {
				tag = "th"
			}
			fmt.Fprintf(b, "<%s>%s</%s>", tag, html.EscapeString(c), tag)
		}
		b.WriteString("</tr>")
	}
	b.WriteString("</table>")
}

// line is one series of a chart.
type line struct {
	name   string
	color  string
	dashed bool
	pts    [][2]float64
}

// chart draws lines on linear axes (or a log y axis) as an SVG element.
type chart struct {
	title, xLabel, yLabel string
	logY                  bool
	xTicks                []float64
	xTickLabel            func(float64) string
	lines                 []line
}

const (
	chartW, chartH         = 540, 300
	padL, padR, padT, padB = 60, 15, 30, 45
)

func (c *chart) svg() string {
	var xmin, xmax, ymin, ymax = math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, l := range c.lines {
		for _, p := range l.pts {
			xmin, xmax = math.Min(xmin, p[0]), math.Max(xmax, p[0])
			y := p[1]
			if c.logY && y <= 0 {
				continue
			}
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	if math.IsInf(xmin, 0) || math.IsInf(ymin, 0) {
		return ""
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	var yTicks []float64
	if c.logY {
		ymin = math.Pow(10, math.Floor(math.Log10(ymin)))
		ymax = math.Pow(10, math.Ceil(math.Log10(ymax)))
		if ymax <= ymin {
			ymax = ymin * 10
		}
		for v := ymin; v <= ymax*1.0001; v *= 10 {
			yTicks = append(yTicks, v)
		}
	} else {
		ymin = 0
		step := niceStep(ymax / 5)
		ymax = math.Ceil(ymax/step) * step
		if ymax == 0 {
			ymax, step = 1, 0.2
		}
		for v := 0.0; v <= ymax*1.0001; v += step {
			yTicks = append(yTicks, v)
		}
	}
	sx := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*(chartW-padL-padR) }
	sy := func(y float64) float64 {
		f := (y - ymin) / (ymax - ymin)
		if c.logY {
			f = (math.Log10(math.Max(y, ymin)) - math.Log10(ymin)) / (math.Log10(ymax) - math.Log10(ymin))
		}
		return chartH - padB - f*(chartH-padT-padB)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-size="11">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13" font-weight="bold">%s</text>`, padL, html.EscapeString(c.title))
	for _, v := range yTicks {
		y := sy(v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eaeef2"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			padL, chartW-padR, y, y, padL-5, y+4, trimFloat(v))
	}
	xTicks := c.xTicks
	if xTicks == nil {
		step := niceStep((xmax - xmin) / 6)
		for v := math.Ceil(xmin/step) * step; v <= xmax; v += step {
			xTicks = append(xTicks, v)
		}
	}
	label := c.xTickLabel
	if label == nil {
		label = trimFloat
	}
	for _, v := range xTicks {
		if v < xmin || v > xmax {
			continue
		}
		x := sx(v)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eaeef2"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`,
			x, x, padT, chartH-padB, x, chartH-padB+14, html.EscapeString(label(v)))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#8c959f"/>`, padL, padT, chartW-padL-padR, chartH-padT-padB)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, (chartW+padL)/2, chartH-8, html.EscapeString(c.xLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %d) rotate(-90)" text-anchor="middle">%s</text>`, (chartH-padB+padT)/2, html.EscapeString(c.yLabel))
	for i, l := range c.lines {
		var pts strings.Builder
		for _, p := range l.pts {
			if c.logY && p[1] <= 0 {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", sx(p[0]), sy(p[1]))
		}
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="4 3"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>`, l.color, dash, pts.String())
		y := padT + 14 + 14*i
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s</text>`,
			padL+8, padL+26, y-4, y-4, l.color, dash, padL+30, y, html.EscapeString(l.name))
	}
	b.WriteString("</svg>")
	return b.String()
}

// niceStep rounds a step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// distributionChart plots latency by percentile: x is -log10(1−q), so
// 90%, 99%, 99.9% are evenly spaced and the tail is visible.
func distributionChart(c *Comparison) string {
	ch := &chart{title: "latency distribution", xLabel: "percentile", yLabel: "latency (ms)", logY: true,
		xTicks: []float64{0, 1, 2, 3, 4, 5},
		xTickLabel: func(x float64) string {
			return map[float64]string{0: "0%", 1: "90%", 2: "99%", 3: "99.9%", 4: "99.99%", 5: "99.999%"}[x]
		}}
	for i, r := range c.Runs {
		h := r.Histogram
		if h == nil || h.Count() == 0 {
			continue
		}
		l := line{name: runName(c, r), color: runColors[i%len(runColors)]}
		n := float64(h.Count())
		seen := 0.0
		for _, bk := range h.Buckets() {
			q := seen / n
			seen += float64(bk.Count)
			x := -math.Log10(1 - q)
			if x > 5 {
				x = 5
			}
			l.pts = append(l.pts, [2]float64{x, ms(bk.Lo)})
			q = seen / n
			if q < 1 {
				l.pts = append(l.pts, [2]float64{math.Min(-math.Log10(1-q), 5), ms(bk.Hi)})
			} else {
				l.pts = append(l.pts, [2]float64{5, ms(h.Max())})
			}
		}
		ch.lines = append(ch.lines, l)
	}
	return ch.svg()
}

// overTimeChart plots each second's p50 and p99 latency.
func overTimeChart(c *Comparison) string {
	ch := &chart{title: "latency over time (p50 solid, p99 dashed)", xLabel: "seconds since the run began", yLabel: "latency (ms)", logY: true}
	for i, r := range c.Runs {
		p50 := line{name: runName(c, r) + " p50", color: runColors[i%len(runColors)]}
		p99 := line{name: runName(c, r) + " p99", color: runColors[i%len(runColors)], dashed: true}
		for _, p := range r.Series {
			if p.Latency != nil {
				p50.pts = append(p50.pts, [2]float64{float64(p.T), p.Latency.P50})
				p99.pts = append(p99.pts, [2]float64{float64(p.T), p.Latency.P99})
			}
		}
		if len(p50.pts) > 0 {
			ch.lines = append(ch.lines, p50, p99)
		}
	}
	return ch.svg()
}

// usageChart plots the server's RSS and CPU each second.
func usageChart(c *Comparison) string {
	ch := &chart{title: "server RSS (MiB, solid) and CPU (% of a core, dashed)", xLabel: "seconds since the run began", yLabel: "MiB / %"}
	for i, r := range c.Runs {
		rss := line{name: runName(c, r) + " RSS", color: runColors[i%len(runColors)]}
		cpu := line{name: runName(c, r) + " CPU", color: runColors[i%len(runColors)], dashed: true}
		for _, p := range r.Series {
			if p.RSS > 0 {
				rss.pts = append(rss.pts, [2]float64{float64(p.T), float64(p.RSS) / (1 << 20)})
				cpu.pts = append(cpu.pts, [2]float64{float64(p.T), 100 * p.CPU})
			}
		}
		if len(rss.pts) > 0 {
			ch.lines = append(ch.lines, rss, cpu)
		}
	}
	return ch.svg()
}
