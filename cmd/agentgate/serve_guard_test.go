package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// guardReview is a Namespace UPDATE removing agentgate.io/agents, by a user in groups.
func guardReview(groups ...string) []byte {
	ns := func(labels string) string {
		return `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a","labels":{` + labels + `}}}`
	}
	g, _ := json.Marshal(groups)
	return []byte(fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",`+
		`"kind":{"group":"","version":"v1","kind":"Namespace"},"resource":{"group":"","version":"v1","resource":"namespaces"},`+
		`"name":"team-a","operation":"UPDATE","userInfo":{"username":"bob","groups":%s},"object":%s,"oldObject":%s}}`,
		g, ns(`"team":"a"`), ns(`"agentgate.io/agents":"true"`)))
}

func TestServeAdminGroups(t *testing.T) {
	dir := t.TempDir()
	r := startServe(t, "--addr", "127.0.0.1:0", "--metrics-addr", "0", "--self-signed-dir", dir,
		"--admin-groups", "platform-admins, sre", "--admin-groups", "oncall")
	for _, c := range []struct {
		groups []string
		allow  bool
	}{
		{[]string{"sre"}, true},
		{[]string{"system:authenticated", "oncall"}, true},
		{[]string{"platform-admins"}, true},
		{[]string{"system:masters"}, false}, // the groups given replace the default
		{[]string{"dev"}, false},
	} {
		req := httptest.NewRequest(http.MethodPost, "/validate-guard", bytes.NewReader(guardReview(c.groups...)))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		r.srv.Handler().ServeHTTP(w, req)
		var rev admissionv1.AdmissionReview
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &rev) != nil || rev.Response == nil {
			t.Fatalf("HTTP %d: %s", w.Code, w.Body.Bytes())
		}
		if rev.Response.Allowed != c.allow {
			t.Errorf("groups %v: allowed %v, want %v", c.groups, rev.Response.Allowed, c.allow)
		}
		if !c.allow && !strings.Contains(rev.Response.Result.Message, "(platform-admins, sre, oncall)") {
			t.Errorf("the refusal does not list the admin groups: %s", rev.Response.Result.Message)
		}
	}
	if !strings.Contains(r.stdout.String(), `"admin_groups":["platform-admins","sre","oncall"]`) {
		t.Errorf("serve.started does not log the admin groups:\n%s", r.stdout)
	}
}

func TestServeAdminGroupsEmpty(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := serve(t.Context(), []string{"--addr", "127.0.0.1:0", "--metrics-addr", "0", "--admin-groups", " , "}, &stdout, &stderr, nil)
	if code != 2 || !strings.Contains(stderr.String(), "--admin-groups names no group") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
