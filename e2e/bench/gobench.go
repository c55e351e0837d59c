package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// benchSample is one line of `go test -bench` output.
type benchSample struct {
	NsOp, CPUNsOp, BOp, AllocsOp, MBs float64
}

// benchSet is every sample of every benchmark, by name (without the -GOMAXPROCS suffix), in first-seen order.
type benchSet struct {
	names   []string
	samples map[string][]benchSample
}

func parseBench(out []byte) *benchSet {
	bs := &benchSet{samples: map[string][]benchSample{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		var s benchSample
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				s.NsOp = v
			case "cpu-ns/op":
				s.CPUNsOp = v
			case "B/op":
				s.BOp = v
			case "allocs/op":
				s.AllocsOp = v
			case "MB/s":
				s.MBs = v
			}
		}
		if _, ok := bs.samples[name]; !ok {
			bs.names = append(bs.names, name)
		}
		bs.samples[name] = append(bs.samples[name], s)
	}
	return bs
}

func (bs *benchSet) median(name string, f func(benchSample) float64) float64 {
	var xs []float64
	for _, s := range bs.samples[name] {
		xs = append(xs, f(s))
	}
	return median(xs)
}

func nsOp(s benchSample) float64     { return s.NsOp }
func cpuNsOp(s benchSample) float64  { return s.CPUNsOp }
func bOp(s benchSample) float64      { return s.BOp }
func allocsOp(s benchSample) float64 { return s.AllocsOp }

// goBench runs one `go test -bench` command in the repository and returns its raw output.
func goBench(ctx context.Context, root string, rec *recorder, bench string, count int, pkgs ...string) ([]byte, error) {
	args := []string{"test", "-run", "^$", "-bench", bench, "-benchmem", "-count", strconv.Itoa(count)}
	args = append(args, pkgs...)
	rec.command("go " + strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.Bytes(), nil
}

// benchstat compares two go test outputs with golang.org/x/perf's benchstat (fetched through the module
// proxy). It returns "" and the error when benchstat cannot run: the report says so instead.
func benchstat(ctx context.Context, root string, rec *recorder, oldFile, newFile string) (string, error) {
	args := []string{"run", "golang.org/x/perf/cmd/benchstat@latest", oldFile, newFile}
	rec.command("go " + strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("benchstat: %v: %s", err, errb.String())
	}
	return out.String(), nil
}
