// Command load replays AdmissionReview corpora against a webhook on loopback
// and reports throughput, latency percentiles, errors and the server's memory.
//
//	go run ./e2e/load -url https://127.0.0.1:8443/validate -corpus small -mode closed -c 32 -d 10s -cacert ca.pem
//	go run ./e2e/load -url https://127.0.0.1:8443/validate -corpus small -mode open -rate 2000 -d 60s -insecure -pid 1234 -json
//
// Closed mode measures the most a server can do at a given concurrency. Open
// mode sends at a constant rate and counts each latency from the time the
// request was due, so a server stall is charged to every request it delayed.
//
// Exit status: 0 when every request succeeded, 1 when some failed (the report
// is still printed), 2 when the run could not start.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"agentgate.io/agentgate/e2e/load/corpus"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{}
	fs.StringVar(&cfg.URL, "url", "https://127.0.0.1:8443/validate", "webhook `URL` (https, loopback only)")
	fs.StringVar(&cfg.Corpus, "corpus", corpus.Small, "payload: "+strings.Join(corpus.Names(), ", "))
	fs.StringVar(&cfg.Mode, "mode", ModeClosed, "closed (max throughput at -c) or open (constant -rate)")
	fs.IntVar(&cfg.Concurrency, "c", 32, "closed: concurrent workers; open: most requests in flight")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open mode: requests per second")
	fs.DurationVar(&cfg.Duration, "d", 10*time.Second, "measured duration")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured load before the measurement")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout, and the most the run drains after -d")
	fs.BoolVar(&cfg.HTTP2, "http2", false, "speak HTTP/2, as the API server does to webhooks (default HTTP/1.1)")
	insecure := fs.Bool("insecure", false, "do not verify the server certificate")
	caFile := fs.String("cacert", "", "trust the CA certificates (PEM) in `FILE`")
	fs.IntVar(&cfg.PID, "pid", 0, "report the RSS of server process `N` at the end")
	cpuProfile := fs.String("cpuprofile", "", "write the load tool's own CPU profile to `FILE`")
	asJSON := fs.Bool("json", false, "print one JSON object on stdout (the text report goes to stderr)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: load [flags]\n\nReplays AdmissionReview corpora against a loopback webhook.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "load: unexpected arguments %q\n", fs.Args())
		return 2
	}

	cfg.TLS = &tls.Config{InsecureSkipVerify: *insecure}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 2
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "load: %s: no PEM certificate\n", *caFile)
			return 2
		}
		cfg.TLS.RootCAs = pool
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	// Ctrl-C ends the run early but still reports what was measured.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		var unknownCA x509.UnknownAuthorityError
		if errors.As(err, &unknownCA) {
			fmt.Fprintln(stderr, "load: pass the server's CA with -cacert FILE, or -insecure")
		}
		return 2
	}

	text := stdout
	if *asJSON {
		text = stderr
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(res.report()); err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 2
		}
	}
	res.writeText(text)
	if res.Errors > 0 {
		return 1
	}
	return 0
}

// report is the -json form of a Result: stable snake_case names and
// milliseconds, for scripts that build BENCHMARKS.md.
type report struct {
	URL          string           `json:"url"`
	Corpus       string           `json:"corpus"`
	Mode         string           `json:"mode"`
	Proto        string           `json:"proto"`
	Concurrency  int              `json:"concurrency"`
	Rate         float64          `json:"rate,omitempty"`
	DurationS    float64          `json:"duration_s"`
	WarmupS      float64          `json:"warmup_s"`
	ElapsedS     float64          `json:"elapsed_s"`
	ReviewBytes  int              `json:"review_bytes"`
	Requests     int64            `json:"requests"`
	OK           int64            `json:"ok"`
	Errors       int64            `json:"errors"`
	Unsent       int64            `json:"unsent"`
	Allowed      int64            `json:"allowed"`
	Denied       int64            `json:"denied"`
	Throughput   float64          `json:"throughput_rps"`
	LatencyMS    latencyMS        `json:"latency_ms"`
	ErrorSamples map[string]int64 `json:"error_samples,omitempty"`
	ServerPID    int              `json:"server_pid,omitempty"`
	ServerRSS    int64            `json:"server_rss_kib,omitempty"`
	ServerPeak   int64            `json:"server_peak_rss_kib,omitempty"`
	Interrupted  bool             `json:"interrupted,omitempty"`
	ClientCPUUS  float64          `json:"client_cpu_us_per_review"`
	ServerCPUUS  float64          `json:"server_cpu_us_per_review,omitempty"`
}

type latencyMS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r *Result) report() report {
	c := r.Config
	out := report{
		URL: c.URL, Corpus: c.Corpus, Mode: c.Mode, Proto: r.Proto, Concurrency: c.Concurrency,
		DurationS: c.Duration.Seconds(), WarmupS: c.Warmup.Seconds(), ElapsedS: r.Elapsed.Seconds(),
		ReviewBytes: r.ReviewBytes,
		Requests:    r.Requests, OK: r.OK, Errors: r.Errors, Unsent: r.Unsent, Allowed: r.Allowed, Denied: r.Denied,
		Throughput: r.Throughput,
		LatencyMS:  latencyMS{P50: ms(r.P50), P90: ms(r.P90), P99: ms(r.P99), Max: ms(r.Max), Mean: ms(r.Mean)},
		ServerPID:  c.PID, ServerRSS: r.RSSKiB, ServerPeak: r.PeakRSSKiB,
		Interrupted: r.Interrupted,
	}
	if c.Mode == ModeOpen {
		out.Rate = c.Rate
	}
	out.ClientCPUUS, out.ServerCPUUS = r.cpuPerReview()
	if len(r.ErrorKind) > 0 {
		out.ErrorSamples = r.ErrorKind
	}
	return out
}

func (r *Result) writeText(w io.Writer) {
	c := r.Config
	mode := fmt.Sprintf("closed loop, c=%d", c.Concurrency)
	if c.Mode == ModeOpen {
		mode = fmt.Sprintf("open loop, %g req/s, at most %d in flight", c.Rate, c.Concurrency)
	}
	fmt.Fprintf(w, "%s %s, corpus %s (%d B review), %s\n", c.URL, r.Proto, c.Corpus, r.ReviewBytes, mode)
	interrupted := ""
	if r.Interrupted {
		interrupted = ", INTERRUPTED"
	}
	fmt.Fprintf(w, "  measured   %v after %v warm-up (elapsed %.2fs%s)\n", c.Duration, c.Warmup, r.Elapsed.Seconds(), interrupted)
	fmt.Fprintf(w, "  requests   %d: %d ok (%d allowed, %d denied), %d errors", r.Requests, r.OK, r.Allowed, r.Denied, r.Errors)
	if r.Unsent > 0 {
		fmt.Fprintf(w, " (%d never sent)", r.Unsent)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  throughput %.0f reviews/s\n", r.Throughput)
	fmt.Fprintf(w, "  latency    p50 %s  p90 %s  p99 %s  max %s  mean %s\n",
		fmtDur(r.P50), fmtDur(r.P90), fmtDur(r.P99), fmtDur(r.Max), fmtDur(r.Mean))
	clientUS, serverUS := r.cpuPerReview()
	fmt.Fprintf(w, "  client CPU %.0f µs/review\n", clientUS)
	if c.PID != 0 {
		fmt.Fprintf(w, "  server     pid %d, RSS %.1f MiB (peak %.1f MiB), CPU %.0f µs/review\n",
			c.PID, float64(r.RSSKiB)/1024, float64(r.PeakRSSKiB)/1024, serverUS)
	}
	for _, k := range slices.Sorted(maps.Keys(r.ErrorKind)) {
		fmt.Fprintf(w, "  error      %dx %s\n", r.ErrorKind[k], k)
	}
}

// cpuPerReview divides the measured CPU times by the reviews answered, in µs.
func (r *Result) cpuPerReview() (client, server float64) {
	if r.OK == 0 {
		return 0, 0
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(r.OK) }
	return us(r.ClientCPU), us(r.ServerCPU)
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", ms(d))
}
