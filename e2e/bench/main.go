// Command bench measures agentgate and writes BENCHMARKS.md (issue 7): Go benchmarks of the policy and the
// webhook hot path, the load tool (e2e/load) against a freshly built `agentgate serve` and the decode-only
// floor server in the same run on the same payloads, the scaling tables and their plot, and optionally the
// pod-create latency that agentgate adds through a real kube-apiserver.
//
//	make bench                          # what this runs, with the binaries built first
//	go run ./e2e/bench -agentgate bin/agentgate -o BENCHMARKS.md [-long] [-apiserver 300]
//	go run ./e2e/bench profile -corpus large -path /validate -d 10s -o /tmp/prof   # pprof of the server under load
//	go run ./e2e/bench apiserver -n 300                                             # the API-server measurement alone
//
// Everything it runs is on loopback; the figures depend on the machine and on what else runs on it, so the
// report starts with the machine and its load average, and gives CPU time per review beside throughput.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
	var err error
	switch {
	case len(args) > 0 && args[0] == "profile":
		err = runProfile(ctx, args[1:])
	case len(args) > 0 && args[0] == "apiserver":
		err = runAPIServerCmd(ctx, args[1:])
	default:
		err = runReport(ctx, args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type config struct {
	root      string
	agentgate string
	out       string
	plot      string
	long      bool
	reps      int
	closedD   time.Duration
	warmup    time.Duration
	openD     time.Duration
	openRate  float64
	count     int
	apiserver int
	skipGo    bool
	skipLoad  bool
	baseline  string
}

func runReport(ctx context.Context, args []string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cfg := config{root: root}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&cfg.agentgate, "agentgate", filepath.Join(root, "bin", "agentgate"), "the agentgate binary to measure (make build)")
	fs.StringVar(&cfg.out, "o", filepath.Join(root, "BENCHMARKS.md"), "report to write")
	fs.StringVar(&cfg.plot, "plot", filepath.Join(root, "e2e", "bench", "scaling.png"), "scaling plot to write")
	fs.BoolVar(&cfg.long, "long", os.Getenv("BENCH_LONG") == "1", "open loop for 60 s instead of 10 s (BENCH_LONG=1)")
	fs.IntVar(&cfg.reps, "reps", 3, "repetitions of every closed-loop run (agentgate and floor alternate); medians are reported")
	fs.DurationVar(&cfg.closedD, "d", 5*time.Second, "closed-loop measured duration")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "load-tool warm-up before each measurement")
	fs.DurationVar(&cfg.openD, "open-d", 0, "open-loop duration (default 10s, 60s with -long)")
	fs.Float64Var(&cfg.openRate, "rate", 2000, "open-loop rate, reviews/s")
	fs.IntVar(&cfg.count, "count", 5, "go test -count for the hot-path benchmarks")
	fs.IntVar(&cfg.apiserver, "apiserver", 0, "pod creates per phase through a real kube-apiserver (bin/); 0 skips")
	fs.BoolVar(&cfg.skipGo, "skip-go", false, "skip the Go benchmarks")
	fs.BoolVar(&cfg.skipLoad, "skip-load", false, "skip the load runs")
	fs.StringVar(&cfg.baseline, "baseline", filepath.Join(root, "e2e", "bench", "testdata"), "folder of baseline-*.txt go test outputs to compare with benchstat")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.openD == 0 {
		cfg.openD = 10 * time.Second
		if cfg.long {
			cfg.openD = 60 * time.Second
		}
	}
	r := &report{cfg: cfg, machine: readMachine(ctx, root)}
	tmp, err := os.MkdirTemp("", "agentgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	if !cfg.skipGo {
		if err := r.goBenchmarks(ctx, tmp); err != nil {
			return err
		}
	}
	if !cfg.skipLoad {
		if err := r.loadRuns(ctx, tmp); err != nil {
			return err
		}
	}
	if cfg.apiserver > 0 {
		res, err := measureAPIServer(ctx, root, cfg.agentgate, cfg.apiserver, r.rec.command)
		if err != nil {
			return fmt.Errorf("api-server measurement: %w", err)
		}
		r.api = res
	}
	if err := os.WriteFile(cfg.out, []byte(r.markdown()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s\n", cfg.out)
	return nil
}

// recorder keeps every command run, for the report.
type recorder struct{ cmds []string }

func (r *recorder) command(c string) {
	fmt.Fprintln(os.Stderr, "bench: $", c)
	r.cmds = append(r.cmds, c)
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run from inside the agentgate module")
	}
	return filepath.Dir(mod), nil
}

// machine is what the report says about where it ran.
type machine struct {
	CPUs, CPUModel, GoVersion, LoadAvg, Kernel, Date, Revision string
}

func readMachine(ctx context.Context, root string) machine {
	m := machine{CPUs: fmt.Sprint(runtime.NumCPU()), Date: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	cmd := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		m.Revision = strings.TrimSpace(string(out))
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// insecureTransport talks to servers this program started itself on loopback.
func insecureTransport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // loopback, our own child
}

// buildTool builds a package of this module into dir.
func buildTool(ctx context.Context, root, dir, pkg string, rec *recorder) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	rec.command("go build -o " + filepath.Join("$TMP", filepath.Base(pkg)) + " " + pkg)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s: %w", pkg, err)
	}
	return out, nil
}
