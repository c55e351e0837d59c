package webhook

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"agentgate.io/agentgate/internal/testutil"
)

// writeFile replaces path atomically, as editors and ConfigMap volumes do.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func sentinelDoc(t *testing.T, name string) []byte {
	return policyDoc(t, "name: agents", "name: "+name, "mode: enforce", "mode: audit")
}

// eventuallyLoaded waits for the policy.loaded event of the named policy.
func eventuallyLoaded(t *testing.T, ts *testServer, name string) {
	t.Helper()
	testutil.EventuallyTrue(t, 5*time.Second, "policy "+name+" loaded", func() bool {
		return slices.ContainsFunc(ts.logs.Events("policy.loaded"), func(ev map[string]any) bool { return ev["policy"] == name })
	})
}

// TestWebhookPolicyFileReload: a changed file is served within a second; an invalid one leaves the last good
// policy in force, says so (policy.rejected, metrics, /readyz detail), and the server stays ready.
func TestWebhookPolicyFileReload(t *testing.T) {
	dir := t.TempDir()
	path, sentinel := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "sentinel.yaml")
	writeFile(t, path, policyDoc(t))
	// The sentinel is in audit mode: it never changes a verdict, it only shows the source's progress.
	writeFile(t, sentinel, sentinelDoc(t, "sentinel"))
	ts := startServer(t, Options{Sources: []Source{&FileSource{Paths: []string{path, sentinel}}}})
	source := FileKey(path)

	pod := compliantPod("busybox")
	pod.Spec.Containers[0].Image = "docker.io/library/busybox:1.36"
	verdict := func(i int) *admissionv1.AdmissionResponse {
		r := podReview(pod)
		r.uid = "reload-" + string(rune('a'+i%26))
		return ts.answer("/validate", r)
	}
	requireDenied(t, verdict(0), "spec.containers[0].image")
	_, before := ts.readyStatus()

	writeFile(t, path, policyDoc(t, `allow: ["registry.corp.example/agents/**"]`, `allow: ["registry.corp.example/agents/**", "docker.io/library/*"]`))
	i := 0
	took := testutil.EventuallyTrue(t, time.Second, "the rewritten policy file served", func() bool { i++; return verdict(i).Allowed })
	t.Logf("new verdict served %s after the rewrite", took.Round(time.Millisecond))
	_, afterGood := ts.readyStatus()
	if afterGood.Policy.Generation <= before.Policy.Generation {
		t.Errorf("generation %d after a reload, was %d", afterGood.Policy.Generation, before.Policy.Generation)
	}

	// An invalid rewrite: every field error logged, the last good policy kept.
	writeFile(t, path, []byte(strings.NewReplacer("mode: enforce", "mode: sometimes", "windows: deny", "windows: maybe").Replace(string(policyDoc(t)))))
	testutil.EventuallyTrue(t, 5*time.Second, "a policy.rejected event", func() bool { return len(ts.logs.Events("policy.rejected")) > 0 })
	ev := ts.logs.Events("policy.rejected")[0]
	errs, _ := ev["errors"].([]any)
	joined := ""
	for _, e := range errs {
		joined += e.(string) + "\n"
	}
	if ev["source"] != source || !strings.Contains(joined, "spec.mode") || !strings.Contains(joined, "spec.windows") || ev["kept_policy"] != "agents" {
		t.Errorf("policy.rejected event: %v", ev)
	}
	if !verdict(30).Allowed {
		t.Error("after an invalid rewrite, the last good policy is no longer served")
	}
	if got := ts.metric("agentgate_policy_reload_total", `result="error"`); got != 1 {
		t.Errorf(`agentgate_policy_reload_total{result="error"} = %v, want 1`, got)
	}
	if got := ts.metric("agentgate_policy_source_valid", `source="`+source+`"`); got != 0 {
		t.Errorf("agentgate_policy_source_valid = %v, want 0", got)
	}
	code, st := ts.readyStatus()
	if code != http.StatusOK || !st.Ready {
		t.Errorf("a rejected update must not make the server unready: %d %+v", code, st)
	}
	if !strings.Contains(st.Policy.LastReloadError, "spec.mode") || st.Policy.Generation != afterGood.Policy.Generation {
		t.Errorf("readyz detail: %+v", st.Policy)
	}
	if len(st.Policy.Sources) != 2 || st.Policy.Sources[0].Source != source || st.Policy.Sources[0].Valid || st.Policy.Sources[0].Policy != "agents" || len(st.Policy.Sources[0].Errors) < 2 {
		t.Errorf("readyz source detail: %+v", st.Policy.Sources)
	}
	// The same bad bytes read again are reported once. Bound by the source's own progress, not by a sleep:
	// every poll reads the paths in order, so two loads of the sentinel written after the rejection prove
	// that at least one whole poll has re-read the bad file since.
	for i := range 2 {
		writeFile(t, sentinel, sentinelDoc(t, fmt.Sprintf("sentinel-%d", i)))
		eventuallyLoaded(t, ts, fmt.Sprintf("sentinel-%d", i))
	}
	if n := len(ts.logs.Events("policy.rejected")); n != 1 {
		t.Errorf("policy.rejected logged %d times for one bad version", n)
	}

	// A deleted file keeps its last good policy too.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyTrue(t, 5*time.Second, "a policy.rejected event for the deleted file", func() bool { return len(ts.logs.Events("policy.rejected")) >= 2 })
	if !verdict(31).Allowed {
		t.Error("after the file was deleted, the last good policy is no longer served")
	}

	// Fixed again: valid and in force.
	writeFile(t, path, policyDoc(t))
	testutil.EventuallyTrue(t, 5*time.Second, "the restored policy served", func() bool { return !verdict(32).Allowed })
	if got := ts.metric("agentgate_policy_source_valid", `source="`+source+`"`); got != 1 {
		t.Errorf("agentgate_policy_source_valid = %v after the fix, want 1", got)
	}
}

// The store directly: what ConfigMapSource does with several ConfigMaps, each kept separately.
func TestWebhookStoreKeepsEachSourceSeparately(t *testing.T) {
	ts := startServer(t, Options{})
	store := ts.srv.Policies()
	if snap := store.Snapshot(); !snap.Default || snap.Policies[0].Source != DefaultSource {
		t.Fatalf("without sources the default policy is in force: %+v", snap)
	}
	if errs := store.Put("configmap:sys/a", policyDoc(t)); len(errs) != 0 {
		t.Fatal(errs)
	}
	if errs := store.Put("configmap:sys/b", policyDoc(t, "name: agents", "name: digests", "mode: enforce", "mode: warn", "requireDigest: false", "requireDigest: true")); len(errs) != 0 {
		t.Fatal(errs)
	}
	snap := store.Snapshot()
	if snap.Default || len(snap.Set.Policies) != 2 {
		t.Fatalf("two ConfigMaps, two policies: %+v", snap.Policies)
	}
	// b goes bad: a keeps serving, b's last good version too.
	if errs := store.Put("configmap:sys/b", []byte("apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\n")); len(errs) == 0 {
		t.Fatal("an invalid document was accepted")
	}
	if s2 := store.Snapshot(); s2.Generation != snap.Generation || len(s2.Set.Policies) != 2 {
		t.Errorf("a rejected update changed the set: %+v", s2.Policies)
	}
	resp := ts.answer("/validate", podReview(compliantPod("warned")))
	requireAllowed(t, resp)
	if len(resp.Warnings) == 0 || !strings.HasPrefix(resp.Warnings[0], "agentgate[digests]: spec.containers[0].image") {
		t.Errorf("warnings: %v", resp.Warnings)
	}
	store.Remove("configmap:sys/b")
	store.Remove("configmap:sys/a")
	if snap := store.Snapshot(); !snap.Default {
		t.Errorf("with every ConfigMap deleted the default policy is in force: %+v", snap.Policies)
	}
}
