package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

type report struct {
	cfg     config
	machine machine
	rec     recorder

	goHot, goWeb, goScale *benchSet
	benchstat             map[string]string // package -> benchstat output or the reason it is missing
	checkSmallNs          float64
	checkSmallCPUNs       float64

	closed     []*scenario
	open       []*scenario
	loadStart  string // load average when the load runs started
	loadFinish string

	api *apiResult
}

// goBenchmarks runs the hot-path benchmarks (several counts, for benchstat) and the scaling ones.
func (r *report) goBenchmarks(ctx context.Context, tmp string) error {
	r.benchstat = map[string]string{}
	type run struct {
		key, bench string
		pkgs       []string
		dst        **benchSet
	}
	for _, g := range []run{
		{"policy", "Check|Harden|Judge|Mutate", []string{"./policy/"}, &r.goHot},
		{"webhook", "Decode|Handler|Floor", []string{"./webhook/"}, &r.goWeb},
	} {
		// -benchtime 0.5s, as the baseline was measured: long enough for CPU time per op to settle.
		out, err := goBench(ctx, r.cfg.root, &r.rec, g.bench, r.cfg.count, append([]string{"-benchtime", "0.5s"}, g.pkgs...)...)
		if err != nil {
			return err
		}
		*g.dst = parseBench(out)
		newFile := filepath.Join(tmp, "new-"+g.key+".txt")
		if err := os.WriteFile(newFile, out, 0o644); err != nil {
			return err
		}
		// The current figures are kept beside the baseline, so that the next change has a "before".
		_ = os.WriteFile(filepath.Join(r.cfg.baseline, "latest-"+g.key+".txt"), out, 0o644)
		oldFile := filepath.Join(r.cfg.baseline, "baseline-"+g.key+".txt")
		if _, err := os.Stat(oldFile); err != nil {
			r.benchstat[g.key] = "(no baseline file " + rel(r.cfg.root, oldFile) + ")"
			continue
		}
		// benchstat names the columns after the files: copy them under readable names.
		before, after := filepath.Join(tmp, "before"), filepath.Join(tmp, "after")
		data, _ := os.ReadFile(oldFile)
		_ = os.WriteFile(before, data, 0o644)
		_ = os.WriteFile(after, out, 0o644)
		st, err := benchstat(ctx, tmp, &r.rec, "before", "after")
		if err != nil {
			st = "(benchstat could not run: " + err.Error() + ")"
		}
		r.benchstat[g.key] = st
	}
	r.checkSmallNs = r.goHot.median("BenchmarkCheck/small", nsOp)
	if cpu := r.goHot.median("BenchmarkCheck/small", cpuNsOp); cpu > 0 {
		r.checkSmallCPUNs = cpu
	}
	out, err := goBench(ctx, r.cfg.root, &r.rec, "Scale", 5, "-benchtime", "0.2s", "./policy/")
	if err != nil {
		return err
	}
	r.goScale = parseBench(out)
	return writePlot(r.cfg.plot, r.scaling())
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// loadRuns measures agentgate and the floor in the same run, alternating, on the same payloads.
func (r *report) loadRuns(ctx context.Context, tmp string) error {
	loadBin, err := buildTool(ctx, r.cfg.root, tmp, "./e2e/load", &r.rec)
	if err != nil {
		return err
	}
	floorBin, err := buildTool(ctx, r.cfg.root, tmp, "./e2e/load/floor", &r.rec)
	if err != nil {
		return err
	}
	r.rec.command(rel(r.cfg.root, r.cfg.agentgate) + " serve --addr 127.0.0.1:$PORT --metrics-addr 0 --self-signed-dir $DIR --http2   # embedded default policy, audit log at info to a file")
	r.rec.command("$TMP/floor -addr 127.0.0.1:$PORT -cert-out $CA -http2=true -null=false   # -null=true: the null server of the open loop")
	r.loadStart = loadAvg()
	ag, err := startAgentgate(r.cfg.agentgate, tmp)
	if err != nil {
		return err
	}
	defer ag.stop()
	fl, err := startFloor(floorBin, tmp, true, false)
	if err != nil {
		return err
	}
	defer fl.stop()
	for _, s := range []*server{ag, fl} {
		if err := waitServing(ctx, s); err != nil {
			return err
		}
	}
	var runs []loadRun
	for _, h2 := range []bool{false, true} {
		for _, c := range []struct{ path, corpus string }{
			{"/validate", "small"}, {"/validate", "large"}, {"/validate", "deployment"}, {"/mutate", "small"},
		} {
			runs = append(runs, loadRun{Path: c.path, Corpus: c.corpus, Mode: "closed", HTTP2: h2, C: 32,
				Duration: r.cfg.closedD, Warmup: r.cfg.warmup})
		}
	}
	for _, run := range runs {
		sc := &scenario{run: run}
		r.rec.command("$TMP/load " + strings.Join(run.args(ag, true), " ") + "   # x" + strconv.Itoa(r.cfg.reps) + " against each server, alternating")
		for i := range r.cfg.reps {
			order := []*server{ag, fl}
			if i%2 == 1 {
				order = []*server{fl, ag}
			}
			for _, s := range order {
				rep, err := run.run(ctx, loadBin, s)
				if err != nil {
					return err
				}
				if s == ag {
					sc.agentgate = append(sc.agentgate, rep)
				} else {
					sc.floor = append(sc.floor, rep)
				}
				fmt.Fprintf(os.Stderr, "bench: %-9s %-40s %8.0f reviews/s  server %5.0f µs/review\n", s.name, run.key(), rep.Throughput, rep.ServerCPUUS)
			}
		}
		r.closed = append(r.closed, sc)
	}
	ag.stop()
	fl.stop()

	// Open loop on fresh processes, so that the RSS is what this rate needs, not the closed loops' peak. First
	// over HTTP/1.1, as the API server calls a webhook behind a Service (the target), then over HTTP/2.
	for _, h2 := range []bool{false, true} {
		open := loadRun{Path: "/validate", Corpus: "small", Mode: "open", HTTP2: h2, C: 64, Rate: r.cfg.openRate,
			Duration: r.cfg.openD, Warmup: r.cfg.warmup}
		sc := &scenario{run: open}
		for _, start := range []func() (*server, error){
			func() (*server, error) { return startAgentgate(r.cfg.agentgate, tmp) },
			func() (*server, error) { return startFloor(floorBin, tmp, true, false) },
			func() (*server, error) { return startFloor(floorBin, tmp, true, true) },
		} {
			s, err := start()
			if err != nil {
				return err
			}
			if err := waitServing(ctx, s); err != nil {
				s.stop()
				return err
			}
			if s.name == "agentgate" {
				r.rec.command("$TMP/load " + strings.Join(open.args(s, true), " ") + "   # against a freshly started agentgate, then a fresh floor, then a fresh floor -null")
			}
			rep, err := open.run(ctx, loadBin, s)
			s.stop()
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "bench: %-9s %-40s p99 %.3f ms  RSS %.1f MiB\n", s.name, open.key(), rep.LatencyMS.P99, rssMiB(rep))
			switch s.name {
			case "agentgate":
				sc.agentgate = append(sc.agentgate, rep)
			case "floor":
				sc.floor = append(sc.floor, rep)
			default:
				sc.null = append(sc.null, rep)
			}
		}
		r.open = append(r.open, sc)
	}
	r.loadFinish = loadAvg()
	return nil
}

func (r *report) find(path, corpus string, h2 bool) *scenario {
	for _, s := range r.closed {
		if s.run.Path == path && s.run.Corpus == corpus && s.run.HTTP2 == h2 {
			return s
		}
	}
	return nil
}

// target is one line of the targets table.
type target struct {
	name, figure, want string
	met                bool
	known              bool
}

func (r *report) targets() []target {
	var ts []target
	ratio := func(path, corpus string, h2 bool) (float64, float64, bool) {
		s := r.find(path, corpus, h2)
		if s == nil || len(s.agentgate) == 0 {
			return 0, 0, false
		}
		tput := pick(s.agentgate, throughput) / pick(s.floor, throughput)
		cpu := pick(s.floor, serverCPU) / pick(s.agentgate, serverCPU)
		return tput, cpu, true
	}
	for _, c := range []struct {
		corpus string
		want   float64
	}{{"small", 1.2}, {"large", 1.5}} {
		for _, h2 := range []bool{false, true} {
			t, cpu, ok := ratio("/validate", c.corpus, h2)
			proto := "HTTP/1.1"
			if h2 {
				proto = "HTTP/2"
			}
			ts = append(ts, target{
				name:   fmt.Sprintf("/validate %s, closed loop c=32 %s: throughput vs floor", c.corpus, proto),
				figure: fmt.Sprintf("%.3f× (server CPU per review: floor/agentgate %.3f×)", t, cpu),
				want:   fmt.Sprintf("≥ %.1f×", c.want), met: t >= c.want, known: ok,
			})
		}
	}
	for _, h2 := range []bool{false, true} {
		m, v := r.find("/mutate", "small", h2), r.find("/validate", "small", h2)
		proto := "HTTP/1.1"
		if h2 {
			proto = "HTTP/2"
		}
		if m != nil && v != nil && len(m.agentgate) > 0 {
			x := pick(m.agentgate, throughput) / pick(v.agentgate, throughput)
			ts = append(ts, target{name: "/mutate small vs /validate small, " + proto, figure: fmt.Sprintf("%.3f×", x), want: "≥ 0.8×", met: x >= 0.8, known: true})
		}
	}
	for _, sc := range r.open {
		if len(sc.agentgate) == 0 {
			continue
		}
		o := sc.agentgate[0]
		floorP99 := ""
		if len(sc.floor) > 0 && len(sc.null) > 0 {
			floorP99 = fmt.Sprintf(" (floor %.3f ms, null %.3f ms; server CPU %.0f vs %.0f and %.0f µs/review)", sc.floor[0].LatencyMS.P99,
				sc.null[0].LatencyMS.P99, o.ServerCPUUS, sc.floor[0].ServerCPUUS, sc.null[0].ServerCPUUS)
		}
		ts = append(ts,
			target{name: fmt.Sprintf("p99, open loop %g/s small (%s, %s)", o.Rate, sc.run.proto(), r.cfg.openD), figure: fmt.Sprintf("%.3f ms%s", o.LatencyMS.P99, floorP99), want: "≤ 2 ms", met: o.LatencyMS.P99 <= 2, known: true},
			target{name: fmt.Sprintf("RSS after %s at %g/s (%s)", r.cfg.openD, o.Rate, sc.run.proto()), figure: fmt.Sprintf("%.1f MiB (peak %.1f MiB)", rssMiB(o), peakMiB(o)), want: "≤ 40 MiB", met: rssMiB(o) <= 40, known: true},
		)
	}
	if r.checkSmallNs > 0 {
		ts = append(ts, target{name: "Check, small pod (BenchmarkCheck/small)", figure: fmt.Sprintf("%.2f µs/op (CPU %.2f µs/op)", r.checkSmallNs/1000, r.checkSmallCPUNs/1000), want: "≤ 5 µs", met: r.checkSmallNs <= 5000, known: true})
	}
	if r.api != nil {
		ts = append(ts, target{name: "pod create through kube-apiserver: median with webhooks − without", figure: fmt.Sprintf("%.3f ms (the decode-only floor through the same API server: %.3f ms)", r.api.addedMS(), r.api.addedBy("floor", "hardened")), want: "≤ 1 ms", met: r.api.addedMS() <= 1, known: true})
	}
	for _, d := range r.scaling() {
		worst, worstOp := 0.0, ""
		for _, op := range d.ops {
			if c := d.cliff(op); c > worst {
				worst, worstOp = c, op
			}
		}
		ts = append(ts, target{name: "scaling, " + d.title + " (" + d.unit + " " + fmt.Sprint(d.xs[0]) + "→" + fmt.Sprint(d.xs[len(d.xs)-1]) + "): linear or better, no cliff",
			figure: fmt.Sprintf("cost per %s at the largest size / median cost per %s: at most %.2f (%s); growth exponents check %.2f, judge %.2f, mutate %.2f",
				d.one, d.one, worst, worstOp, d.exponent("check"), d.exponent("judge"), d.exponent("mutate")),
			want: "≤ 1.5", met: worst <= 1.5, known: true})
	}
	return ts
}

// dimension is one scaling table: an operation's cost by one size.
type dimension struct {
	title, unit, one, bench string
	xs                      []int
	ops                     []string
	ns                      map[string][]float64 // op -> ns/op by xs
}

// exponent fits cost ~ n^k between the first and last points: 1 is linear, below 1 the fixed cost still
// dominates, above 1 the cost per unit grows.
func (d dimension) exponent(op string) float64 {
	ys := d.ns[op]
	if len(ys) < 2 || ys[0] <= 0 {
		return math.NaN()
	}
	n0, n1 := float64(d.xs[0]), float64(d.xs[len(d.xs)-1])
	return math.Log(ys[len(ys)-1]/ys[0]) / math.Log(n1/n0)
}

// marginal is the cost of each unit past the first, at every point after the first.
func (d dimension) marginal(op string) []float64 {
	ys := d.ns[op]
	var out []float64
	for i := 1; i < len(ys); i++ {
		out = append(out, (ys[i]-ys[0])/float64(d.xs[i]-d.xs[0]))
	}
	return out
}

// cliff is the marginal cost at the largest size over the median marginal cost: about 1 when cost grows
// linearly, below 1 when better, and a cliff (cost per unit rising with size) shows well above 1.
func (d dimension) cliff(op string) float64 {
	m := d.marginal(op)
	if len(m) == 0 || median(m) <= 0 {
		return math.NaN()
	}
	return m[len(m)-1] / median(m)
}

func (r *report) scaling() []dimension {
	if r.goScale == nil {
		return nil
	}
	dims := []dimension{
		{title: "containers per pod", unit: "containers", one: "container", bench: "BenchmarkScaleContainers", xs: []int{1, 2, 5, 10, 20, 50, 100}},
		{title: "policies in force", unit: "policies", one: "policy", bench: "BenchmarkScalePolicies", xs: []int{1, 2, 5, 10, 20, 50}},
		{title: "allowlist patterns", unit: "patterns", one: "pattern", bench: "BenchmarkScaleAllowlist", xs: []int{1, 10, 100, 250, 500, 1000}},
	}
	for i := range dims {
		d := &dims[i]
		d.ops = []string{"check", "judge", "mutate"}
		d.ns = map[string][]float64{}
		for _, op := range d.ops {
			for _, x := range d.xs {
				// CPU time per operation: the wall time of a 0.2 s benchmark on a shared machine is mostly noise.
				d.ns[op] = append(d.ns[op], r.goScale.median(fmt.Sprintf("%s/%s/%s=%d", d.bench, op, d.unit, x), cpuNsOp))
			}
		}
	}
	return dims
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := r.machine
	w("# agentgate benchmarks\n\n")
	w("Generated by `make bench` (`go run ./e2e/bench`, see e2e/bench/main.go); do not edit by hand: the narrative\n")
	w("below comes from e2e/bench/NOTES.md. Issue 7 sets the targets. Client and server share the machine's cores\n")
	w("and other work ran on it: **server CPU µs per review** (from /proc, per answered review) moves less than\n")
	w("throughput does, so both are given; every load figure is the median of %d alternating runs.\n\n", r.cfg.reps)
	w("## Machine\n\n| | |\n|---|---|\n")
	w("| CPUs (nproc) | %s |\n| CPU model | %s |\n| Go | %s |\n| kernel | %s |\n| load average at start (1, 5, 15 min) | %s |\n",
		m.CPUs, m.CPUModel, m.GoVersion, m.Kernel, m.LoadAvg)
	if r.loadStart != "" {
		w("| load average when the load runs started / ended | %s / %s |\n", r.loadStart, r.loadFinish)
	}
	w("| date | %s |\n| tree | %s |\n\n", m.Date, m.Revision)

	w("## Targets\n\n| target | measured | wanted | |\n|---|---|---|---|\n")
	for _, t := range r.targets() {
		if !t.known {
			continue
		}
		mark := "met"
		if !t.met {
			mark = "**missed**"
		}
		w("| %s | %s | %s | %s |\n", t.name, t.figure, t.want, mark)
	}
	w("\n")

	if notes, err := os.ReadFile(filepath.Join(r.cfg.root, "e2e", "bench", "NOTES.md")); err == nil {
		w("%s\n", strings.TrimSpace(string(notes)))
		w("\n")
	}

	if len(r.closed) > 0 {
		w("## Load: agentgate against the decode-only floor\n\n")
		w("`agentgate serve` (embedded default policy, self-signed TLS 1.3, audit log at info level to a file) and the\n")
		w("floor (e2e/load/floorsrv: HTTPS + typed `encoding/json` decode of the review and of the object + allow) run\n")
		w("side by side; the load tool (e2e/load) replays the same AdmissionReview corpora at both, closed loop, 32\n")
		w("concurrent requests (HTTP/1.1: 32 keep-alive connections; HTTP/2: one connection, as the API server uses).\n")
		w("Ratios: throughput agentgate/floor, and server CPU per review floor/agentgate (above 1: agentgate spends less).\n\n")
		w("| proto | endpoint | corpus (review bytes) | agentgate reviews/s | floor reviews/s | **ratio** | agentgate CPU µs/review | floor CPU µs/review | **CPU ratio** | agentgate p50 / p99 ms | floor p50 / p99 ms | agentgate peak RSS MiB |\n")
		w("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range r.closed {
			a, f := s.agentgate, s.floor
			w("| %s | %s | %s (%d) | %.0f | %.0f | **%.2f×** | %.0f | %.0f | **%.2f×** | %.2f / %.2f | %.2f / %.2f | %.1f |\n",
				s.run.proto(), s.run.Path, s.run.Corpus, a[0].ReviewBytes,
				pick(a, throughput), pick(f, throughput), pick(a, throughput)/pick(f, throughput),
				pick(a, serverCPU), pick(f, serverCPU), pick(f, serverCPU)/pick(a, serverCPU),
				pick(a, p50), pick(a, p99), pick(f, p50), pick(f, p99), pick(a, peakMiB))
		}
		w("\nThe floor answers /mutate like /validate (it does not mutate): its column on the /mutate rows is the same\nfloor, measured again.\n\n")
		w("Every run, in order (reviews/s; server CPU µs/review):\n\n| scenario | agentgate | floor |\n|---|---|---|\n")
		for _, s := range r.closed {
			var as, fs []string
			for _, x := range s.agentgate {
				as = append(as, fmt.Sprintf("%.0f; %.0f", x.Throughput, x.ServerCPUUS))
			}
			for _, x := range s.floor {
				fs = append(fs, fmt.Sprintf("%.0f; %.0f", x.Throughput, x.ServerCPUUS))
			}
			w("| %s | %s | %s |\n", s.run.key(), strings.Join(as, " · "), strings.Join(fs, " · "))
		}
		w("\n")
	}
	if len(r.open) > 0 {
		o := r.open[0]
		w("## Open loop: %g reviews/s on the small pod for %s\n\n", o.run.Rate, r.cfg.openD)
		w("At most %d requests in flight (HTTP/1.1: connections, as the API server pools them; HTTP/2: streams on\n", o.run.C)
		w("one connection), each server freshly started; latency from each request's due time (no coordinated\n")
		w("omission). RSS is VmRSS at the end of the run; peak is VmHWM. \"null\" is the floor's `-null` mode: it reads\n")
		w("only `request.uid` and answers, no typed decode, so its row is what HTTPS, HTTP and the load tool alone\n")
		w("cost on this machine at this rate: no webhook that reads the object can do better.")
		if !r.cfg.long {
			w(" This was the short run: `make bench BENCH_LONG=1` runs it for 60 s.")
		}
		w("\n\n| proto | server | reviews/s | p50 ms | p90 ms | p99 ms | max ms | RSS MiB | peak RSS MiB | server CPU µs/review | errors |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, sc := range r.open {
			for _, x := range []struct {
				name string
				rs   []*loadReport
			}{{"agentgate", sc.agentgate}, {"floor", sc.floor}, {"null", sc.null}} {
				for _, rr := range x.rs {
					w("| %s | %s | %.0f | %.3f | %.3f | %.3f | %.3f | %.1f | %.1f | %.0f | %d |\n", sc.run.proto(), x.name, rr.Throughput, rr.LatencyMS.P50, rr.LatencyMS.P90,
						rr.LatencyMS.P99, rr.LatencyMS.Max, rssMiB(rr), peakMiB(rr), rr.ServerCPUUS, rr.Errors)
				}
			}
		}
		w("\n")
	}
	if r.api != nil {
		r.api.markdown(&b)
	}
	if r.goHot != nil {
		w("## Go benchmarks (in-process, no TLS)\n\n")
		w("Medians of %d runs. `Handler` is one review end to end through agentgate's http.Handler (read, strict\n", r.cfg.count)
		w("decode, decision, answer, metrics, the audit event encoded as JSON into io.Discard); `Floor` is the floor's\n")
		w("handler on the same bytes; `Decode` is the review and its object alone. CPU/op is the process's CPU time\n")
		w("(every thread: the garbage collector included) per operation, steadier than time/op on a shared machine.\n\n")
		w("| benchmark | time/op | CPU/op | B/op | allocs/op |\n|---|---|---|---|---|\n")
		for _, bs := range []*benchSet{r.goWeb, r.goHot} {
			for _, n := range bs.names {
				w("| %s | %s | %s | %.0f | %.0f |\n", strings.TrimPrefix(n, "Benchmark"), fmtNs(bs.median(n, nsOp)), fmtNs(bs.median(n, cpuNsOp)), bs.median(n, bOp), bs.median(n, allocsOp))
			}
		}
		w("\n")
		keys := make([]string, 0, len(r.benchstat))
		for k := range r.benchstat {
			keys = append(keys, k)
		}
		sort.Sort(sort.Reverse(sort.StringSlice(keys)))
		if len(keys) > 0 {
			w("### Before and after this work (benchstat)\n\n")
			w("\"before\" is e2e/bench/testdata/baseline-*.txt, measured on the code as it was before the changes in the notes\n")
			w("(same benchmarks, same machine, a different moment: read the CPU-bound rows, and allocations, which do not\n")
			w("depend on load); \"after\" is this run.\n\n")
			for _, k := range keys {
				w("%s:\n\n```\n%s\n```\n\n", k, strings.TrimSpace(r.benchstat[k]))
			}
		}
	}
	if dims := r.scaling(); len(dims) > 0 {
		w("## How cost grows\n\n")
		w("`go test ./policy -bench Scale`: a compliant pod (so every check runs to the end) under the default policy;\n")
		w("CPU time per operation (median of 5).\n")
		w("check = Set.Evaluate of the hardened pod; judge = Set.Judge of the hardened pod (what /validate decides after\n")
		w("/mutate); mutate = Set.Mutate of the pod as sent (hardening, without the JSON patch). Policies: n copies of\n")
		w("the default policy, all selecting the pod. Patterns: the pod's images match only the last of n allowlist\n")
		w("patterns. \"each … past the first\" is the marginal cost, (cost(n) − cost(first)) / (n − first): constant when\n")
		w("growth is linear; the target compares it at the largest size with its median (a cliff would show well above\n")
		w("1). The growth exponent k fits cost ∝ n^k between the first and last points: 1 is linear, below 1 the fixed\n")
		w("cost still dominates.\n\n")
		w("![scaling](e2e/bench/%s)\n\n", filepath.Base(r.cfg.plot))
		for _, d := range dims {
			w("### %s\n\n| %s |", d.title, d.unit)
			for _, op := range d.ops {
				w(" %s | %s, each %s past the first |", op, op, d.one)
			}
			w("\n|---|")
			for range d.ops {
				w("---|---|")
			}
			w("\n")
			for i, x := range d.xs {
				w("| %d |", x)
				for _, op := range d.ops {
					marginal := "–"
					if x > d.xs[0] {
						marginal = fmtNs((d.ns[op][i] - d.ns[op][0]) / float64(x-d.xs[0]))
					}
					w(" %s | %s |", fmtNs(d.ns[op][i]), marginal)
				}
				w("\n")
			}
			w("| growth exponent; last / median cost per %s |", d.one)
			for _, op := range d.ops {
				w(" %.2f | %.2f |", d.exponent(op), d.cliff(op))
			}
			w("\n\n")
		}
	}
	w("## Commands\n\nRun from the repository root by `make bench` (`$TMP`, `$PORT`, `$CA`, `$PID` stand for what the run made):\n\n```sh\n")
	for _, c := range r.rec.cmds {
		w("%s\n", c)
	}
	w("```\n")
	return b.String()
}
