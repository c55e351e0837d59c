package webhook

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"agentgate.io/agentgate/e2e/load/corpus"
	"agentgate.io/agentgate/policy"
)

// decodeReviewObjects decodes request.object (and oldObject) by its kind in the review's own pass. What it
// leaves must be exactly what decoding the raw object afterwards gives, and anything it cannot decode must
// fall back to the raw object, so that decodeWorkload reports it as before.
func TestSinglePassDecode(t *testing.T) {
	type tc struct {
		name       string
		body       []byte
		wantObject bool // decoded in the single pass
		wantOld    bool
	}
	var cases []tc
	for _, name := range corpus.Names() {
		body, err := corpus.Review(name, "ffffffff-ffff-4fff-bfff-ffffffffffff")
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, tc{name: "corpus " + name, body: body, wantObject: true})
	}
	small, _ := corpus.Review(corpus.Small, "ffffffff-ffff-4fff-bfff-ffffffffffff")
	obj, _ := corpus.Corpus(corpus.Small)
	replace := func(old, new string) []byte {
		if !bytes.Contains(small, []byte(old)) {
			t.Fatalf("test setup: %q not in the review", old)
		}
		return bytes.Replace(small, []byte(old), []byte(new), 1)
	}
	withObject := func(o string) []byte { return bytes.Replace(small, obj, []byte(o), 1) }
	cases = append(cases,
		tc{name: "update with oldObject", body: replace(`"oldObject":null`, `"oldObject":`+string(obj)), wantObject: true, wantOld: true},
		tc{name: "whitespace around the object", body: replace(`"object":`, "\"object\" :\n\t "), wantObject: true},
		tc{name: "unknown field in object", body: withObject(strings.Replace(string(obj), `"spec":{`, `"spec":{"hostEverything":true,`, 1))},
		tc{name: "type confusion in object", body: withObject(strings.Replace(string(obj), `"spec":{`, `"spec":{"hostPID":"yes",`, 1))},
		tc{name: "object is a string", body: withObject(`"pod"`)},
		tc{name: "null object", body: withObject(`null`)},
		tc{name: "unsupported kind version", body: replace(`"version":"v1","kind":"Pod"`, `"version":"v2","kind":"Pod"`)},
		tc{name: "ConfigMap kind", body: replace(`"kind":{"group":"","version":"v1","kind":"Pod"}`, `"kind":{"group":"","version":"v1","kind":"ConfigMap"}`)},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, req, bad := decodeReviewObjects(c.body)
			if bad != nil {
				t.Fatalf("refused: %v", bad)
			}
			var lenient admissionv1.AdmissionReview
			if err := json.Unmarshal(c.body, &lenient); err != nil {
				t.Fatal(err)
			}
			for _, x := range []struct {
				field  string
				got    []byte
				gotObj any
				want   []byte
				decode bool
			}{
				{"object", req.Object.Raw, req.Object.Object, lenient.Request.Object.Raw, c.wantObject},
				{"oldObject", req.OldObject.Raw, req.OldObject.Object, lenient.Request.OldObject.Raw, c.wantOld},
			} {
				if !bytes.Equal(x.got, x.want) {
					t.Errorf("%s raw:\n%.200s\nwant\n%.200s", x.field, x.got, x.want)
				}
				if (x.gotObj != nil) != x.decode {
					t.Errorf("%s decoded in the single pass: %v, want %v", x.field, x.gotObj != nil, x.decode)
				}
				if x.gotObj == nil {
					continue
				}
				w, err := policy.DecodeWorkload(schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}, x.got)
				if err != nil {
					t.Fatalf("%s: the raw object does not decode: %v", x.field, err)
				}
				if !reflect.DeepEqual(w.Object, x.gotObj) {
					t.Errorf("%s: single-pass object differs from the raw object's decode", x.field)
				}
			}
			// decodeReview, what tests and fuzzers see, keeps the objects raw.
			if _, r, _ := decodeReview(c.body); r.Object.Object != nil || r.OldObject.Object != nil {
				t.Error("decodeReview left a decoded object")
			}
		})
	}
	// A duplicate anywhere in the review, the object included, makes the review ambiguous.
	dup := withObject(strings.Replace(string(obj), `"spec":{`, `"spec":{"hostPID":true,"hostPID":false,`, 1))
	if _, _, bad := decodeReviewObjects(dup); bad == nil || bad.reason != "strict" {
		t.Errorf("duplicate field in the object: %+v", bad)
	}
}
