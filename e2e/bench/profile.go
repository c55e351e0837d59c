package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"agentgate.io/agentgate/certs"
	"agentgate.io/agentgate/webhook"
)

// runProfile serves agentgate in this process exactly as `agentgate serve` wires it (webhook.New, the
// embedded default policy, JSON audit log at info to a file, TLS 1.3) and profiles it while the load tool, a
// separate process, drives it:
//
//	go run ./e2e/bench profile -path /validate -corpus large -d 10s -o /tmp/prof
//	go tool pprof -top /tmp/prof/cpu.pprof; go tool pprof -sample_index=alloc_space -top /tmp/prof/allocs.pprof
func runProfile(ctx context.Context, args []string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("bench profile", flag.ContinueOnError)
	path := fs.String("path", "/validate", "endpoint")
	corpusName := fs.String("corpus", "small", "load-tool corpus")
	d := fs.Duration("d", 10*time.Second, "measured duration")
	c := fs.Int("c", 32, "concurrency")
	h2 := fs.Bool("http2", false, "HTTP/2")
	rate := fs.Float64("rate", 0, "open loop at this many reviews/s (default: closed loop)")
	out := fs.String("o", "prof", "output folder for cpu.pprof, allocs.pprof and the load report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "agentgate-profile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var rec recorder
	loadBin, err := buildTool(ctx, root, tmp, "./e2e/load", &rec)
	if err != nil {
		return err
	}
	certFile, keyFile, caFile, err := certs.SelfSigned(filepath.Join(tmp, "certs"), []string{"127.0.0.1"})
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(tmp, "agentgate.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	srv, err := webhook.New(webhook.Options{Addr: addr, MetricsAddr: "0", GetCertificate: webhook.StaticCertificate(pair), HTTP2: *h2,
		Logger: slog.New(slog.NewJSONHandler(logf, nil))})
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	// The load tool reports this process's CPU per review and RSS: -pid is ours.
	s := &server{name: "agentgate", base: "https://" + addr, caFile: caFile, pidOf: os.Getpid()}
	if err := waitServing(ctx, s); err != nil {
		return err
	}
	run := loadRun{Path: *path, Corpus: *corpusName, Mode: "closed", HTTP2: *h2, C: *c, Duration: *d, Warmup: time.Second}
	if *rate > 0 {
		run.Mode, run.Rate = "open", *rate
	}
	cpu, err := os.Create(filepath.Join(*out, "cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	runtime.MemProfileRate = 64 << 10
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	rep, err := run.run(ctx, loadBin, s)
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	allocs, err := os.Create(filepath.Join(*out, "allocs.pprof"))
	if err != nil {
		return err
	}
	defer allocs.Close()
	if err := pprof.Lookup("allocs").WriteTo(allocs, 0); err != nil {
		return err
	}
	stop()
	<-done
	summary := fmt.Sprintf("%s %s %s: %.0f reviews/s, server CPU %.0f µs/review, p99 %.3f ms\n", run.proto(), *path, *corpusName,
		rep.Throughput, rep.ServerCPUUS, rep.LatencyMS.P99)
	fmt.Print(summary)
	return os.WriteFile(filepath.Join(*out, "summary.txt"), []byte(strings.TrimSpace(summary)+"\n"), 0o644)
}
