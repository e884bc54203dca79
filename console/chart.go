package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/remediator/remediator/ops"
)

// chartStep and chartSpan size the chart: 30 slices over six overview windows (30 minutes for
// the default 5m window).
func chartStep(window time.Duration) time.Duration { return max(window*6/30, 10*time.Second) }
func chartSpan(window time.Duration) time.Duration { return window * 6 }

// chart is a server-rendered SVG of outcomes per slice (stacked bars) and the median time to
// remediate (a line on its own scale): readable with JavaScript off.
type chart struct {
	SVG       template.HTML
	Step      time.Duration
	Succeeded int
	Retrying  int
	Failed    int
	TTRMedian string
}

const (
	chartW, chartH = 720, 180
	chartPad       = 28
)

func newChart(buckets []ops.Bucket, step time.Duration) chart {
	ch := chart{Step: step}
	peak, ttrPeak := 1, int64(1)
	for _, b := range buckets {
		peak = max(peak, b.Succeeded+b.Retrying+b.Failed)
		if b.RemediateP50MS != nil {
			ttrPeak = max(ttrPeak, *b.RemediateP50MS)
		}
		ch.Succeeded += b.Succeeded
		ch.Retrying += b.Retrying
		ch.Failed += b.Failed
	}
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="outcomes and time to remediate" class="chart">`, chartW, chartH)
	fmt.Fprintf(&s, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, chartPad, chartH-chartPad, chartW-4, chartH-chartPad)
	fmt.Fprintf(&s, `<text x="2" y="14" class="label">%d</text><text x="2" y="%d" class="label">0</text>`, peak, chartH-chartPad)
	n := max(len(buckets), 1)
	slot := float64(chartW-chartPad-4) / float64(n)
	plotH := float64(chartH - 2*chartPad + 10)
	var line []string
	for i, b := range buckets {
		x := float64(chartPad) + float64(i)*slot
		y := float64(chartH - chartPad)
		for _, part := range []struct {
			n     int
			class string
		}{{b.Succeeded, "succeeded"}, {b.Retrying, "retrying"}, {b.Failed, "failed"}} {
			if part.n == 0 {
				continue
			}
			h := float64(part.n) / float64(peak) * plotH
			y -= h
			fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="%s"><title>%s %s: %d</title></rect>`,
				x+1, y, max(slot-2, 1), h, part.class, b.Start.UTC().Format("15:04:05"), part.class, part.n)
		}
		if b.RemediateP50MS != nil {
			ty := float64(chartH-chartPad) - float64(*b.RemediateP50MS)/float64(ttrPeak)*plotH
			line = append(line, fmt.Sprintf("%.1f,%.1f", x+slot/2, ty))
		}
	}
	if len(line) > 1 {
		fmt.Fprintf(&s, `<polyline points="%s" class="ttr"/>`, strings.Join(line, " "))
	}
	for _, p := range line {
		var x, y float64
		fmt.Sscanf(p, "%f,%f", &x, &y)
		fmt.Fprintf(&s, `<circle cx="%.1f" cy="%.1f" r="2.5" class="ttr-dot"/>`, x, y)
	}
	fmt.Fprintf(&s, `<text x="%d" y="14" class="label" text-anchor="end">time to remediate, max %s</text>`, chartW-4, (time.Duration(ttrPeak) * time.Millisecond).String())
	if len(buckets) > 0 {
		fmt.Fprintf(&s, `<text x="%d" y="%d" class="label">%s</text><text x="%d" y="%d" class="label" text-anchor="end">now</text>`,
			chartPad, chartH-8, buckets[0].Start.UTC().Format("15:04 MST"), chartW-4, chartH-8)
	}
	s.WriteString(`</svg>`)
	ch.SVG = template.HTML(s.String()) // built here from numbers and fixed class names only
	return ch
}
