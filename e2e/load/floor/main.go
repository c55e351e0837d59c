// Command floor serves the decode-only baseline webhook (see package
// floorsrv) that agentgate's benchmarks are measured against.
//
//	go run ./e2e/load/floor -addr 127.0.0.1:9443 [-cert-out floor.pem]
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"agentgate.io/agentgate/e2e/load/floorsrv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9443", "loopback `host:port` to listen on")
	certOut := flag.String("cert-out", "", "write the self-signed serving certificate (PEM) to `FILE`, for the load tool's -cacert")
	var opts floorsrv.Options
	flag.BoolVar(&opts.HTTP2, "http2", false, "offer HTTP/2 as well as HTTP/1.1, as `agentgate serve --http2`")
	flag.BoolVar(&opts.Null, "null", false, "read only request.uid, no typed decode: what HTTPS and the load tool alone cost")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("floor: ")

	s, err := floorsrv.Start(*addr, opts)
	if err != nil {
		log.Fatal(err)
	}
	if *certOut != "" {
		if err := os.WriteFile(*certOut, s.CertPEM, 0o644); err != nil {
			s.Close()
			log.Fatal(err)
		}
	}
	protos := "HTTP/1.1"
	if opts.HTTP2 {
		protos += " and HTTP/2"
	}
	fmt.Printf("floor: pid %d listening on %s (TLS 1.3, %s, any path)\n", os.Getpid(), s.URL, protos)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
		if err := s.Close(); err != nil {
			log.Fatal(err)
		}
	case <-s.Done():
		log.Fatal(s.Err())
	}
}
