package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"agentgate.io/agentgate/policy"
)

// PolicyReports are the background audit's findings as one wgpolicyk8s.io/v1alpha2 PolicyReport per agent
// namespace, named agentgate, for Policy Reporter and `kubectl get policyreport`: never one object per pod or
// per run (peers' per-resource reports have filled etcd, kyverno#8974). Written only while the CRD is served.
//
// A report lists a result per failing check of a pod (fail for enforce mode, warn for warn and audit) and
// counts the passing (pod, policy) pairs in its summary; at most MaxReportResults results, the summary counting
// them all. API calls per audit run: one discovery GET, one LIST of agentgate's reports, and a write only for a
// namespace whose findings changed (timestamps aside) or that no longer has judged pods (delete).
type PolicyReports struct {
	Client    dynamic.Interface
	Discovery discovery.DiscoveryInterface
}

// ReportName is the name of agentgate's PolicyReport in each namespace; ReportSource is its results' source.
const (
	ReportName   = "agentgate"
	ReportSource = "agentgate"
	// MaxReportResults bounds one report (an object must stay far below etcd's 1.5 MiB limit).
	MaxReportResults = 1000
)

var policyReportGVR = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}

// NamespaceFindings are what one audit run found in one namespace.
type NamespaceFindings struct {
	// Pass counts the (pod, policy) pairs without a violation.
	Pass    int
	Results []ReportResult
}

// ReportResult is one PolicyReport result: one check of one policy failed by one object (a pod, or a
// NetworkPolicy of its namespace).
type ReportResult struct {
	Policy     string            `json:"policy"`
	Rule       string            `json:"rule"`
	Result     string            `json:"result"` // fail | warn
	Severity   string            `json:"severity,omitempty"`
	Source     string            `json:"source"`
	Message    string            `json:"message"`
	Properties map[string]string `json:"properties,omitempty"`
	Resources  []ReportResource  `json:"resources"`
	Timestamp  *reportTimestamp  `json:"timestamp,omitempty"`
}

// ReportResource is the object a result is about.
type ReportResource struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	UID        string `json:"uid"`
}

type reportTimestamp struct {
	Seconds int64 `json:"seconds"`
	Nanos   int32 `json:"nanos"`
}

type reportSummary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

// what names the object for a message: "running pod", "NetworkPolicy".
func (r ReportResource) what() string {
	if r.Kind == "Pod" {
		return "running pod"
	}
	return r.Kind
}

// objectResults turns one object's violations into report results, in violation order.
func objectResults(obj ReportResource, vs policy.Violations) []ReportResult {
	out := make([]ReportResult, 0, len(vs))
	for _, v := range vs {
		result := "warn"
		if v.Mode == policy.ModeEnforce {
			result = "fail"
		}
		out = append(out, ReportResult{
			Policy: v.Policy, Rule: v.Check, Result: result, Source: ReportSource, Message: v.Message,
			Properties: map[string]string{"field": v.Field, "mode": string(v.Mode)},
			Resources:  []ReportResource{obj},
		})
	}
	return out
}

// Available says whether the API server serves PolicyReports (the CRD is installed).
func (r *PolicyReports) Available() (bool, error) {
	list, err := r.Discovery.ServerResourcesForGroupVersion(policyReportGVR.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(list.APIResources, func(res metav1.APIResource) bool { return res.Name == policyReportGVR.Resource }), nil
}

// ReportWrites counts what Write did.
type ReportWrites struct {
	Created, Updated, Deleted, Unchanged int
}

// Write makes agentgate's reports say findings: one per namespace in it, none elsewhere. Errors of single
// namespaces are joined; the others are still written.
func (r *PolicyReports) Write(ctx context.Context, findings map[string]NamespaceFindings, now time.Time) (ReportWrites, error) {
	var w ReportWrites
	existing, err := r.Client.Resource(policyReportGVR).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		LabelSelector: ManagedSelector, FieldSelector: "metadata.name=" + ReportName})
	if err != nil {
		return w, fmt.Errorf("listing agentgate's PolicyReports: %w", err)
	}
	byNamespace := map[string]*unstructured.Unstructured{}
	for i := range existing.Items {
		byNamespace[existing.Items[i].GetNamespace()] = &existing.Items[i]
	}
	var errs []error
	for _, ns := range slices.Sorted(maps.Keys(findings)) {
		want := reportObject(ns, findings[ns], now)
		cur, ok := byNamespace[ns]
		switch {
		case !ok:
			_, err = r.Client.Resource(policyReportGVR).Namespace(ns).Create(ctx, want, metav1.CreateOptions{FieldManager: "agentgate"})
			if apierrors.IsAlreadyExists(err) {
				// A report of that name without agentgate's label (someone else's, or one made to look like
				// agentgate's): the name is agentgate's, so it is taken over rather than left to say anything.
				err = r.takeOver(ctx, want)
				if err == nil {
					w.Updated++
				}
			} else if err == nil {
				w.Created++
			}
		case sameFindings(cur, want):
			w.Unchanged++
			continue
		default:
			want.SetResourceVersion(cur.GetResourceVersion())
			_, err = r.Client.Resource(policyReportGVR).Namespace(ns).Update(ctx, want, metav1.UpdateOptions{FieldManager: "agentgate"})
			if err == nil {
				w.Updated++
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("PolicyReport %s/%s: %w", ns, ReportName, err))
		}
	}
	for ns := range byNamespace {
		if _, ok := findings[ns]; ok {
			continue
		}
		err := r.Client.Resource(policyReportGVR).Namespace(ns).Delete(ctx, ReportName, metav1.DeleteOptions{})
		switch {
		case err == nil:
			w.Deleted++
		case !apierrors.IsNotFound(err):
			errs = append(errs, fmt.Errorf("deleting PolicyReport %s/%s: %w", ns, ReportName, err))
		}
	}
	return w, errors.Join(errs...)
}

// takeOver replaces an unlabelled report named ReportName with want.
func (r *PolicyReports) takeOver(ctx context.Context, want *unstructured.Unstructured) error {
	client := r.Client.Resource(policyReportGVR).Namespace(want.GetNamespace())
	cur, err := client.Get(ctx, ReportName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	want.SetResourceVersion(cur.GetResourceVersion())
	_, err = client.Update(ctx, want, metav1.UpdateOptions{FieldManager: "agentgate"})
	return err
}

// reportObject is the PolicyReport that says f for namespace ns.
func reportObject(ns string, f NamespaceFindings, now time.Time) *unstructured.Unstructured {
	sum := reportSummary{Pass: f.Pass}
	results := f.Results
	for _, res := range results {
		if res.Result == "fail" {
			sum.Fail++
		} else {
			sum.Warn++
		}
	}
	if len(results) > MaxReportResults {
		results = results[:MaxReportResults]
	}
	ts := &reportTimestamp{Seconds: now.Unix(), Nanos: int32(now.Nanosecond())}
	stamped := make([]any, len(results))
	for i, res := range results {
		res.Timestamp = ts
		stamped[i] = toMap(&res)
	}
	obj := map[string]any{
		"apiVersion": policyReportGVR.GroupVersion().String(),
		"kind":       "PolicyReport",
		"metadata": map[string]any{
			"name": ReportName, "namespace": ns,
			"labels": map[string]any{policy.ManagedByLabel: policy.ManagedByValue},
		},
		"summary": toMap(&sum),
		"results": stamped,
	}
	return &unstructured.Unstructured{Object: obj}
}

// toMap is v as an unstructured object's field (int64 numbers, as the API server's answers have them).
func toMap(v any) map[string]any {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(v)
	if err != nil { // unreachable: plain structs of strings, numbers and string maps
		return map[string]any{"error": err.Error()}
	}
	return m
}

// sameFindings compares a stored report with a wanted one, timestamps aside: an unchanged namespace is not
// rewritten every run. Both sides are unstructured the same way (int64 numbers: the API server's decoding and
// toMap's converter), so they compare as they are.
func sameFindings(cur, want *unstructured.Unstructured) bool {
	return reflect.DeepEqual(withoutTimestamps(cur.Object["results"]), withoutTimestamps(want.Object["results"])) &&
		reflect.DeepEqual(cur.Object["summary"], want.Object["summary"])
}

func withoutTimestamps(results any) any {
	list, _ := results.([]any)
	out := make([]any, 0, len(list))
	for _, r := range list {
		m, ok := r.(map[string]any)
		if !ok {
			return results
		}
		c := maps.Clone(m)
		delete(c, "timestamp")
		out = append(out, c)
	}
	return out
}
