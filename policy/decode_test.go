package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"

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

// basePod has nested arrays (nodeSelectorTerms[].matchExpressions[]) for the walk's paths.
const basePod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"app":"x"}},"spec":{` +
	`"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"a","operator":"In","values":["b"]},{"key":"c","operator":"Exists"}]}]}}},` +
	`"containers":[{"name":"a","image":"x","ports":[{"containerPort":80}]},{"name":"b","image":"y","resources":{"limits":{"cpu":"1"}}}]}}`

func TestDecodeErrorPaths(t *testing.T) {
	type fe struct {
		problem Problem
		path    string
	}
	cases := []struct {
		name, old, new string
		want           []fe // UnmarshalStrict's fields, in order
		known          bool // UnmarshalKnown decodes it (only unknown fields)
		syntax         bool // DecodeError.Err is set
	}{
		{"every unknown field, at every depth", `"containerPort":80}`, `"containerPort":80,"futurePort":1}`,
			[]fe{{ProblemUnknown, "spec.containers[0].ports[0].futurePort"}}, true, false},
		{"unknown in nested arrays", `"operator":"Exists"}`, `"operator":"Exists","futureOp":{"x":[1]}}`,
			[]fe{{ProblemUnknown, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].futureOp"}}, true, false},
		{"several unknown", `"name":"b"`, `"futureB":1,"name":"b","futureC":[{"d":2}]`,
			[]fe{{ProblemUnknown, "spec.containers[1].futureB"}, {ProblemUnknown, "spec.containers[1].futureC"}}, true, false},
		{"unknown at the root and in metadata and status", `"kind":"Pod",`, `"kind":"Pod","futureRoot":null,"status":{"futureStatus":1},"metadata":{"futureMeta":true},`,
			nil, false, false}, // duplicate metadata: see want below
		{"duplicate and unknown", `"image":"y"`, `"image":"y","futureX":1,"image":"z"`,
			[]fe{{ProblemUnknown, "spec.containers[1].futureX"}, {ProblemDuplicate, "spec.containers[1].image"}}, false, false},
		{"duplicate inside an unknown value", `"image":"y"`, `"image":"y","futureX":{"a":1,"a":2}`,
			[]fe{{ProblemUnknown, "spec.containers[1].futureX"}, {ProblemDuplicate, "spec.containers[1].futureX.a"}}, false, false},
		{"duplicate map key", `"labels":{"app":"x"}`, `"labels":{"app":"x","app":"x"}`,
			[]fe{{ProblemDuplicate, "metadata.labels.app"}}, false, false},
		{"duplicate in nested arrays", `"key":"c",`, `"key":"c","key":"d",`,
			[]fe{{ProblemDuplicate, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].key"}}, false, false},
		{"type error", `"containerPort":80`, `"containerPort":"80"`,
			[]fe{{ProblemInvalid, "spec.containers[0].ports[0].containerPort"}}, false, false},
		{"type error in nested arrays", `"values":["b"]`, `"values":"b"`,
			[]fe{{ProblemInvalid, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values"}}, false, false},
		{"quantity that does not parse", `"cpu":"1"`, `"cpu":"lots"`,
			[]fe{{ProblemInvalid, "spec.containers[1].resources.limits.cpu"}}, false, false},
		{"unknown, then a type error", `"containerPort":80}`, `"containerPort":80,"futurePort":1},{"containerPort":true}`,
			[]fe{{ProblemUnknown, "spec.containers[0].ports[0].futurePort"}}, false, false},
		{"a member name to escape", `"name":"b"`, `"name":"b","a/b~c":1`,
			[]fe{{ProblemUnknown, "spec.containers[1].a/b~c"}}, true, false},
		{"truncated", `{"cpu":"1"}}}]}}`, `{"cpu":"1"}}}]}`, nil, false, true},
		{"trailing data", `{"cpu":"1"}}}]}}`, `{"cpu":"1"}}}]}} {}`, nil, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(basePod, tc.old) {
				t.Fatalf("test setup: %q not in the pod", tc.old)
			}
			data := []byte(strings.Replace(basePod, tc.old, tc.new, 1))
			if tc.name == "unknown at the root and in metadata and status" {
				// Two "metadata" members: a duplicate at the root, after the unknown ones.
				tc.want = []fe{{ProblemUnknown, "futureRoot"}, {ProblemUnknown, "status.futureStatus"}, {ProblemUnknown, "metadata.futureMeta"}, {ProblemDuplicate, "metadata"}}
			}
			err := UnmarshalStrict(data, &corev1.Pod{})
			var de *DecodeError
			if !errors.As(fmt.Errorf("wrapped: %w", err), &de) {
				t.Fatalf("not a *DecodeError: %T %v", err, err)
			}
			var got []fe
			for _, f := range de.Fields {
				got = append(got, fe{f.Problem, f.Path})
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("fields %v, want %v", got, tc.want)
			}
			if (de.Err != nil) != tc.syntax {
				t.Errorf("Err = %v", de.Err)
			}
			var pod corev1.Pod
			unknown, kerr := UnmarshalKnown(data, &pod)
			if (kerr == nil) != tc.known {
				t.Fatalf("UnmarshalKnown: %v", kerr)
			}
			if kerr == nil {
				if len(unknown) != len(tc.want) || pod.Spec.Containers[1].Image != "y" {
					t.Errorf("unknown %v; decoded %+v", unknown, pod.Spec.Containers)
				}
				for _, f := range unknown {
					// The pointer addresses the value in the document, for a JSON patch.
					if !strings.HasPrefix(string(f.Pointer), "/spec/") || len(f.Value) == 0 {
						t.Errorf("%s: pointer %q value %q", f.Path, f.Pointer, f.Value)
					}
				}
			}
		})
	}
}

// FuzzUnknownWalk holds the walk to the decoder's rules: what the decoder accepts strictly has no unknown or
// duplicated field for the walk, and the first unknown field the decoder meets is one the walk lists.
func FuzzUnknownWalk(f *testing.F) {
	f.Add([]byte(basePod))
	f.Add([]byte(strictPod))
	f.Add([]byte(strings.Replace(basePod, `"containerPort":80`, `"containerPort":80,"x":{"y":[{"z":1}]}`, 1)))
	f.Add([]byte(`{"metadata":{"ownerReferences":[{"uid":"u","futureRef":1}],"creationTimestamp":"2020-01-01T00:00:00Z"},"spec":{"containers":[{"name":"a","env":[{"name":"A","valueFrom":{"fieldRef":{"fieldPath":"x","future":1}}}]}],"overhead":{"cpu":"1"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []any{&corev1.Pod{}, &appsv1.Deployment{}} {
			err := json2Strict(data, v)
			fields, _ := walk(data, reflect.TypeOf(v))
			if err == nil {
				for _, fe := range fields {
					t.Fatalf("decoded strictly, but the walk finds %s field %s in %q", fe.Problem, fe.Path, data)
				}
				continue
			}
			first, ok := fieldError(err)
			if !ok || first.Problem != ProblemUnknown {
				continue
			}
			found := false
			for _, fe := range fields {
				found = found || (fe.Problem == ProblemUnknown && fe.Pointer == first.Pointer)
			}
			if !found && len(fields) < maxWalkFields {
				t.Fatalf("the decoder stops at unknown field %s, which the walk misses (%v) in %q", first.Pointer, fields, data)
			}
		}
	})
}

// json2Strict is the decoder's own strict pass, without the walk.
func json2Strict(data []byte, v any) error {
	return jsonv2.Unmarshal(data, v, strictOptions)
}
