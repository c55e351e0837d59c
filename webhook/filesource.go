package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxPolicyBytes bounds a policy file: a ConfigMap cannot hold more than 1 MiB either.
const maxPolicyBytes = 1 << 20

// FileSource watches policy files, one policy document each, by reading them every Interval and comparing
// the bytes. Polling rather than inotify: it sees every way a file is replaced (in-place write, rename, a
// ConfigMap volume's symlink swap, an editor's delete-and-create) and costs one small read per file per tick.
// An unreadable or invalid file keeps its last good policy in force.
type FileSource struct {
	Paths []string
	// Interval between reads; default 250 ms, so that a change is served well within a second.
	Interval time.Duration
}

// FileKey is the Store key (and metric source label) of a policy file.
func FileKey(path string) string { return "file:" + path }

func (f *FileSource) Name() string { return "files" }

func (f *FileSource) Run(ctx context.Context, u Updater) error {
	interval := f.Interval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	last := make([][]byte, len(f.Paths))
	lastErr := make([]string, len(f.Paths))
	poll := func() {
		for i, p := range f.Paths {
			data, err := readPolicyFile(p)
			if err != nil {
				if lastErr[i] != err.Error() {
					lastErr[i], last[i] = err.Error(), nil
					u.Reject(FileKey(p), field.ErrorList{sourceError(err.Error())})
				}
				continue
			}
			if lastErr[i] == "" && last[i] != nil && bytes.Equal(last[i], data) {
				continue
			}
			lastErr[i], last[i] = "", data
			u.Put(FileKey(p), data)
		}
	}
	poll()
	u.Synced()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			poll()
		}
	}
}

func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read policy file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read policy file %s: %w", path, err)
	}
	if len(data) > maxPolicyBytes {
		return nil, fmt.Errorf("policy file %s is larger than %d bytes", path, maxPolicyBytes)
	}
	return data, nil
}

// StaticSource serves fixed documents, keyed as given; for tests and programs that embed the server.
type StaticSource map[string][]byte

func (s StaticSource) Name() string { return "static" }

func (s StaticSource) Run(ctx context.Context, u Updater) error {
	for k, doc := range s {
		u.Put(k, doc)
	}
	u.Synced()
	<-ctx.Done()
	return nil
}
