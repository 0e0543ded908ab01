package forgetstudy

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
)

// Plot is a line chart written as a self-contained SVG document.
type Plot struct {
	Title, XLabel, YLabel string
	// Width and Height in pixels; zero means 860 by 460.
	Width, Height int
	// LogY plots the y axis on a log10 scale; values ≤ 0 are dropped.
	LogY bool
	// XMin and XMax fix the x range when XMin < XMax; otherwise it fits
	// the data. Points outside are clipped.
	XMin, XMax float64
	// XFormat and YFormat print tick labels; nil means trimFloat.
	XFormat, YFormat func(float64) string
	Lines            []Line
	Marks            []Mark
}

// Line is one series of a Plot.
type Line struct {
	// Label is shown in the legend; lines sharing a label share one
	// legend entry, and an empty label has none.
	Label string
	// Color is any SVG color; empty means a palette color by index.
	Color string
	// Dash draws the line dashed (model policies, secondary series).
	Dash bool
	// Opacity in (0, 1]; zero means 1.
	Opacity float64
	X, Y    []float64
}

// Mark is a vertical line at X with a label, such as the storm start.
type Mark struct {
	X     float64
	Label string
	Color string
}

// palette is the Okabe–Ito colour-blind-safe palette.
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"}

// PaletteColor returns the i-th palette colour.
func PaletteColor(i int) string { return palette[i%len(palette)] }

// WriteSVG writes the plot. It writes nothing if it returns an error.
func (p *Plot) WriteSVG(w io.Writer) error {
	width, height := p.Width, p.Height
	if width <= 0 {
		width = 860
	}
	if height <= 0 {
		height = 460
	}
	xf, yf := p.XFormat, p.YFormat
	if xf == nil {
		xf = trimFloat
	}
	if yf == nil {
		yf = trimFloat
	}
	const left, right, top, bottom = 78, 20, 40, 52
	pw, ph := float64(width-left-right), float64(height-top-bottom)

	legend := p.legend(left, float64(height), pw)
	if n := len(legend); n > 0 {
		height += int(legend[n-1].y-float64(height)) + 12
	}

	x0, x1, y0, y1 := p.ranges()
	ty := func(v float64) float64 { return v }
	if p.LogY {
		ty = math.Log10
	}
	sx := func(v float64) float64 { return left + (v-x0)/(x1-x0)*pw }
	sy := func(v float64) float64 { return top + ph - (ty(v)-ty(y0))/(ty(y1)-ty(y0))*ph }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<clipPath id="plotarea"><rect x="%d" y="%d" width="%.1f" height="%.1f"/></clipPath>`+"\n", left, top, pw, ph)
	text(&b, float64(width)/2, 22, "middle", 15, p.Title, "")
	text(&b, left+pw/2, top+ph+38, "middle", 12, p.XLabel, "")
	text(&b, 16, top+ph/2, "middle", 12, p.YLabel, fmt.Sprintf(` transform="rotate(-90 16 %.1f)"`, top+ph/2))

	// Grid and ticks.
	for _, t := range linearTicks(x0, x1, 8) {
		x := sx(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#e4e4e4"/>`+"\n", x, top, x, top+ph)
		text(&b, x, top+ph+16, "middle", 11, xf(t), "")
	}
	var yt []float64
	if p.LogY {
		yt = logTicks(y0, y1)
	} else {
		yt = linearTicks(y0, y1, 6)
	}
	for _, t := range yt {
		y := sy(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e4e4e4"/>`+"\n", left, y, left+pw, y)
		text(&b, left-6, y+4, "end", 11, yf(t), "")
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)

	// Data.
	fmt.Fprintf(&b, `<g clip-path="url(#plotarea)" fill="none" stroke-width="1.5" stroke-linejoin="round">`+"\n")
	for i, l := range p.Lines {
		color := l.Color
		if color == "" {
			color = PaletteColor(i)
		}
		fmt.Fprintf(&b, `<polyline stroke="%s"`, attr(color))
		if l.Dash {
			b.WriteString(` stroke-dasharray="6 4"`)
		}
		if l.Opacity > 0 && l.Opacity < 1 {
			fmt.Fprintf(&b, ` stroke-opacity="%.2f"`, l.Opacity)
		}
		b.WriteString(` points="`)
		n := min(len(l.X), len(l.Y))
		for j := range n {
			x, y := l.X[j], l.Y[j]
			if !finite(x) || !finite(y) || (p.LogY && y <= 0) {
				continue
			}
			fmt.Fprintf(&b, "%.1f,%.1f ", sx(x), sy(y))
		}
		b.WriteString(`"/>` + "\n")
	}
	for i, m := range p.Marks {
		if m.X < x0 || m.X > x1 {
			continue
		}
		color := m.Color
		if color == "" {
			color = "#444"
		}
		x := sx(m.X)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="2 3"/>`+"\n", x, top, x, top+ph, attr(color))
		// Stagger the labels so that close marks stay readable.
		lx, anchor := x+4, "start"
		if lx+6.5*float64(len([]rune(m.Label))) > left+pw {
			lx, anchor = x-4, "end" // keep the label inside the figure
		}
		text(&b, lx, float64(top+14+14*i), anchor, 11, m.Label, fmt.Sprintf(` fill="%s"`, attr(color)))
	}
	b.WriteString("</g>\n")

	// Legend below the plot, one entry per distinct label.
	for _, e := range legend {
		dash := ""
		if e.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", e.x, e.y, e.x+22, e.y, attr(e.color), dash)
		text(&b, e.x+28, e.y+4, "start", 11, e.label, "")
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// legendEntry is one legend item and where it goes.
type legendEntry struct {
	label, color string
	dash         bool
	x, y         float64
}

// legend lays out one entry per distinct label in rows under a plot area
// of width pw whose figure (before the legend) is height tall.
func (p *Plot) legend(left int, height, pw float64) []legendEntry {
	var es []legendEntry
	seen := map[string]bool{}
	x, y := float64(left), height+4
	for i, l := range p.Lines {
		if l.Label == "" || seen[l.Label] {
			continue
		}
		seen[l.Label] = true
		color := l.Color
		if color == "" {
			color = PaletteColor(i)
		}
		w := 40 + 6.5*float64(len([]rune(l.Label)))
		if x > float64(left) && x+w > float64(left)+pw {
			x, y = float64(left), y+16
		}
		es = append(es, legendEntry{label: l.Label, color: color, dash: l.Dash, x: x, y: y})
		x += w
	}
	return es
}

// ranges returns the data ranges, padded and made non-empty.
func (p *Plot) ranges() (x0, x1, y0, y1 float64) {
	x0, x1 = math.Inf(1), math.Inf(-1)
	y0, y1 = math.Inf(1), math.Inf(-1)
	fixX := p.XMin < p.XMax
	if fixX {
		x0, x1 = p.XMin, p.XMax
	}
	for _, l := range p.Lines {
		for j := range min(len(l.X), len(l.Y)) {
			x, y := l.X[j], l.Y[j]
			if !finite(x) || !finite(y) || (p.LogY && y <= 0) {
				continue
			}
			if fixX && (x < x0 || x > x1) {
				continue
			}
			if !fixX {
				x0, x1 = math.Min(x0, x), math.Max(x1, x)
			}
			y0, y1 = math.Min(y0, y), math.Max(y1, y)
		}
	}
	if x0 > x1 {
		x0, x1 = 0, 1
	}
	if x0 == x1 {
		x0, x1 = x0-1, x1+1
	}
	if y0 > y1 {
		y0, y1 = 0, 1
		if p.LogY {
			y0, y1 = 1, 10
		}
	}
	if p.LogY {
		y0 = math.Pow(10, math.Floor(math.Log10(y0)))
		y1 = math.Pow(10, math.Ceil(math.Log10(y1)))
		if y0 == y1 {
			y1 = y0 * 10
		}
		return
	}
	if y0 > 0 {
		y0 = 0 // counts and sizes read best from zero
	}
	if y0 == y1 {
		y1 = y0 + 1
	}
	y1 += (y1 - y0) * 0.05
	return
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// linearTicks returns about n round tick values in [lo, hi]: multiples of
// 1, 2 or 5 times a power of ten.
func linearTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) || n < 1 {
		return nil
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ts []float64
	for k := math.Ceil(lo/step - 1e-9); k*step <= hi+step*1e-9; k++ {
		t := k * step
		if k == 0 {
			t = 0 // not -0
		}
		ts = append(ts, t)
	}
	return ts
}

// logTicks returns the powers of ten in [lo, hi], with 2× and 5× added
// when the range spans fewer than three decades.
func logTicks(lo, hi float64) []float64 {
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	a, z := int(math.Floor(math.Log10(lo))), int(math.Ceil(math.Log10(hi)))
	mults := []float64{1}
	if z-a < 3 {
		mults = []float64{1, 2, 5}
	}
	var ts []float64
	for e := a; e <= z; e++ {
		for _, m := range mults {
			t := m * math.Pow(10, float64(e))
			if t >= lo*(1-1e-9) && t <= hi*(1+1e-9) {
				ts = append(ts, t)
			}
		}
	}
	return ts
}

// text writes an escaped <text> element.
func text(b *bytes.Buffer, x, y float64, anchor string, size int, s, extra string) {
	if s == "" {
		return
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d"%s>`, x, y, anchor, size, extra)
	xml.EscapeText(b, []byte(s))
	b.WriteString("</text>\n")
}

// attr escapes s for a double-quoted attribute.
func attr(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
