package webhook

import (
	"bytes"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"agentgate.io/agentgate/e2e/load/corpus"
	"agentgate.io/agentgate/internal/benchcpu"
	"agentgate.io/agentgate/policy"
)

// decodeForBench decodes a review and its object as serveReview and decodeWorkload do.
func decodeForBench(body []byte) (*policy.Workload, error) {
	_, req, bad := decodeReviewObjects(body)
	if bad != nil {
		return nil, bad
	}
	if req.Object.Object != nil {
		return policy.NewWorkload(req.Object.Object)
	}
	return policy.DecodeWorkload(schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}, req.Object.Raw)
}

// BenchmarkDecodeTwoPass is BenchmarkDecode with the single pass off: the review scanned with the object
// raw, then the object decoded by its kind. The difference is what the single pass saves.
func BenchmarkDecodeTwoPass(b *testing.B) {
	singlePass = false
	defer func() { singlePass = true }()
	BenchmarkDecode(b)
}

// BenchmarkDecodeUnknown is BenchmarkDecode's large pod as a newer API server would send it, with a status
// field agentgate's k8s.io/api does not know: the path that walks the object and decodes it past the field.
// BenchmarkDecode/large is the same pod without it.
func BenchmarkDecodeUnknown(b *testing.B) {
	body := corpusReview(b, corpus.Large)
	body = bytes.Replace(body, []byte(`"status":{}`), []byte(`"status":{"futureStatusField":{"since":"2031-01-01T00:00:00Z"}}`), 1)
	if w, err := decodeForBench(body); err != nil || len(w.Unknown) != 1 {
		b.Fatalf("setup: %v", err)
	}
	benchDecode(b, body)
}

// benchDecode measures decodeForBench on one review body.
func benchDecode(b *testing.B, body []byte) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	done := benchcpu.PerOp(b)
	for b.Loop() {
		if _, err := decodeForBench(body); err != nil {
			b.Fatal(err)
		}
	}
	done()
}
