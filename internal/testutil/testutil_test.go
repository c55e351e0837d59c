package testutil

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

func TestLogBufferEvents(t *testing.T) {
	var b LogBuffer
	log := slog.New(slog.NewJSONHandler(&b, nil))
	log.Info("one", "event", "x.done", "n", 1)
	log.Info("two", "event", "y.done")
	log.Info("three", "event", "x.done", "n", 3)
	fmt.Fprint(&b, "not json\n{\"event\":\"x.done\"") // a plain line and a truncated one are skipped
	got := b.Events("x.done")
	if len(got) != 2 || got[0]["n"] != float64(1) || got[1]["n"] != float64(3) {
		t.Fatalf("Events(x.done) = %v", got)
	}
	if got := b.Events("z"); len(got) != 0 {
		t.Fatalf("Events(z) = %v", got)
	}
}

func TestEventually(t *testing.T) {
	n := 0
	took := Eventually(t, 5*time.Second, "third call", func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 3 || took <= 0 {
		t.Fatalf("n=%d took=%s", n, took)
	}
}
