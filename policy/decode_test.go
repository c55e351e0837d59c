package policy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
)

// The workload decoder (encoding/json/v2 semantics, UnmarshalStrict) must refuse everything the previous
// one (sigs.k8s.io/json's UnmarshalStrict with DisallowDuplicateFields and DisallowUnknownFields) refused,
// and decode everything else to the same object.

const strictPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"app":"x"}},"spec":{"containers":[{"name":"a","image":"registry.corp.example/agents/a:1","resources":{"limits":{"cpu":"1"}},"ports":[{"containerPort":80}]}]}}`

func TestUnmarshalStrictRefuses(t *testing.T) {
	cases := []struct {
		name, old, new string
		wantStrict     string // the message of an unknown or duplicate field, "" for another error
		stricter       bool   // sigs.k8s.io/json accepted it (invalid UTF-8 became U+FFFD)
	}{
		{"unknown field", `"containers":`, `"hostEverything":true,"containers":`, `unknown field "spec.hostEverything"`, false},
		{"unknown nested field", `"name":"a","image"`, `"name":"a","securityContex":{},"image"`, `unknown field "spec.containers[0].securityContex"`, false},
		{"duplicate field", `"containers":`, `"hostPID":true,"hostPID":false,"containers":`, `duplicate field "spec.hostPID"`, false},
		{"duplicate field, differing values", `"image":"registry.corp.example/agents/a:1"`, `"image":"docker.io/evil:1","image":"registry.corp.example/agents/a:1"`, `duplicate field "spec.containers[0].image"`, false},
		{"duplicate map key", `"labels":{"app":"x"}`, `"labels":{"app":"x","app":"y"}`, `duplicate field "metadata.labels.app"`, false},
		{"duplicate quantity key", `"limits":{"cpu":"1"}`, `"limits":{"cpu":"1","cpu":"64"}`, `duplicate field "spec.containers[0].resources.limits.cpu"`, false},
		{"case-folded field", `"containers":`, `"HostPID":true,"containers":`, `unknown field "spec.HostPID"`, false},
		{"case-folded nested field", `"containerPort":80`, `"containerport":80`, `unknown field "spec.containers[0].ports[0].containerport"`, false},
		{"duplicate top-level", `"kind":"Pod"`, `"kind":"Pod","kind":"Pod"`, `duplicate field "kind"`, false},
		{"type confusion", `"containerPort":80`, `"containerPort":"80"`, "", false},
		{"bool as string", `"containers":`, `"hostPID":"true","containers":`, "", false},
		{"trailing data", `]}}`, `]}}{}`, "", false},
		{"invalid UTF-8", `"name":"a","labels"`, "\"name\":\"a\xff\",\"labels\"", "", true},
		{"bad quantity", `"cpu":"1"`, `"cpu":"one"`, "", false},
		{"fraction into int", `"containerPort":80`, `"containerPort":80.5`, "", false},
	}
	if err := UnmarshalStrict([]byte(strictPod), &corev1.Pod{}); err != nil {
		t.Fatalf("the base pod does not decode: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(strictPod, tc.old) {
				t.Fatalf("test setup: %q not in the pod", tc.old)
			}
			data := []byte(strings.Replace(strictPod, tc.old, tc.new, 1))
			err := UnmarshalStrict(data, &corev1.Pod{})
			if err == nil {
				t.Fatalf("decoded: %s", data)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%T is no *DecodeError: %v", err, err)
			}
			if got := de.Has(ProblemUnknown) || de.Has(ProblemDuplicate); got != (tc.wantStrict != "") {
				t.Errorf("unknown or duplicate = %v: %v", got, err)
			}
			if tc.wantStrict != "" && !strings.HasSuffix(err.Error(), tc.wantStrict) {
				t.Errorf("error %q, want it to end with %q", err, tc.wantStrict)
			}
			if ok, _ := kjsonDecodes(data, &corev1.Pod{}); ok != tc.stricter {
				t.Errorf("sigs.k8s.io/json accepts it: the case does not test strictness")
			}
		})
	}
}

func kjsonDecodes(data []byte, v any) (bool, error) {
	strict, err := kjson.UnmarshalStrict(data, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return false, err
	}
	if len(strict) > 0 {
		return false, strict[0]
	}
	return true, nil
}

// differential decodes data with both decoders; it fails when the new one accepts what the old one refused
// or decodes it differently. The new decoder may refuse more (it refuses invalid UTF-8 in strings, which
// the old one replaced with U+FFFD): those inputs are reported by the caller's count only.
func differential(t *testing.T, data []byte, fresh func() any) (newOK bool) {
	t.Helper()
	oldObj, newObj := fresh(), fresh()
	oldOK, oldErr := kjsonDecodes(data, oldObj)
	newErr := UnmarshalStrict(data, newObj)
	if newErr == nil && !oldOK {
		t.Fatalf("the strict decoder accepts what sigs.k8s.io/json refuses (%v): %q", oldErr, data)
	}
	if newErr == nil && oldOK && !reflect.DeepEqual(oldObj, newObj) {
		o, _ := json.Marshal(oldObj)
		n, _ := json.Marshal(newObj)
		if string(o) != string(n) {
			t.Fatalf("the decoders disagree on %q:\nold %s\nnew %s", data, o, n)
		}
	}
	return newErr == nil
}

func TestUnmarshalStrictAgreesOnCorpus(t *testing.T) {
	for _, bc := range benchCases(t) {
		data := mustJSON(t, bc.pod.Object)
		if !differential(t, []byte(data), func() any { return &corev1.Pod{} }) {
			t.Errorf("%s: refused", bc.name)
		}
		hardened := mustJSON(t, bc.hardened.Object)
		if !differential(t, []byte(hardened), func() any { return &corev1.Pod{} }) {
			t.Errorf("%s hardened: refused", bc.name)
		}
	}
}

// FuzzUnmarshalStrict: for any input, the strict decoder accepts only what sigs.k8s.io/json's strict mode
// accepts, and decodes it to the same Pod and Deployment.
func FuzzUnmarshalStrict(f *testing.F) {
	f.Add([]byte(strictPod))
	f.Add([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","creationTimestamp":null},"spec":{"selector":{"matchLabels":{"a":"b"}},"strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":1}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"a","image":"x","livenessProbe":{"httpGet":{"port":"http","path":"/"}},"resources":{"requests":{"memory":"1Gi"}}}],"volumes":[{"name":"v","emptyDir":{"sizeLimit":"1Gi"}}]}}}}`))
	f.Add([]byte(`{"metadata":{"name":"a","annotations":{"k":"v\u00e9\ud83d\ude00"}},"spec":{"containers":[{"name":"a","image":"x","env":[{"name":"A","value":"\"\\/"}],"securityContext":{"runAsUser":0,"capabilities":{"add":["ALL"]}}}],"ephemeralContainers":[{"name":"d","image":"x","targetContainerName":"a"}]}}`))
	f.Add([]byte(`{"spec":{"containers":null,"os":{"name":"windows"},"securityContext":{"windowsOptions":{"hostProcess":true}},"overhead":{"cpu":"1m"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		differential(t, data, func() any { return &corev1.Pod{} })
		differential(t, data, func() any { return &appsv1.Deployment{} })
	})
}
