package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"agentgate.io/agentgate/e2e/load/corpus"
)

// Modes of a run.
const (
	ModeClosed = "closed" // Concurrency workers, each sending its next request as soon as the last one is answered
	ModeOpen   = "open"   // requests scheduled at a constant Rate, latency counted from the scheduled time
)

// Config describes one run.
type Config struct {
	URL         string // https URL of a loopback webhook endpoint
	Corpus      string // a corpus.Names() entry
	Mode        string // ModeClosed or ModeOpen
	Concurrency int    // closed: workers; open: the most requests in flight at once
	Rate        float64
	Duration    time.Duration // measured time; scheduling stops after it
	Warmup      time.Duration // unmeasured load before Duration, same mode and settings
	Timeout     time.Duration // per request; also how long in-flight requests may drain after Duration
	HTTP2       bool
	TLS         *tls.Config // trust settings (RootCAs, InsecureSkipVerify); nil: system roots
	PID         int         // server process whose RSS is reported; 0: none
}

// Result is what a run measured.
type Result struct {
	Config      Config
	Proto       string // negotiated protocol, "HTTP/1.1" or "HTTP/2.0"
	ReviewBytes int
	Elapsed     time.Duration // from the first send to the last answer of the measured phase

	Requests  int64 // attempts: OK + Errors
	OK        int64 // 200 with a well-formed AdmissionReview answering the right uid
	Errors    int64
	Unsent    int64 // open mode: due but never sent before the hard stop (counted in Errors)
	Allowed   int64
	Denied    int64
	ErrorKind map[string]int64 // error message -> count, a bounded sample

	Throughput float64 // OK per second of Elapsed
	P50, P90   time.Duration
	P99, Max   time.Duration
	Mean       time.Duration

	RSSKiB, PeakRSSKiB int64 // server VmRSS and VmHWM at the end; 0 without PID

	// CPU time spent during the measured phase. On a shared machine CPU per
	// review is steadier than throughput, which other tenants' load moves.
	ClientCPU time.Duration // this process, all threads
	ServerCPU time.Duration // the PID process; 0 without PID

	Interrupted bool // ctx was cancelled during the measured phase
}

// uidPlaceholder has the length of every uid the engine generates, so a
// request body is the precomputed review with 36 bytes overwritten.
const uidPlaceholder = "ffffffff-ffff-4fff-bfff-ffffffffffff"

// maxErrorKinds bounds the error sample: a broken server would otherwise make
// every distinct message a map entry.
const maxErrorKinds = 10

// Run executes one load run. It returns an error only when the run cannot
// start (bad config, server unreachable, wrong protocol); failures of
// individual requests are counted in the Result. It returns by itself within
// Warmup + Duration + 3*Timeout (preflight, and a drain after each phase), or
// soon after ctx is cancelled, with what was measured until then.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	tmpl, err := corpus.Review(cfg.Corpus, uidPlaceholder)
	if err != nil {
		return nil, err
	}
	uidAt := bytes.Index(tmpl, []byte(uidPlaceholder))
	if uidAt < 0 || bytes.Count(tmpl, []byte(uidPlaceholder)) != 1 {
		return nil, fmt.Errorf("corpus %s: uid placeholder not found exactly once", cfg.Corpus)
	}
	if cfg.PID != 0 {
		if _, _, err := serverRSS(cfg.PID); err != nil {
			return nil, err
		}
	}

	e := &engine{cfg: cfg, tmpl: tmpl, uidAt: uidAt, client: newClient(cfg)}
	defer e.client.CloseIdleConnections()
	var run [4]byte
	rand.Read(run[:])
	e.runID = binary.BigEndian.Uint32(run[:])

	proto, err := e.preflight(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Warmup > 0 {
		e.phase(ctx, cfg.Warmup)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	clientBefore := clientCPU()
	serverBefore, errBefore := serverCPU(cfg.PID)
	res := e.phase(ctx, cfg.Duration)
	res.Interrupted = ctx.Err() != nil
	res.ClientCPU = clientCPU() - clientBefore
	if serverAfter, err := serverCPU(cfg.PID); err == nil && errBefore == nil {
		res.ServerCPU = serverAfter - serverBefore
	}
	res.Config = cfg
	res.Proto = proto
	res.ReviewBytes = len(tmpl)
	if cfg.PID != 0 {
		// The server may have exited meanwhile; the run is still worth reporting.
		res.RSSKiB, res.PeakRSSKiB, _ = serverRSS(cfg.PID)
	}
	return res, nil
}

func validate(cfg *Config) error {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return err
	}
	if u.Scheme != "https" {
		return fmt.Errorf("url %q: webhooks are served over https", cfg.URL)
	}
	if !loopbackHost(u.Hostname()) {
		return fmt.Errorf("url %q: only loopback targets are allowed (127.0.0.1, ::1, localhost)", cfg.URL)
	}
	switch cfg.Mode {
	case ModeClosed:
	case ModeOpen:
		if cfg.Rate <= 0 {
			return errors.New("open mode needs a rate > 0")
		}
	default:
		return fmt.Errorf("mode %q: want %s or %s", cfg.Mode, ModeClosed, ModeOpen)
	}
	if cfg.Concurrency < 1 || cfg.Concurrency > 10000 {
		return fmt.Errorf("concurrency %d: want 1..10000", cfg.Concurrency)
	}
	if cfg.Duration <= 0 {
		return errors.New("duration must be > 0")
	}
	if cfg.Warmup < 0 {
		return errors.New("warm-up must be >= 0")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return nil
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newClient(cfg Config) *http.Client {
	tlsCfg := &tls.Config{}
	if cfg.TLS != nil {
		tlsCfg = cfg.TLS.Clone()
	}
	var protos http.Protocols
	if cfg.HTTP2 {
		protos.SetHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	dialer := &net.Dialer{
		Timeout: cfg.Timeout,
		// The URL check does not cover what "localhost" resolves to; this
		// holds every connection to loopback whatever the resolver says.
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("refusing to connect to non-loopback %s", address)
			}
			return nil
		},
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:     dialer.DialContext,
			TLSClientConfig: tlsCfg,
			Protocols:       &protos,
			// Keep a connection per worker alive: with the default of 2 idle
			// per host, HTTP/1.1 workers would keep handshaking TLS anew.
			MaxIdleConns:        cfg.Concurrency,
			MaxIdleConnsPerHost: cfg.Concurrency,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: cfg.Timeout,
			DisableCompression:  true,
			// The default 4 KiB buffer cuts a 42 KB body into eleven TLS records
			// and as many write syscalls.
			WriteBufferSize: 64 << 10,
		},
		Timeout: cfg.Timeout,
		// A redirect could lead off loopback, and no webhook redirects.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type engine struct {
	cfg    Config
	tmpl   []byte
	uidAt  int
	runID  uint32
	client *http.Client
	nextID uint32 // last worker id; ids never repeat within a run, so neither do uids
}

// preflight sends one request so that an unreachable server, a TLS error or a
// protocol mismatch fails the run at once instead of being counted as
// thousands of request errors. Its answer's content is not judged here.
func (e *engine) preflight(ctx context.Context) (string, error) {
	w := e.newWorker()
	resp, err := w.send(ctx, w.nextUID())
	if err != nil {
		return "", fmt.Errorf("preflight request: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if e.cfg.HTTP2 && resp.ProtoMajor != 2 {
		return "", fmt.Errorf("asked for HTTP/2, server answered %s", resp.Proto)
	}
	return resp.Proto, nil
}

type worker struct {
	e    *engine
	id   uint32
	seq  uint64
	buf  bytes.Buffer
	hist histogram

	requests, ok, errs, allowed, denied int64
	errKinds                            map[string]int64
}

func (e *engine) newWorker() *worker {
	e.nextID++
	return &worker{e: e, id: e.nextID, errKinds: map[string]int64{}}
}

func (w *worker) nextUID() string {
	w.seq++
	return fmt.Sprintf("%08x-%04x-%04x-8000-%012x", w.e.runID, w.id>>16, w.id&0xffff, w.seq&(1<<48-1))
}

func (w *worker) send(ctx context.Context, uid string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.e.cfg.URL, w.e.body(uid))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return w.e.client.Do(req)
}

// body returns the review for uid in a fresh buffer. Recycling buffers would
// save the client an allocation, but the transport may still read a body
// after Do returns, and only a *bytes.Reader body (not a wrapper that could
// signal Close) lets it send headers and body in one TLS record and syscall.
func (e *engine) body(uid string) *bytes.Reader {
	b := make([]byte, len(e.tmpl))
	copy(b, e.tmpl)
	copy(b[e.uidAt:], uid)
	return bytes.NewReader(b)
}

// reviewAnswer is the part of an AdmissionReview response the API server
// itself checks before using it.
type reviewAnswer struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Response   *struct {
		UID     string `json:"uid"`
		Allowed bool   `json:"allowed"`
	} `json:"response"`
}

// do sends one review and records it; latency runs from start, which in open
// mode is the scheduled send time, not the actual one.
func (w *worker) do(ctx context.Context, start time.Time) {
	w.requests++
	uid := w.nextUID()
	resp, err := w.send(ctx, uid)
	if err != nil {
		w.fail(err.Error())
		return
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil {
		w.fail("reading response: " + err.Error())
		return
	}
	if resp.StatusCode != http.StatusOK {
		w.fail("HTTP " + strconv.Itoa(resp.StatusCode))
		return
	}
	var a reviewAnswer
	if err := json.Unmarshal(w.buf.Bytes(), &a); err != nil {
		w.fail("unparseable AdmissionReview: " + err.Error())
		return
	}
	switch {
	case a.APIVersion != "admission.k8s.io/v1" || a.Kind != "AdmissionReview":
		w.fail(fmt.Sprintf("response is %s %s, want admission.k8s.io/v1 AdmissionReview", a.APIVersion, a.Kind))
		return
	case a.Response == nil:
		w.fail("AdmissionReview without response")
		return
	case a.Response.UID != uid:
		w.fail("response.uid does not match request.uid")
		return
	}
	w.hist.record(time.Since(start))
	w.ok++
	if a.Response.Allowed {
		w.allowed++
	} else {
		w.denied++
	}
}

func (w *worker) fail(msg string) {
	w.errs++
	if _, ok := w.errKinds[msg]; ok || len(w.errKinds) < maxErrorKinds {
		w.errKinds[msg]++
	} else {
		w.errKinds["(other errors)"]++
	}
}

// phase runs the configured mode for d and merges what the workers saw.
func (e *engine) phase(ctx context.Context, d time.Duration) *Result {
	start := time.Now()
	end := start.Add(d)
	// Past the hard stop nothing is sent and in-flight requests are cancelled:
	// whatever the server does, the phase ends.
	hard, cancel := context.WithDeadline(ctx, end.Add(e.cfg.Timeout))
	defer cancel()

	workers := make([]*worker, e.cfg.Concurrency)
	for i := range workers {
		workers[i] = e.newWorker()
	}
	var wg sync.WaitGroup
	var due int64
	switch e.cfg.Mode {
	case ModeClosed:
		for _, w := range workers {
			wg.Go(func() {
				for hard.Err() == nil {
					t := time.Now()
					if !t.Before(end) {
						return
					}
					w.do(hard, t)
				}
			})
		}
	case ModeOpen:
		jobs := make(chan time.Time, e.cfg.Concurrency)
		for _, w := range workers {
			wg.Go(func() {
				for t := range jobs {
					if hard.Err() == nil {
						w.do(hard, t)
					}
				}
			})
		}
		due = e.schedule(ctx, hard, start, int64(d.Seconds()*e.cfg.Rate), jobs)
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &Result{Elapsed: elapsed, ErrorKind: map[string]int64{}}
	var h histogram
	for _, w := range workers {
		h.merge(&w.hist)
		res.Requests += w.requests
		res.OK += w.ok
		res.Errors += w.errs
		res.Allowed += w.allowed
		res.Denied += w.denied
		for k, v := range w.errKinds {
			res.ErrorKind[k] += v
		}
	}
	if e.cfg.Mode == ModeOpen {
		// Due requests that no worker sent, whether the dispatcher could not
		// hand them out or a worker found them past the hard stop, are
		// failures: a server that cannot keep up must not look faster for it.
		res.Unsent = due - res.Requests
	}
	if res.Unsent > 0 {
		res.Errors += res.Unsent
		res.Requests += res.Unsent
		res.ErrorKind["not sent before the hard stop (the server or the client fell behind)"] += res.Unsent
	}
	res.Throughput = float64(res.OK) / elapsed.Seconds()
	res.P50, res.P90, res.P99 = h.quantile(0.50), h.quantile(0.90), h.quantile(0.99)
	res.Max, res.Mean = h.max, h.mean()
	return res
}

// schedule hands out n send times at a constant rate from start, then closes
// jobs. When workers are busy it hands out late, but the times it hands out
// stay the scheduled ones, so a stall shows in latency rather than vanishing
// from it (no coordinated omission). It stops at the hard stop, or when
// parent is cancelled, and returns how many requests had fallen due by then.
func (e *engine) schedule(parent, hard context.Context, start time.Time, n int64, jobs chan<- time.Time) int64 {
	defer close(jobs)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := range n {
		t := start.Add(time.Duration(float64(i) * float64(time.Second) / e.cfg.Rate))
		if wait := time.Until(t); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-hard.Done():
				return dueAt(parent, i, n)
			}
		}
		select {
		case jobs <- t:
		case <-hard.Done():
			return dueAt(parent, i+1, n)
		}
	}
	return n
}

// dueAt is how many requests were due when scheduling stopped after handing
// out handed: all n when the hard stop passed (it lies after the last
// scheduled time), only those handed out when the run was interrupted.
func dueAt(parent context.Context, handed, n int64) int64 {
	if parent.Err() != nil {
		return handed
	}
	return n
}

// serverRSS reads the resident set size and its peak, in KiB, of a process.
func serverRSS(pid int) (rss, peak int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("server pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("server pid %d: %s: %w", pid, key, err)
		}
		if key == "VmRSS" {
			rss = kib
		} else {
			peak = kib
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("server pid %d: no VmRSS (a kernel thread or a zombie?)", pid)
	}
	return rss, peak, nil
}

func clientCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is USER_HZ, the unit of /proc/N/stat times: 100 on every Linux
// architecture Go supports (the kernel fixes it for userspace ABI).
const clockTick = 10 * time.Millisecond

// serverCPU reads the user+system CPU time of a process.
func serverCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it may not.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	// f[0] is field 3 (state), so utime (14) and stime (15) are f[11], f[12].
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
