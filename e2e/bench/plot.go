package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strings"
)

// writePlot draws one line chart per scaling dimension, side by side, with the standard library only: a
// tiny bitmap font for the labels, Bresenham lines, square markers.
func writePlot(path string, dims []dimension) error {
	if len(dims) == 0 {
		return nil
	}
	const panelW, panelH, scale = 420, 340, 2
	img := image.NewRGBA(image.Rect(0, 0, panelW*len(dims)*scale, (panelH+40)*scale))
	c := &canvas{img: img, scale: scale}
	c.fill(0, 0, panelW*len(dims), panelH+40, color.RGBA{255, 255, 255, 255})
	c.text(10, 8, "AGENTGATE POLICY COST BY SIZE: CPU MICROSECONDS PER OPERATION (DEFAULT POLICY, COMPLIANT POD)", black, 1)
	for i, d := range dims {
		c.panel(i*panelW, 30, panelW, panelH, d)
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

var (
	black  = color.RGBA{0, 0, 0, 255}
	grey   = color.RGBA{220, 220, 220, 255}
	colors = map[string]color.RGBA{
		"check":  {31, 119, 180, 255},
		"judge":  {214, 39, 40, 255},
		"mutate": {44, 160, 44, 255},
	}
)

// canvas draws in logical pixels, each scale×scale device pixels.
type canvas struct {
	img   *image.RGBA
	scale int
}

func (c *canvas) set(x, y int, col color.RGBA) {
	for dy := range c.scale {
		for dx := range c.scale {
			c.img.SetRGBA(x*c.scale+dx, y*c.scale+dy, col)
		}
	}
}

func (c *canvas) fill(x0, y0, w, h int, col color.RGBA) {
	for y := y0; y < y0+h; y++ {
		for x := x0; x < x0+w; x++ {
			c.set(x, y, col)
		}
	}
}

func (c *canvas) line(x0, y0, x1, y1 int, col color.RGBA, thick int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		for t := range thick {
			c.set(x0, y0+t-thick/2, col)
			c.set(x0+t-thick/2, y0, col)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

// text writes upper-case text in the 5×7 font, size times magnified; lower case is drawn as upper case.
func (c *canvas) text(x, y int, s string, col color.RGBA, size int) {
	for _, r := range strings.ToUpper(s) {
		g, ok := font[r]
		if !ok {
			g = font['?']
		}
		for row, bits := range g {
			for colx, ch := range bits {
				if ch == '#' {
					for sy := range size {
						for sx := range size {
							c.set(x+colx*size+sx, y+row*size+sy, col)
						}
					}
				}
			}
		}
		x += 6 * size
	}
}

func textWidth(s string, size int) int { return len([]rune(s)) * 6 * size }

// niceMax rounds up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}

// panel draws one chart: x the size, y µs per operation, a line per operation.
func (c *canvas) panel(px, py, w, h int, d dimension) {
	const left, right, top, bottom = 52, 14, 22, 40
	x0, y0 := px+left, py+top
	pw, ph := w-left-right, h-top-bottom
	c.text(px+left, py+4, d.title, black, 1)
	xmax := float64(d.xs[len(d.xs)-1])
	ymaxRaw := 0.0
	for _, op := range d.ops {
		for _, v := range d.ns[op] {
			ymaxRaw = max(ymaxRaw, v/1000)
		}
	}
	ymax := niceMax(ymaxRaw)
	// grid and ticks
	for i := 0; i <= 5; i++ {
		yv := ymax * float64(i) / 5
		y := y0 + ph - int(float64(ph)*float64(i)/5)
		c.line(x0, y, x0+pw, y, grey, 1)
		lbl := fmtTick(yv)
		c.text(x0-6-textWidth(lbl, 1), y-3, lbl, black, 1)
	}
	xmaxNice := niceMax(xmax)
	for i := 0; i <= 5; i++ {
		xv := xmaxNice * float64(i) / 5
		x := x0 + int(float64(pw)*xv/xmaxNice)
		c.line(x, y0, x, y0+ph, grey, 1)
		lbl := fmtTick(xv)
		c.text(x-textWidth(lbl, 1)/2, y0+ph+6, lbl, black, 1)
	}
	c.line(x0, y0, x0, y0+ph, black, 1)
	c.line(x0, y0+ph, x0+pw, y0+ph, black, 1)
	c.text(x0+pw/2-textWidth(d.unit, 1)/2, y0+ph+20, d.unit, black, 1)
	c.text(px+4, y0-14, "US/OP", black, 1)
	// series
	ly := y0 + 4
	for _, op := range d.ops {
		col := colors[op]
		var lx, lyy int
		for i, v := range d.ns[op] {
			x := x0 + int(float64(pw)*float64(d.xs[i])/xmaxNice)
			y := y0 + ph - int(float64(ph)*(v/1000)/ymax)
			if i > 0 {
				c.line(lx, lyy, x, y, col, 2)
			}
			c.fill(x-2, y-2, 5, 5, col)
			lx, lyy = x, y
		}
		// legend
		c.fill(x0+8, ly+1, 14, 5, col)
		c.text(x0+26, ly, op, black, 1)
		ly += 11
	}
}

// font is a 5×7 bitmap font for the characters the plot uses.
var font = map[rune][7]string{
	' ': {".....", ".....", ".....", ".....", ".....", ".....", "....."},
	'0': {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."},
	'1': {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'2': {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"},
	'3': {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."},
	'4': {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."},
	'5': {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."},
	'6': {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."},
	'7': {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."},
	'8': {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."},
	'9': {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."},
	'A': {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'B': {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."},
	'C': {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."},
	'D': {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."},
	'E': {"#####", "#....", "#....", "####.", "#....", "#....", "#####"},
	'F': {"#####", "#....", "#....", "####.", "#....", "#....", "#...."},
	'G': {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"},
	'H': {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'I': {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'J': {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."},
	'K': {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"},
	'L': {"#....", "#....", "#....", "#....", "#....", "#....", "#####"},
	'M': {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"},
	'N': {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"},
	'O': {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'P': {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."},
	'Q': {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"},
	'R': {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"},
	'S': {".####", "#....", "#....", ".###.", "....#", "....#", "####."},
	'T': {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."},
	'U': {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'V': {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."},
	'W': {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."},
	'X': {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"},
	'Y': {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."},
	'Z': {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"},
	'.': {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."},
	',': {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."},
	':': {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."},
	';': {".....", ".##..", ".##..", ".....", ".##..", "..#..", ".#..."},
	'-': {".....", ".....", ".....", "#####", ".....", ".....", "....."},
	'/': {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."},
	'(': {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."},
	')': {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."},
	'=': {".....", ".....", "#####", ".....", "#####", ".....", "....."},
	'?': {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."},
	'%': {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"},
}
