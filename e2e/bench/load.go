package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"agentgate.io/agentgate/e2e/testcluster"
)

// loadReport is the load tool's -json report (e2e/load/main.go).
type loadReport struct {
	URL         string  `json:"url"`
	Corpus      string  `json:"corpus"`
	Mode        string  `json:"mode"`
	Proto       string  `json:"proto"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate"`
	DurationS   float64 `json:"duration_s"`
	ReviewBytes int     `json:"review_bytes"`
	Requests    int64   `json:"requests"`
	OK          int64   `json:"ok"`
	Errors      int64   `json:"errors"`
	Allowed     int64   `json:"allowed"`
	Denied      int64   `json:"denied"`
	Throughput  float64 `json:"throughput_rps"`
	LatencyMS   struct {
		P50, P90, P99, Max, Mean float64
	} `json:"latency_ms"`
	ServerRSS   int64   `json:"server_rss_kib"`
	ServerPeak  int64   `json:"server_peak_rss_kib"`
	ClientCPUUS float64 `json:"client_cpu_us_per_review"`
	ServerCPUUS float64 `json:"server_cpu_us_per_review"`
}

// server is a webhook process under load: agentgate serve or the floor.
type server struct {
	name   string // "agentgate" or "floor"
	base   string // https://127.0.0.1:PORT
	caFile string
	cmd    *exec.Cmd
	exited chan struct{}
	argv   []string
	pidOf  int // a server in this process (profile)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startAgentgate runs `agentgate serve` with the embedded default policy and a self-signed certificate,
// its audit log (info level, every admission) going to a file as it would go to a container log, offering
// HTTP/2 as well so that the load tool can measure both protocols.
func startAgentgate(bin, dir string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(dir, "agentgate-cert")
	s := &server{name: "agentgate", base: "https://" + addr, caFile: filepath.Join(certDir, "ca.crt")}
	s.argv = []string{bin, "serve", "--addr", addr, "--metrics-addr", "0", "--self-signed-dir", certDir, "--http2"}
	return s, s.start(filepath.Join(dir, "agentgate.log"))
}

// startFloor runs the decode-only floor server (e2e/load/floor), offering HTTP/2 when http2 is set; with
// null, the floor's -null mode (it reads only request.uid), named "null".
func startFloor(bin, dir string, http2, null bool) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	name := "floor"
	if null {
		name = "null"
	}
	s := &server{name: name, base: "https://" + addr, caFile: filepath.Join(dir, name+".pem")}
	s.argv = []string{bin, "-addr", addr, "-cert-out", s.caFile, fmt.Sprintf("-http2=%t", http2), fmt.Sprintf("-null=%t", null)}
	return s, s.start(filepath.Join(dir, name+".log"))
}

func (s *server) start(logPath string) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(s.argv[0], s.argv[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", s.name, err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.exited) }()
	// Ready when the CA file exists and the port accepts connections.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited at start; see %s", s.name, logPath)
		default:
		}
		if _, err := os.Stat(s.caFile); err == nil {
			if c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.base, "https://"), time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return fmt.Errorf("%s not listening within 30s", s.name)
}

func (s *server) pid() int {
	if s.pidOf != 0 {
		return s.pidOf
	}
	return s.cmd.Process.Pid
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	testcluster.Stop(s.cmd.Process, s.exited, 30*time.Second)
}

// loadRun is one invocation of the load tool.
type loadRun struct {
	Server   string // agentgate | floor
	Path     string // /validate | /mutate
	Corpus   string
	Mode     string // closed | open
	HTTP2    bool
	C        int
	Rate     float64
	Duration time.Duration
	Warmup   time.Duration
}

func (r loadRun) proto() string {
	if r.HTTP2 {
		return "HTTP/2"
	}
	return "HTTP/1.1"
}

// key identifies a scenario independently of the server, to pair agentgate with the floor.
func (r loadRun) key() string {
	return fmt.Sprintf("%s %s %s %s c=%d rate=%g", r.Mode, r.proto(), r.Path, r.Corpus, r.C, r.Rate)
}

func (r loadRun) args(s *server, displayURL bool) []string {
	base := s.base
	if displayURL {
		base = "https://127.0.0.1:$PORT"
	}
	a := []string{"-url", base + r.Path, "-cacert", s.caFile, "-corpus", r.Corpus, "-mode", r.Mode,
		"-c", strconv.Itoa(r.C), "-d", r.Duration.String(), "-warmup", r.Warmup.String()}
	if displayURL {
		a[3] = "$CA"
	}
	if r.Mode == "open" {
		a = append(a, "-rate", strconv.FormatFloat(r.Rate, 'f', -1, 64))
	}
	if r.HTTP2 {
		a = append(a, "-http2")
	}
	pid := strconv.Itoa(s.pid())
	if displayURL {
		pid = "$PID"
	}
	return append(a, "-pid", pid, "-json")
}

// run executes the load tool and parses its report. A run with failed requests is an error: a figure
// with errors in it is not a figure.
func (r loadRun) run(ctx context.Context, loadBin string, s *server) (*loadReport, error) {
	cmd := exec.CommandContext(ctx, loadBin, r.args(s, false)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var rep loadReport
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		return nil, fmt.Errorf("load %s against %s: %v: %s", r.key(), s.name, err, errb.String())
	}
	if err != nil || rep.Errors > 0 {
		return &rep, fmt.Errorf("load %s against %s: %d errors: %s", r.key(), s.name, rep.Errors, errb.String())
	}
	return &rep, nil
}

// scenario is a load run against both servers, repeated; figures are medians over the repetitions.
type scenario struct {
	run       loadRun
	agentgate []*loadReport
	floor     []*loadReport
	null      []*loadReport // open loop only: the floor's -null mode
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func pick(rs []*loadReport, f func(*loadReport) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return median(xs)
}

func throughput(r *loadReport) float64 { return r.Throughput }
func serverCPU(r *loadReport) float64  { return r.ServerCPUUS }
func clientCPU(r *loadReport) float64  { return r.ClientCPUUS }
func p50(r *loadReport) float64        { return r.LatencyMS.P50 }
func p99(r *loadReport) float64        { return r.LatencyMS.P99 }
func rssMiB(r *loadReport) float64     { return float64(r.ServerRSS) / 1024 }
func peakMiB(r *loadReport) float64    { return float64(r.ServerPeak) / 1024 }

// waitHealthy polls agentgate's /healthz through its CA (the floor answers any path with 405 to GET, which
// is enough to know it serves).
func waitServing(ctx context.Context, s *server) error {
	client := &http.Client{Timeout: time.Second, Transport: insecureTransport()}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/healthz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New(s.name + " does not answer HTTPS")
}
