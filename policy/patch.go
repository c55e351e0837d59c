package policy

import (
	"encoding/json"
	"fmt"
	"reflect"

	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/runtime"
)

// CreatePatch returns the RFC 6902 operations that turn raw (the object exactly as sent) into hardened.
// Patches are computed by diff, never written by hand. Diffing raw against the re-marshalled typed object
// also yields "noise" (fields that typed marshalling adds, such as creationTimestamp: null or resources: {});
// those operations, the ones the unmodified object would produce as well, are dropped, so that hardening an
// already hardened pod returns no patch at all.
func CreatePatch(raw []byte, original, hardened runtime.Object) ([]jsonpatch.Operation, error) {
	hardenedJSON, err := json.Marshal(hardened)
	if err != nil {
		return nil, fmt.Errorf("marshalling hardened object: %w", err)
	}
	ops, err := jsonpatch.CreatePatch(raw, hardenedJSON)
	if err != nil {
		return nil, fmt.Errorf("diffing hardened object: %w", err)
	}
	if len(ops) == 0 {
		return nil, nil
	}
	originalJSON, err := json.Marshal(original)
	if err != nil {
		return nil, fmt.Errorf("marshalling original object: %w", err)
	}
	noise, err := jsonpatch.CreatePatch(raw, originalJSON)
	if err != nil {
		return nil, fmt.Errorf("diffing original object: %w", err)
	}
	out := ops[:0]
	for _, op := range ops {
		if !containsOp(noise, op) {
			out = append(out, op)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func containsOp(ops []jsonpatch.Operation, op jsonpatch.Operation) bool {
	for _, o := range ops {
		if o.Operation == op.Operation && o.Path == op.Path && reflect.DeepEqual(o.Value, op.Value) {
			return true
		}
	}
	return false
}
