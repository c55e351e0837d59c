// Package testutil holds what tests across the project share: waiting for a condition, and reading the JSON
// log lines (audit events) that servers under test write. One way to do each, so that every negative
// assertion is bound by an event or a counter the same way, never by a fixed sleep.
package testutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// pollInterval is how often Eventually asks: short against the timeouts used (seconds), cheap against the
// conditions (a metric read, a log scan).
const pollInterval = 20 * time.Millisecond

// Eventually polls cond until it returns nil and returns how long that took; after timeout it fails the test
// with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// LogBuffer is a log sink safe for a server's goroutines and the test's reads.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Events returns the decoded log lines whose "event" field is name, in order.
func (b *LogBuffer) Events(name string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Events(b.buf.Bytes(), name)
}

// Events returns the JSON lines of logs whose "event" field is name, in order; lines that are not JSON
// objects (a truncated last line, plain text) are skipped.
func Events(logs []byte, name string) []map[string]any {
	var out []map[string]any
	for line := range bytes.SplitSeq(logs, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["event"] == name {
			out = append(out, m)
		}
	}
	return out
}

// EventuallyTrue is Eventually for a condition that has no error to tell.
func EventuallyTrue(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Eventually(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

var errNotYet = errors.New("condition still false")

// WaitHTTPOK polls url with client until it answers 200 (a /readyz), failing with the last answer.
func WaitHTTPOK(t testing.TB, client *http.Client, url string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, "GET "+url+" answering 200", func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%d: %s", resp.StatusCode, body)
		}
		return nil
	})
}
