package policy

// Fuzz targets. Their seed corpora (testdata/fuzz/<FuzzName>/) run with every `go test`; to fuzz:
//
//	go test ./policy/ -run '^$' -fuzz '^FuzzHarden$' -fuzztime 5m

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// FuzzParse: Parse never panics, returns a policy or errors (never both, never neither), the same way every
// time; a policy it returns, written back as a document, parses again to the same spec.
func FuzzParse(f *testing.F) {
	f.Add(DefaultPolicyYAML())
	f.Add([]byte(policyHead))
	f.Add([]byte(policyHead + "spec:\n  images: {alow: [x]}\n"))
	f.Add([]byte(`{"apiVersion":"agentgate.io/v1alpha1","kind":"AgentPolicy","metadata":{"name":"j"},"spec":{"resources":{"max":{"cpu":"2"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, errs := Parse(data)
		if (p == nil) == (len(errs) == 0) {
			t.Fatalf("Parse returned a policy: %v, and %d errors", p != nil, len(errs))
		}
		for _, e := range errs {
			if e == nil {
				t.Fatal("nil error in the list")
			}
			_ = e.Error()
		}
		p2, errs2 := Parse(data)
		if len(errs) != len(errs2) || (p == nil) != (p2 == nil) {
			t.Fatal("Parse is not deterministic")
		}
		for i := range errs {
			if errs[i].Error() != errs2[i].Error() {
				t.Fatalf("Parse is not deterministic: %q then %q", errs[i].Error(), errs2[i].Error())
			}
		}
		if p == nil {
			return
		}
		doc, err := yaml.Marshal(&AgentPolicy{APIVersion: APIVersion, Kind: Kind, Metadata: PolicyMeta{Name: p.Name}, Spec: p.Spec})
		if err != nil {
			t.Fatalf("marshalling a parsed policy: %v", err)
		}
		again, errs := Parse(doc)
		if len(errs) > 0 {
			t.Fatalf("a parsed policy does not re-validate: %v\n%s", errs.ToAggregate(), doc)
		}
		if a, b := mustJSON(t, p.Spec), mustJSON(t, again.Spec); a != b {
			t.Fatalf("re-parsed spec differs:\n%s\n%s", a, b)
		}
	})
}

// fuzzSets are the policies FuzzHarden hardens with: the default, one with permissive images (so that more
// inputs reach the admit side), and one with windows: skipLinuxChecks.
func fuzzSets(t testing.TB) []*Set {
	return []*Set{
		NewSet(Default()),
		NewSet(policyFromDefault(t, func(ap *AgentPolicy) {
			ap.Spec.Images.Allow, ap.Spec.Images.DenyTags = nil, nil
		})),
		NewSet(policyFromDefault(t, func(ap *AgentPolicy) {
			ap.Spec.Images.Allow = nil
			ap.Spec.Windows = WindowsSkipLinuxChecks
		})),
	}
}

// FuzzHarden: for any pod JSON that decodes strictly, hardening is idempotent, Judge and evaluate never panic
// on the pod as sent or hardened, the hardened pod still decodes, the patch turns the raw JSON into it, and
// requests and limits (container and pod-level) that the API server accepts stay so after hardening.
func FuzzHarden(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"a","image":"registry.corp.example/agents/a:1"}]}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w"},"spec":{"os":{"name":"windows"},"containers":[{"name":"a","image":"x"}]}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"x","securityContext":{"privileged":true,"capabilities":{"add":["CAP_SYS_ADMIN"],"drop":["all"]}},"resources":{"requests":{"cpu":"9"},"limits":{"memory":"1Mi"}}}],"ephemeralContainers":[{"name":"d","image":"x"}]}}`))
	// Pod-level resources (spec.resources) beside containers, init containers and sidecars with and without
	// their own: hardening must keep every container bounded and never write what the API server refuses.
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"l"},"spec":{"resources":{"limits":{"cpu":"500m","memory":"256Mi"}},"containers":[{"name":"a","image":"registry.corp.example/agents/a:1"},{"name":"b","image":"registry.corp.example/agents/a:1"}]}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r"},"spec":{"resources":{"requests":{"cpu":"150m"}},"containers":[{"name":"a","image":"registry.corp.example/agents/a:1"},{"name":"b","image":"registry.corp.example/agents/a:1"}]}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"s"},"spec":{"resources":{"requests":{"cpu":"1","memory":"100Mi"},"limits":{"memory":"1Gi"}},"initContainers":[{"name":"s","image":"registry.corp.example/agents/a:1","restartPolicy":"Always","resources":{"requests":{"cpu":"300m"}}},{"name":"i","image":"registry.corp.example/agents/a:1","resources":{"limits":{"cpu":"2"}}}],"containers":[{"name":"a","image":"registry.corp.example/agents/a:1","resources":{"limits":{"memory":"10Mi"}}},{"name":"b","image":"registry.corp.example/agents/a:1"}]}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"g"},"spec":{"resources":{"limits":{"cpu":"60","memory":"400Gi","hugepages-2Mi":"1Gi"}},"resourceClaims":[{"name":"g","resourceClaimTemplateName":"t"}],"priorityClassName":"system-node-critical","containers":[{"name":"a","image":"registry.corp.example/agents/a:1","resources":{"limits":{"nvidia.com/gpu":"1","cpu":"64000m"}}}]}}`))
	sets := fuzzSets(f)
	ns := testNS
	podGK := schema.GroupKind{Kind: "Pod"}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := DecodeWorkload(podGK, data)
		if err != nil {
			return
		}
		validAsSent := len(apiResourceErrors(w.Spec)) == 0
		for i, set := range sets {
			_ = set.evaluate(w, ns, Requester{})
			_ = set.Judge(w, ns, Requester{})
			h := w.DeepCopy()
			set.Harden(h, ns, Requester{})
			again := h.DeepCopy()
			if set.Harden(again, ns, Requester{}) {
				t.Fatalf("policy %d: second hardening pass reported a change", i)
			}
			hj := mustJSON(t, h.Object)
			if aj := mustJSON(t, again.Object); aj != hj {
				t.Fatalf("policy %d: second hardening pass changed the pod:\n%s\n%s", i, hj, aj)
			}
			if validAsSent {
				if errs := apiResourceErrors(h.Spec); len(errs) > 0 {
					t.Fatalf("policy %d: hardening made requests and limits the API server refuses: %q\n%s", i, errs, hj)
				}
			}
			_ = set.Judge(h, ns, Requester{})
			res := set.evaluate(h, ns, Requester{})
			if _, err := DecodeWorkload(podGK, []byte(hj)); err != nil {
				t.Fatalf("policy %d: hardened pod does not decode: %v\n%s", i, err, hj)
			}
			m, changed := set.Mutate(w, ns, Requester{})
			if changed && !res.Allowed() {
				t.Fatalf("policy %d: Mutate patched a pod denied after hardening", i)
			}
			ops, err := CreatePatch(data, w.Object, m.Object)
			if err != nil {
				t.Fatalf("policy %d: CreatePatch: %v", i, err)
			}
			if !changed && len(ops) > 0 {
				t.Fatalf("policy %d: unchanged pod, patch %s", i, mustJSON(t, ops))
			}
			if changed {
				patched, err := applyOps(data, ops)
				if err != nil {
					t.Fatalf("policy %d: patch does not apply: %v", i, err)
				}
				pw, err := DecodeWorkload(podGK, patched)
				if err != nil {
					t.Fatalf("policy %d: patched pod does not decode: %v", i, err)
				}
				if got, want := mustJSON(t, pw.Object), mustJSON(t, m.Object); got != want {
					t.Fatalf("policy %d: patched raw pod differs from the mutated pod:\n%s\n%s\nops %s", i, got, want, mustJSON(t, ops))
				}
			}
		}
	})
}

// FuzzImageRef: parsing never panics; the cache answers as a fresh parse does; a parsed reference, written
// back in its normalised form, parses to the same registry, repository, tag and digest; glob matching over
// it never panics.
func FuzzImageRef(f *testing.F) {
	for _, ref := range []string{"nginx", "docker.io/library/nginx:1.27", "index.docker.io/nginx@sha256:" + sha256Zero, "localhost:5000/a/b:c", "ghcr.io/acme/agent:v1@sha256:" + sha256Zero, "Nginx", "a//b", ":"} {
		f.Add(ref)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		img, err := parseImage(ref)
		fresh, ferr := parseImageUncached(ref)
		if (err == nil) != (ferr == nil) {
			t.Fatalf("cached and fresh parses disagree: %v / %v", err, ferr)
		}
		if g, gerr := compileImagePattern(ref, false); gerr == nil && img != nil {
			_ = g.match(img.repoSegments())
			_ = g.match(img.fullSegments())
		}
		if err != nil {
			return
		}
		if img.String() != fresh.String() {
			t.Fatalf("cached %q, fresh %q", img.String(), fresh.String())
		}
		norm := img.String()
		again, err := parseImageUncached(norm)
		if err != nil {
			t.Fatalf("%q normalises to %q, which does not parse: %v", ref, norm, err)
		}
		if again.registry != img.registry || again.repository != img.repository || again.tag != img.tag || again.digest != img.digest {
			t.Fatalf("%q -> %q -> %+v, want %+v", ref, norm, *again, *img)
		}
		if again.String() != norm {
			t.Fatalf("normalisation not stable: %q -> %q -> %q", ref, norm, again.String())
		}
		if segs := img.repoSegments(); len(segs) < 2 || segs[0] != img.registry {
			t.Fatalf("%q: segments %q", ref, segs)
		}
	})
}

const sha256Zero = "0000000000000000000000000000000000000000000000000000000000000000"

// TestFuzzSeedCorpus checks that every fuzz target has its seed corpus in testdata/fuzz; with -update it
// writes the corpus from the samples the other tests use (patch samples, generated pods, policies).
func TestFuzzSeedCorpus(t *testing.T) {
	seeds := map[string][]string{}
	if *updateGolden {
		var parse []string
		parse = append(parse, string(DefaultPolicyYAML()), policyHead, policyHead+"spec: {}\n",
			policyHead+"spec:\n  images: {alow: [x]}\n  exempt: {containers: [{name: a, image: 'docker.io/a:*', nme: b}]}\n",
			policyHead+"spec:\n  mode: warn\n  mode: enforce\n",
			"apiVersion: agentgate.io/v1\nkind: AgentPolicy\nmetadata: {name: m}\nspec:\n  mode: block\n  images: {allow: [\"registry.corp.example/**\", nginx]}\n  exempt: {serviceAccounts: [ci-runner]}\n  resources: {max: {cpu: \"0\", memory: 8Gi}}\n",
			policyHead+"spec:\n  match: {namespaceSelector: {matchExpressions: [{key: a, operator: In, values: [b]}]}, podSelector: {matchLabels: {role: agent}}}\n  securityContext: {allowedCapabilities: [cap_net_raw], seccompProfile: Localhost}\n  resources: {defaults: {requests: {cpu: 1}, limits: {cpu: 2}}, max: {cpu: 4}}\n  commands: {blocked: [\"rm -rf /\"], allowed: [/bin/agent]}\n",
			`{"apiVersion":"agentgate.io/v1alpha1","kind":"AgentPolicy","metadata":{"name":"j"},"spec":{"windows":"skipLinuxChecks","env":{"denyLiteralSecrets":false}}}`,
		)
		seeds["FuzzParse"] = parse

		var pods []string
		samples, _ := filepath.Glob(filepath.Join("testdata", "patch", "*.yaml"))
		for _, s := range samples {
			doc, err := os.ReadFile(s)
			if err != nil {
				t.Fatal(err)
			}
			_, raw := workloadFromYAML(t, string(doc))
			pods = append(pods, string(raw))
		}
		gen := newPodGenerator(42)
		for i := range 12 {
			pods = append(pods, mustJSON(t, gen.pod(i)))
		}
		seeds["FuzzHarden"] = pods

		seeds["FuzzImageRef"] = []string{"nginx", "nginx:latest", "library/nginx", "docker.io/nginx", "index.docker.io/library/nginx:1.27",
			"registry.k8s.io/pause:3.10", "localhost:5000/agents/runner:v1", "ghcr.io/acme/agent@sha256:" + sha256Zero,
			"ghcr.io/acme/agent:1.2@sha256:" + sha256Zero, "registry.corp.example:443/agents/a/b/c:tag", "[::1]:5000/a:b",
			"UPPER/case", "a:b:c", "", " ", "registry.corp.example/agents/**", "docker.io/istio/proxyv2:*"}
		for name, ss := range seeds {
			dir := filepath.Join("testdata", "fuzz", name)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			typ := "[]byte"
			if name == "FuzzImageRef" {
				typ = "string"
			}
			for i, s := range ss {
				body := fmt.Sprintf("go test fuzz v1\n%s(%s)\n", typ, strconv.Quote(s))
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, name := range []string{"FuzzParse", "FuzzHarden", "FuzzImageRef"} {
		entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
		if err != nil || len(entries) < 5 {
			t.Errorf("seed corpus testdata/fuzz/%s: %d files, %v (regenerate with -update)", name, len(entries), err)
		}
	}
}
