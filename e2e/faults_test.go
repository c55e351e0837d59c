package e2e

// TestFaultsUnderLoad: two `agentgate serve` processes behind one address take a constant open-loop load
// (the load tool, e2e/load) while everything that changes in production changes at once: the policy file is
// rewritten every second (two valid policies, alternately), the --cert-dir certificate is swapped for a new
// one from the same CA the way a Secret volume is updated, and both processes are restarted one after the
// other (SIGTERM -> --shutdown-delay drain -> a replacement). Not one request may fail.
//
// The one address is a small TCP proxy that, like a Service, hands each new connection to a backend whose
// /readyz answers 200. SO_REUSEPORT would need a flag on the server, and the kernel would give connections to
// a replacement before its policy is loaded and reset those queued on a closing listener: a Service does
// neither, and the proxy models the Service.
//
// `make test` runs a short version (AGENTGATE_FAULTS_DURATION=10s, AGENTGATE_FAULTS_RATE=500); `make faults`
// the full one (60 s at 2,000 reviews/s). The full-rate stream speaks HTTP/1.1 (what the API server speaks to
// a webhook behind a Service) and a tenth-rate one HTTP/2 (`--http2`); AGENTGATE_FAULTS_HTTP2=1 swaps them. AGENTGATE_FAULTS_OFF=1 runs
// the same load without any fault, for the latencies to compare with.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/internal/testutil"
)

func faultsEnv[T any](t *testing.T, name string, def T, parse func(string) (T, error)) T {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	out, err := parse(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return out
}

func faultsBuild(t *testing.T, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = env.root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// faultsLoadReport is the part of the load tool's -json report the test reads.
type faultsLoadReport struct {
	Proto      string  `json:"proto"`
	Requests   int64   `json:"requests"`
	OK         int64   `json:"ok"`
	Errors     int64   `json:"errors"`
	Allowed    int64   `json:"allowed"`
	Denied     int64   `json:"denied"`
	Throughput float64 `json:"throughput_rps"`
	LatencyMS  struct {
		P50, P90, P99, Max float64
	} `json:"latency_ms"`
	ErrorSamples map[string]int64 `json:"error_samples"`
}

func TestFaultsUnderLoad(t *testing.T) {
	duration := faultsEnv(t, "AGENTGATE_FAULTS_DURATION", 10*time.Second, time.ParseDuration)
	rate := faultsEnv(t, "AGENTGATE_FAULTS_RATE", 500.0, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
	http2 := os.Getenv("AGENTGATE_FAULTS_HTTP2") == "1"
	control := os.Getenv("AGENTGATE_FAULTS_OFF") == "1" // the same load without the faults, to compare latencies
	const warmup = time.Second
	drain := max(time.Second, min(duration/10, 2*time.Second)) // --shutdown-delay

	tmp := t.TempDir()
	agentgate, load := filepath.Join(tmp, "agentgate"), filepath.Join(tmp, "load")
	faultsBuild(t, "./cmd/agentgate", agentgate)
	faultsBuild(t, "./e2e/load", load)

	// Certificates: one CA, a serving certificate now and another later, in a Secret-volume layout.
	ca, err := certs.GenerateCA("agentgate-faults-ca", 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(tmp, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(tmp, "certs")
	firstSerial := faultsServingCert(t, ca, certDir)

	// Two valid policies that give the same verdicts to the load's pods, alternately in one file.
	base, err := os.ReadFile(filepath.Join(env.root, "manifests", "base", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policies := [2][]byte{base, []byte(strings.NewReplacer(`max: {cpu: "4", memory: 8Gi}`, `max: {cpu: "6", memory: 12Gi}`,
		"denyTags: [latest]", "denyTags: [latest, dev]").Replace(string(base)))}
	if bytes.Equal(policies[0], policies[1]) {
		t.Fatal("test setup: the default policy changed; update the replacements")
	}
	policyFile := filepath.Join(tmp, "policy.yaml")
	faultsWriteAtomic(t, policyFile, policies[0])

	proxy := startFaultProxy(t)
	var servers []*faultServer
	start := func(name string) *faultServer {
		t.Helper()
		s := &faultServer{name: name, bin: agentgate, logPath: filepath.Join(tmp, name+".log"),
			args: []string{"--http2", "--cert-dir", certDir, "--policy-file", policyFile, "--shutdown-delay", drain.String(), "--shutdown-timeout", "10s"}}
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
		proxy.add(s)
		return s
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.kill()
		}
		if t.Failed() {
			for _, s := range servers {
				t.Logf("--- %s log (tail) ---\n%s", s.name, s.tail(8000))
			}
		}
	})
	a, b := start("a"), start("b")
	if err := proxy.waitReady(2, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	// The load: compliant pods at the full rate (all must be allowed) over HTTP/1.1 keep-alive, as the API
	// server sends them, and violating ones at a tenth of it (all must be denied) over HTTP/2, whose one
	// multiplexed connection races a server's shutdown differently; AGENTGATE_FAULTS_HTTP2=1 swaps the
	// protocols. Both go through the proxy.
	type loadRun struct {
		corpus string
		rate   float64
		http2  bool
		report faultsLoadReport
		err    error
		out    bytes.Buffer
	}
	runs := []*loadRun{{corpus: "small", rate: rate, http2: http2}, {corpus: "violating", rate: rate / 10, http2: !http2}}
	var loads sync.WaitGroup
	loadsDone := make(chan struct{})
	for _, r := range runs {
		args := []string{"-url", "https://" + proxy.addr() + "/validate", "-cacert", caFile, "-corpus", r.corpus,
			"-mode", "open", "-rate", fmt.Sprint(r.rate), "-c", "256", "-d", duration.String(), "-warmup", warmup.String(),
			"-timeout", "5s", "-json"}
		if r.http2 {
			args = append(args, "-http2")
		}
		cmd := exec.Command(load, args...)
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &r.out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		loads.Go(func() {
			err := cmd.Wait()
			var exit *exec.ExitError
			if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) { // 1: some requests failed, judged below
				r.err = fmt.Errorf("load %s: %w\n%s", r.corpus, err, r.out.String())
				return
			}
			if err := json.Unmarshal(stdout.Bytes(), &r.report); err != nil {
				r.err = fmt.Errorf("load %s: -json report: %w\n%s", r.corpus, err, stdout.String())
			}
		})
	}
	go func() { loads.Wait(); close(loadsDone) }()
	began := time.Now()

	// Fault 1: the policy file is rewritten every second, alternating the two policies.
	var rewrites atomic.Int64
	var faults sync.WaitGroup
	faults.Go(func() {
		if control {
			return
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-loadsDone:
				return
			case <-tick.C:
				faultsWriteAtomic(t, policyFile, policies[i%2])
				rewrites.Add(1)
			}
		}
	})
	at := func(fraction float64) {
		time.Sleep(time.Until(began.Add(warmup + time.Duration(fraction*float64(duration)))))
	}

	// Fault 2: a new serving certificate from the same CA, swapped in as kubelet updates a Secret volume. Every
	// process must serve it (certwatcher) without a restart; the handshakes are watched until the end.
	at(0.2)
	swapped := time.Now()
	newSerial := firstSerial
	if !control {
		newSerial = faultsServingCert(t, ca, certDir)
	}
	pickedUp := map[string]time.Duration{}
	faults.Go(func() {
		for _, s := range []*faultServer{a, b} {
			for time.Since(swapped) < 15*time.Second && s.running() {
				if serial, err := faultsServedSerial(s.addr, ca.CertPEM); err == nil && serial.Cmp(newSerial) == 0 {
					pickedUp[s.name] = time.Since(swapped)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})

	// Fault 3: a rolling restart. SIGTERM one process (it fails /readyz, serves on for --shutdown-delay, then
	// drains), start its replacement, wait until the replacement is ready and the old one has exited; then the
	// other.
	exitCodes := map[string]int{}
	restart := func(old *faultServer, name string) {
		t.Helper()
		old.terminate()
		repl := start(name)
		code, err := old.wait(drain + 15*time.Second)
		if err != nil {
			t.Errorf("%s: %v", old.name, err)
		}
		exitCodes[old.name] = code
		if err := proxy.waitReady(2, 10*time.Second); err != nil {
			t.Errorf("after replacing %s with %s: %v", old.name, repl.name, err)
		}
	}
	if !control {
		at(0.35)
		restart(a, "a2")
		at(0.65)
		restart(b, "b2")
	}

	<-loadsDone
	faults.Wait()
	for _, r := range runs {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}

	// Figures first, then the verdict.
	for _, r := range runs {
		rep := r.report
		t.Logf("%s at %g/s over %s (%s): %d requests, %d ok (%d allowed, %d denied), %d failed; p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; %.0f reviews/s",
			r.corpus, r.rate, duration, rep.Proto, rep.Requests, rep.OK, rep.Allowed, rep.Denied, rep.Errors,
			rep.LatencyMS.P50, rep.LatencyMS.P90, rep.LatencyMS.P99, rep.LatencyMS.Max, rep.Throughput)
	}
	reloads := map[string]int{}
	for _, s := range servers {
		reloads[s.name] = len(s.events("policy.loaded"))
	}
	t.Logf("policy file rewritten %d times; policy.loaded per process %v; new certificate served after %v; drained exits %v; proxy: %d connections, %d without a ready backend, %d failed dials",
		rewrites.Load(), reloads, pickedUp, exitCodes, proxy.conns.Load(), proxy.noBackend.Load(), proxy.dialErrors.Load())

	small, violating := runs[0].report, runs[1].report
	want := int64(duration.Seconds() * rate)
	if small.Errors != 0 || small.OK != small.Requests || small.Requests < want {
		t.Errorf("compliant pods: %d of %d requests failed (want 0 of at least %d): %v", small.Errors, small.Requests, want, small.ErrorSamples)
	}
	if small.Allowed != small.OK {
		t.Errorf("compliant pods: %d denied during the faults", small.OK-small.Allowed)
	}
	if violating.Errors != 0 || violating.OK != violating.Requests || violating.OK == 0 {
		t.Errorf("violating pods: %d of %d requests failed: %v", violating.Errors, violating.Requests, violating.ErrorSamples)
	}
	if violating.Denied != violating.OK {
		t.Errorf("violating pods: %d admitted during the faults", violating.Allowed)
	}
	if control {
		t.Log("AGENTGATE_FAULTS_OFF=1: no faults were injected")
		return
	}
	if firstSerial.Cmp(newSerial) == 0 {
		t.Error("test setup: the swapped certificate has the old serial")
	}
	for _, s := range []*faultServer{a, b} {
		if _, ok := pickedUp[s.name]; !ok {
			t.Errorf("%s never served the swapped certificate", s.name)
		}
		if exitCodes[s.name] != 0 {
			t.Errorf("%s exited %d after SIGTERM, want 0 (a clean drain)", s.name, exitCodes[s.name])
		}
		if reloads[s.name] < 2 {
			t.Errorf("%s loaded the policy %d times: the rewrites were not seen", s.name, reloads[s.name])
		}
	}
	for _, s := range servers {
		for _, ev := range []string{"policy.rejected", "http.panic", "serve.failed"} {
			if n := len(s.events(ev)); n > 0 {
				t.Errorf("%s logged %d %s events", s.name, n, ev)
			}
		}
	}
	if proxy.noBackend.Load() > 0 || proxy.dialErrors.Load() > 0 {
		t.Errorf("the proxy found no ready backend %d times and failed %d dials", proxy.noBackend.Load(), proxy.dialErrors.Load())
	}
}

// faultsWriteAtomic replaces path the way editors and config management do: a new file renamed over the old one.
func faultsWriteAtomic(t *testing.T, path string, data []byte) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Error(err)
	}
}

// faultsServingCert issues a serving certificate for 127.0.0.1 and writes it into dir as kubelet's atomic
// writer updates a Secret volume: files in a fresh timestamped directory, the ..data symlink swapped to it in
// one rename, tls.crt and tls.key links through ..data, the old directory removed.
func faultsServingCert(t *testing.T, ca *certs.KeyPair, dir string) *big.Int {
	t.Helper()
	kp, err := certs.GenerateServing(ca, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ts := fmt.Sprintf("..%d", time.Now().UnixNano())
	if err := os.Mkdir(filepath.Join(dir, ts), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{certs.CertFileName: kp.CertPEM, certs.KeyFileName: kp.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, ts, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{certs.CertFileName, certs.KeyFileName} {
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
	return kp.Cert.SerialNumber
}

// faultsServedSerial handshakes with addr and returns the serial of the certificate it serves.
func faultsServedSerial(addr string, caPEM []byte) (*big.Int, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// faultServer is one `agentgate serve` child process.
type faultServer struct {
	name, bin, logPath string
	args               []string
	addr, metricsAddr  string
	cmd                *exec.Cmd
	exited             chan struct{}
	exitCode           int
}

func (s *faultServer) start() error {
	var err error
	if s.addr, err = freePort(); err != nil {
		return err
	}
	if s.metricsAddr, err = freePort(); err != nil {
		return err
	}
	log, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(s.bin, append([]string{"serve", "--addr", s.addr, "--metrics-addr", s.metricsAddr}, s.args...)...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", s.name, err)
	}
	s.exited = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		s.exitCode = s.cmd.ProcessState.ExitCode()
		log.Close()
		close(s.exited)
	}()
	return nil
}

func (s *faultServer) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *faultServer) ready() bool {
	c := http.Client{Timeout: 500 * time.Millisecond}
	resp, err := c.Get("http://" + s.metricsAddr + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *faultServer) terminate() { _ = s.cmd.Process.Signal(syscall.SIGTERM) }

func (s *faultServer) wait(timeout time.Duration) (int, error) {
	select {
	case <-s.exited:
		return s.exitCode, nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("still running %s after SIGTERM", timeout)
	}
}

func (s *faultServer) kill() {
	if s.cmd != nil && s.running() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *faultServer) tail(n int) string {
	data, _ := os.ReadFile(s.logPath)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

func (s *faultServer) events(name string) []map[string]any {
	data, _ := os.ReadFile(s.logPath)
	return testutil.Events(data, name)
}

// faultProxy is the one address: each new connection goes to the next backend whose /readyz answers 200 (polled
// every 50 ms), and lives on that backend until either side closes, as through a Service.
type faultProxy struct {
	ln                           net.Listener
	mu                           sync.Mutex
	backends                     []*faultServer
	ready                        map[*faultServer]bool
	next                         int
	conns, noBackend, dialErrors atomic.Int64
	stop                         chan struct{}
}

func startFaultProxy(t *testing.T) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, ready: map[*faultServer]bool{}, stop: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(p.poll)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			go p.handle(c)
		}
	})
	t.Cleanup(func() {
		close(p.stop)
		ln.Close()
		wg.Wait()
	})
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (p *faultProxy) add(s *faultServer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backends = append(p.backends, s)
}

// poll keeps the ready set, as endpoints do: a backend leaves it when /readyz fails or the process is gone.
func (p *faultProxy) poll() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		backends := append([]*faultServer(nil), p.backends...)
		p.mu.Unlock()
		ready := map[*faultServer]bool{}
		for _, s := range backends {
			if s.running() && s.ready() {
				ready[s] = true
			}
		}
		p.mu.Lock()
		p.ready = ready
		p.mu.Unlock()
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

func (p *faultProxy) readyCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}

func (p *faultProxy) waitReady(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for p.readyCount() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d ready backends after %s, want %d", p.readyCount(), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// pick returns the next ready backend, waiting up to 3 s for one.
func (p *faultProxy) pick() *faultServer {
	deadline := time.Now().Add(3 * time.Second)
	for {
		p.mu.Lock()
		for range p.backends {
			s := p.backends[p.next%len(p.backends)]
			p.next++
			if p.ready[s] {
				p.mu.Unlock()
				return s
			}
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *faultProxy) handle(c net.Conn) {
	defer c.Close()
	s := p.pick()
	if s == nil {
		p.noBackend.Add(1)
		return
	}
	b, err := net.DialTimeout("tcp", s.addr, 2*time.Second)
	if err != nil {
		p.dialErrors.Add(1)
		return
	}
	defer b.Close()
	// Each direction is copied until EOF, then half-closed, so that a graceful close on either side (a
	// server's GOAWAY and FIN, a client's FIN) reaches the other side as it would without the proxy.
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done
	<-done
}
