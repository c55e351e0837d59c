package webhook

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

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
