package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"agentgate.io/agentgate/e2e/load/corpus"
)

// Each request on a fresh goroutine, as HTTP/2 serves them.
func BenchmarkTmpFreshGoroutine(b *testing.B) {
	h := benchServer(b)
	for _, name := range []string{corpus.Small, corpus.Large} {
		body := corpusReview(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			done := cpuPerOp(b)
			for b.Loop() {
				ch := make(chan int)
				go func() {
					req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					ch <- w.Code
				}()
				if <-ch != 200 {
					b.Fatal("not 200")
				}
			}
			done()
		})
	}
}
