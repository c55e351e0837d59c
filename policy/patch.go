package policy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/runtime"
)

// CreatePatch returns the RFC 6902 operations that turn raw (the object exactly as sent) into hardened.
// Patches are computed by diff, never written by hand. Diffing raw against the re-marshalled typed object
// also yields "noise" (fields that typed marshalling adds, such as creationTimestamp: null or resources: {},
// and the removal of every field that the typed object does not have: fields unknown to agentgate's
// k8s.io/api); those operations, the ones the unmodified object would produce as well, are dropped, so that
// hardening an already hardened pod returns no patch at all.
//
// A patch never removes a field agentgate does not know (README "Cluster upgrades"): every such field is a
// "remove" of the noise, and no operation of the patch may touch it or a parent of it (keepsUnknown). The
// diff recurses into objects and arrays element by element, so none does; if one ever did, the patch is
// refused with an error rather than sent.
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
	if err := keepsUnknown(raw, original, out, noise); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// keepsUnknown refuses a patch that would change a field agentgate's k8s.io/api does not know, or any
// parent of one. Only an object with such fields has "remove" operations in its noise; only then is raw
// walked to find them.
func keepsUnknown(raw []byte, original runtime.Object, ops, noise []jsonpatch.Operation) error {
	if !slices.ContainsFunc(noise, func(op jsonpatch.Operation) bool { return op.Operation == "remove" }) {
		return nil
	}
	fields, _ := walk(raw, reflect.TypeOf(original))
	for _, f := range fields {
		if f.Problem != ProblemUnknown {
			continue
		}
		for _, op := range ops {
			if p := string(f.Pointer); op.Path == "" || op.Path == p || strings.HasPrefix(p, op.Path+"/") {
				return fmt.Errorf("the hardening patch would %s %s, losing %s, a field agentgate's Kubernetes API (k8s.io/api %s) does not know: refused", op.Operation, op.Path, f.Path, KubernetesAPIModule)
			}
		}
	}
	return nil
}

func containsOp(ops []jsonpatch.Operation, op jsonpatch.Operation) bool {
	for _, o := range ops {
		if o.Operation == op.Operation && o.Path == op.Path && reflect.DeepEqual(o.Value, op.Value) {
			return true
		}
	}
	return false
}
