package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Attempts to get more of the node than the default policy allows (issue 11, class 2, and its variations),
// each through the webhook's path: /mutate hardens the pod as sent, then /validate judges the result. Each row
// names the verdict and every violation it must give, by check and exact field path.

// containersYAML is n containers "c0".."c(n-1)" with the given resources (a YAML flow mapping, "" for none).
func containersYAML(n int, resources string, extra string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  - {name: c%d, image: %s%s", i, testImage, extra)
		if resources != "" {
			fmt.Fprintf(&b, ", resources: %s", resources)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func podYAML(spec string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: agents}\nspec:\n" + spec
}

type bypassCase struct {
	name      string
	policy    string // YAML under spec: (testPolicy); "" for the default policy
	requester Requester
	doc       string
	deny      []string // check@path, in order; empty: admitted
}

func resourceBypassCases() []bypassCase {
	const cpu4 = "{requests: {cpu: '4'}, limits: {cpu: '4'}}"
	return []bypassCase{
		{
			name: "50 containers x 4 CPU",
			doc:  podYAML("  containers:\n" + containersYAML(50, cpu4, "")),
			deny: []string{"resources@spec.resources.requests[cpu]", "resources@spec.resources.limits[cpu]"},
		},
		{
			name: "5 containers x 4 CPU limits, default requests",
			doc:  podYAML("  containers:\n" + containersYAML(5, "{limits: {cpu: '4'}}", "")),
			deny: []string{"resources@spec.resources.limits[cpu]"},
		},
		{
			name: "4 containers x 4 CPU: at the per-pod ceiling",
			doc:  podYAML("  containers:\n" + containersYAML(4, cpu4, "")),
		},
		{
			name: "33 containers with the default limits: 33 CPU, 16.5Gi",
			doc:  podYAML("  containers:\n" + containersYAML(33, "", "")),
			deny: []string{"resources@spec.resources.limits[cpu]"},
		},
		{
			// Init containers run one at a time, before the others: the largest one counts, not their sum.
			name: "init containers at max run one at a time",
			doc:  podYAML("  initContainers:\n" + containersYAML(6, cpu4, "") + "  containers:\n" + containersYAML(1, cpu4, "")),
		},
		{
			name: "an init container above max",
			doc:  podYAML("  initContainers:\n" + containersYAML(1, "{limits: {cpu: '64'}}", "") + "  containers:\n" + containersYAML(1, "", "")),
			deny: []string{"resources@spec.initContainers[0].resources.limits[cpu]", "resources@spec.resources.limits[cpu]"},
		},
		{
			// Restartable init containers (sidecars) run beside the regular ones for the pod's whole life.
			name: "sidecars add up with the regular containers",
			doc: podYAML("  initContainers:\n" + containersYAML(4, cpu4, ", restartPolicy: Always") +
				"  containers:\n" + containersYAML(1, cpu4, "")),
			deny: []string{"resources@spec.resources.requests[cpu]", "resources@spec.resources.limits[cpu]"},
		},
		{
			// While an init container starts, the sidecars declared before it already run.
			name:   "an init container after sidecars",
			policy: "resources: {defaults: {limits: {cpu: '1'}}, max: {cpu: '4'}, maxPerPod: {cpu: '10'}}",
			doc: podYAML("  initContainers:\n" + containersYAML(2, cpu4, ", restartPolicy: Always") +
				"  - {name: last, image: " + testImage + ", resources: " + cpu4 + "}\n" +
				"  containers:\n" + containersYAML(1, "{requests: {cpu: 100m}, limits: {cpu: 100m}}", "")),
			deny: []string{"resources@spec.resources.requests[cpu]", "resources@spec.resources.limits[cpu]"},
		},
		{
			name: "pod-level resources only: 60 CPU, 400Gi",
			doc:  podYAML("  resources: {limits: {cpu: '60', memory: 400Gi}}\n  containers:\n" + containersYAML(2, "", "")),
			deny: []string{"resources@spec.resources.limits[cpu]", "resources@spec.resources.limits[memory]"},
		},
		{
			name: "pod-level requests above max, containers within",
			doc:  podYAML("  resources: {requests: {cpu: '60'}}\n  containers:\n" + containersYAML(2, "", "")),
			deny: []string{"resources@spec.resources.requests[cpu]"},
		},
		{
			// max bounds the pod level too: a container without its own limit may use the whole pod-level one.
			name: "pod-level limit within the per-pod ceiling, above max",
			doc:  podYAML("  resources: {limits: {cpu: '8'}}\n  containers:\n" + containersYAML(2, "", "")),
			deny: []string{"resources@spec.resources.limits[cpu]"},
		},
		{
			// Every container has its own limit: the pod-level one only caps their sum (the API server sets it
			// so itself beside a pod-level request), which the per-pod ceiling bounds.
			name: "pod-level limit above max, every container with its own",
			doc:  podYAML("  resources: {limits: {cpu: '8'}}\n  containers:\n" + containersYAML(2, cpu4, "")),
		},
		{
			name: "pod-level limit above max, one container without its own",
			doc: podYAML("  resources: {limits: {cpu: '8'}}\n  containers:\n" + containersYAML(1, cpu4, "") +
				"  - {name: free, image: " + testImage + "}\n"),
			deny: []string{"resources@spec.resources.limits[cpu]"},
		},
		{
			name: "the issue's pod-level limits: 500m, 256Mi, two containers",
			doc:  podYAML("  resources: {limits: {cpu: 500m, memory: 256Mi}}\n  containers:\n" + containersYAML(2, "", "")),
		},
		{
			name: "the issue's pod-level request: 150m, two containers",
			doc:  podYAML("  resources: {requests: {cpu: 150m}}\n  containers:\n" + containersYAML(2, "", "")),
		},
		{
			name: "a container limit above the pod-level one",
			doc:  podYAML("  resources: {limits: {cpu: '1'}}\n  containers:\n" + containersYAML(1, "{limits: {cpu: '64'}}", "")),
			deny: []string{"resources@spec.containers[0].resources.limits[cpu]"},
		},
		{
			name: "nvidia.com/gpu",
			doc:  podYAML("  containers:\n" + containersYAML(1, "{requests: {nvidia.com/gpu: '1'}, limits: {nvidia.com/gpu: '1'}}", "")),
			deny: []string{"resources@spec.containers[0].resources.requests[nvidia.com/gpu]", "resources@spec.containers[0].resources.limits[nvidia.com/gpu]"},
		},
		{
			name: "a GPU in an init container",
			doc: podYAML("  initContainers:\n" + containersYAML(1, "{limits: {nvidia.com/gpu: '1'}}", "") +
				"  containers:\n" + containersYAML(1, "", "")),
			deny: []string{"resources@spec.initContainers[0].resources.limits[nvidia.com/gpu]"},
		},
		{
			name: "hugepages, two spellings of one page size",
			doc:  podYAML("  containers:\n" + containersYAML(1, "{limits: {hugepages-2Mi: 1Gi, hugepages-2048Ki: 1Gi, memory: 1Gi}}", "")),
			deny: []string{"resources@spec.containers[0].resources.limits[hugepages-2048Ki]", "resources@spec.containers[0].resources.limits[hugepages-2Mi]"},
		},
		{
			name: "hugepages at the pod level",
			doc:  podYAML("  resources: {limits: {hugepages-1Gi: 4Gi, cpu: '1', memory: 1Gi}}\n  containers:\n" + containersYAML(1, "", "")),
			deny: []string{"resources@spec.resources.limits[hugepages-1Gi]"},
		},
		{
			name: "ephemeral-storage above the per-pod ceiling",
			doc:  podYAML("  containers:\n" + containersYAML(1, "{limits: {ephemeral-storage: 1Ti}}", "")),
			deny: []string{"resources@spec.resources.limits[ephemeral-storage]"},
		},
		{
			name: "ephemeral-storage spread over containers",
			doc:  podYAML("  containers:\n" + containersYAML(3, "{limits: {ephemeral-storage: 10Gi}}", "")),
			deny: []string{"resources@spec.resources.limits[ephemeral-storage]"},
		},
		{
			name: "an extended resource of any vendor",
			doc:  podYAML("  containers:\n" + containersYAML(1, "{limits: {example.com/fpga: '2'}}", "")),
			deny: []string{"resources@spec.containers[0].resources.limits[example.com/fpga]"},
		},
		{
			name: "a dynamic resource claim",
			doc: podYAML("  resourceClaims: [{name: gpu, resourceClaimTemplateName: one-gpu}]\n  containers:\n" +
				"  - {name: c, image: " + testImage + ", resources: {claims: [{name: gpu}]}}\n"),
			deny: []string{"resources@spec.resourceClaims[0]"},
		},
		{
			name: "64000m is 64",
			doc:  podYAML("  containers:\n" + containersYAML(1, "{limits: {cpu: 64000m}}", "")),
			deny: []string{"resources@spec.containers[0].resources.limits[cpu]", "resources@spec.resources.limits[cpu]"},
		},
		{
			name: "1e3 is 1000",
			doc:  podYAML("  containers:\n" + containersYAML(1, "{requests: {cpu: 1e3}, limits: {cpu: 1e3}}", "")),
			deny: []string{"resources@spec.containers[0].resources.requests[cpu]", "resources@spec.containers[0].resources.limits[cpu]",
				"resources@spec.resources.requests[cpu]", "resources@spec.resources.limits[cpu]"},
		},
		{
			name: "0.5 is 500m",
			doc:  podYAML("  containers:\n" + containersYAML(1, "{requests: {cpu: '0.5'}, limits: {cpu: '0.5'}}", "")),
		},
		{
			name: "4000m is 4: at max",
			doc:  podYAML("  containers:\n" + containersYAML(1, "{limits: {cpu: 4000m, memory: 8192Mi}}", "")),
		},
		{
			name: "one byte above 8Gi",
			doc:  podYAML("  containers:\n" + containersYAML(1, "{limits: {memory: '8589934593'}}", "")),
			deny: []string{"resources@spec.containers[0].resources.limits[memory]"},
		},
		{
			name: "8.5Gi spelled in decimal units",
			doc:  podYAML("  containers:\n" + containersYAML(1, "{limits: {memory: 9.2G}}", "")),
			deny: []string{"resources@spec.containers[0].resources.limits[memory]"},
		},
		{
			name: "memory in exponent notation",
			doc:  podYAML("  containers:\n" + containersYAML(1, "{limits: {memory: 1e10}}", "")),
			deny: []string{"resources@spec.containers[0].resources.limits[memory]"},
		},
		{
			name: "a Deployment template with 50 x 4 CPU",
			doc: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: agents}\nspec:\n  selector: {matchLabels: {a: b}}\n" +
				"  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n" +
				strings.ReplaceAll(containersYAML(50, cpu4, ""), "  - ", "      - "),
			deny: []string{"resources@spec.template.spec.resources.requests[cpu]", "resources@spec.template.spec.resources.limits[cpu]"},
		},
		{
			// An exempt container skips the per-container checks, not the node's arithmetic.
			name: "an exempt container counts in the pod's total",
			policy: "exempt: {containers: [{name: mesh, image: 'registry.corp.example/agents/**', checks: [resources], serviceAccounts: [infra/mesh-operator]}]}\n" +
				"resources: {max: {cpu: '4'}, maxPerPod: {cpu: '16'}}",
			requester: Requester{Username: "system:serviceaccount:infra:mesh-operator"},
			doc: podYAML("  containers:\n  - {name: mesh, image: " + testImage + ", resources: {limits: {cpu: '64'}}}\n" +
				containersYAML(1, "", "")),
			deny: []string{"resources@spec.resources.limits[cpu]"},
		},
		{
			name: "priorityClassName system-node-critical",
			doc:  podYAML("  priorityClassName: system-node-critical\n  containers:\n" + containersYAML(1, "", "")),
			deny: []string{"priorityClass@spec.priorityClassName"},
		},
		{
			name: "priorityClassName system-cluster-critical in a template",
			doc: "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, namespace: agents}\nspec:\n  template:\n    spec:\n" +
				"      restartPolicy: Never\n      priorityClassName: system-cluster-critical\n      containers:\n" +
				strings.ReplaceAll(containersYAML(1, "", ""), "  - ", "      - "),
			deny: []string{"priorityClass@spec.template.spec.priorityClassName"},
		},
	}
}

func TestResourceBypasses(t *testing.T) {
	for _, tc := range resourceBypassCases() {
		t.Run(tc.name, func(t *testing.T) {
			set := NewSet(testPolicy(t, tc.policy))
			w, _ := workloadFromYAML(t, tc.doc)
			judged := w
			if w.IsPod() {
				judged, _ = set.Mutate(w, testNS, tc.requester)
			}
			res := set.Judge(judged, testNS, tc.requester)
			got := violationKeys(res.Violations)
			if !slices.Equal(got, tc.deny) {
				t.Errorf("violations:\n got %q\nwant %q", got, tc.deny)
			}
			if res.Allowed() != (len(tc.deny) == 0) {
				t.Errorf("allowed = %v", res.Allowed())
			}
			if res.Allowed() {
				h := judged.DeepCopy()
				set.Harden(h, testNS, tc.requester)
				if errs := apiResourceErrors(h.Spec); len(errs) > 0 {
					t.Errorf("admitted and hardened into what the API server refuses: %q", errs)
				}
			}
		})
	}
}

// apiResourceErrors are the API server's rules on requests and limits (k8s.io/kubernetes pkg/apis/core/validation:
// validateResourceRequirements and validatePodResourceConsistency), applied after its defaulting of a container's
// requests from its limits: a request above its limit; a container limit above the pod-level limit; the
// containers' effective request above the pod-level request; a pod-level request above the pod-level limit.
func apiResourceErrors(spec *corev1.PodSpec) []string {
	var errs []string
	s := spec.DeepCopy()
	for _, list := range [2][]corev1.Container{s.InitContainers, s.Containers} {
		for i := range list {
			r := &list[i].Resources
			for rn, lim := range r.Limits {
				if _, ok := r.Requests[rn]; !ok {
					if r.Requests == nil {
						r.Requests = corev1.ResourceList{}
					}
					r.Requests[rn] = lim.DeepCopy()
				}
			}
			for rn, req := range r.Requests {
				if lim, ok := r.Limits[rn]; ok && req.Cmp(lim) > 0 {
					errs = append(errs, fmt.Sprintf("%s: request %s > limit %s of %s", list[i].Name, req.String(), lim.String(), rn))
				}
				if req.Sign() < 0 {
					errs = append(errs, fmt.Sprintf("%s: negative request of %s", list[i].Name, rn))
				}
			}
			if s.Resources != nil {
				for rn, lim := range r.Limits {
					if podLim, ok := s.Resources.Limits[rn]; ok && lim.Cmp(podLim) > 0 {
						errs = append(errs, fmt.Sprintf("%s: limit %s > pod-level limit %s of %s", list[i].Name, lim.String(), podLim.String(), rn))
					}
				}
			}
		}
	}
	if s.Resources != nil {
		pod := &corev1.Pod{Spec: *s}
		pod.Spec.Resources = nil
		aggregate := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{ExcludeOverhead: true})
		for rn, podReq := range s.Resources.Requests {
			if q, ok := aggregate[rn]; ok && q.Cmp(podReq) > 0 {
				errs = append(errs, fmt.Sprintf("containers request %s > pod-level request %s of %s", q.String(), podReq.String(), rn))
			}
			if podLim, ok := s.Resources.Limits[rn]; ok && podReq.Cmp(podLim) > 0 {
				errs = append(errs, fmt.Sprintf("pod-level request %s > pod-level limit %s of %s", podReq.String(), podLim.String(), rn))
			}
		}
	}
	slices.Sort(errs)
	return errs
}

// TestHardenPodLevelResources: hardening beside pod-level resources fills what keeps every container bounded
// and never what the API server would refuse (the two examples first).
func TestHardenPodLevelResources(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		podLevel     string
		containers   []string // resources of each container as sent ("" none)
		want         []string // resources of each container after hardening, as JSON
	}{
		{
			name: "pod limits: no container default", podLevel: "{limits: {cpu: 500m, memory: 256Mi}}",
			containers: []string{"", ""},
			want:       []string{`{}`, `{}`},
		},
		{
			name: "pod cpu request: limits filled, requests share it", podLevel: "{requests: {cpu: 150m}}",
			containers: []string{"", ""},
			want: []string{
				`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"75m","memory":"128Mi"}}`,
				`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"75m","memory":"128Mi"}}`,
			},
		},
		{
			name: "pod cpu request above the defaults' sum", podLevel: "{requests: {cpu: '2'}}",
			containers: []string{"", ""},
			want: []string{
				`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"100m","memory":"128Mi"}}`,
				`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"100m","memory":"128Mi"}}`,
			},
		},
		{
			// An explicit request, and a limit the API server turns into a request, come off the budget first.
			name: "explicit requests use the budget", podLevel: "{requests: {cpu: 300m, memory: 300Mi}}",
			containers: []string{"{requests: {cpu: 200m}}", "{limits: {memory: 100Mi}}", ""},
			want: []string{
				`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"200m","memory":"100Mi"}}`,
				`{"limits":{"cpu":"1","memory":"100Mi"},"requests":{"cpu":"50m","memory":"100Mi"}}`,
				`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"50m","memory":"100Mi"}}`,
			},
		},
		{
			name: "a budget already spent fills zero", podLevel: "{requests: {cpu: 100m}}",
			containers: []string{"{requests: {cpu: 100m}}", ""},
			want: []string{
				`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"100m","memory":"128Mi"}}`,
				`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"0","memory":"128Mi"}}`,
			},
		},
		{
			name: "pod memory request split to the byte", podLevel: "{requests: {memory: 100Mi}}",
			containers: []string{"", "", ""},
			want: []string{
				`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"100m","memory":"34952533"}}`,
				`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"100m","memory":"34952533"}}`,
				`{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"100m","memory":"34952533"}}`,
			},
		},
		{
			name: "pod cpu limit, memory from the defaults", podLevel: "{limits: {cpu: '2'}}",
			containers: []string{""},
			want:       []string{`{"limits":{"memory":"512Mi"},"requests":{"memory":"128Mi"}}`},
		},
		{
			// Left unset, each request would be defaulted from its filled limit (1 CPU), twice the pod's 1.
			name: "default limits without default requests", policy: "resources: {defaults: {limits: {cpu: '1'}}}",
			podLevel: "{requests: {cpu: '1'}}", containers: []string{"", "{limits: {cpu: 200m}}"},
			want: []string{
				`{"limits":{"cpu":"1"},"requests":{"cpu":"500m"}}`,
				`{"limits":{"cpu":"200m"},"requests":{"cpu":"200m"}}`,
			},
		},
		{
			name: "default limits without default requests, no pod-level request", policy: "resources: {defaults: {limits: {cpu: '1'}}}",
			podLevel: "{limits: {memory: 1Gi}}", containers: []string{""},
			want: []string{`{"limits":{"cpu":"1"}}`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := NewSet(testPolicy(t, tc.policy))
			doc := podYAML("  resources: " + tc.podLevel + "\n  containers:\n")
			for i, r := range tc.containers {
				doc += fmt.Sprintf("  - {name: c%d, image: %s", i, testImage)
				if r != "" {
					doc += ", resources: " + r
				}
				doc += "}\n"
			}
			w, _ := workloadFromYAML(t, doc)
			if errs := apiResourceErrors(w.Spec); len(errs) > 0 {
				t.Fatalf("the pod as sent is invalid: %q", errs)
			}
			h := hardenTwice(t, set, w)
			for i, c := range h.Spec.Containers {
				if got := mustJSON(t, c.Resources); got != tc.want[i] {
					t.Errorf("container %d: %s\n                 want %s", i, got, tc.want[i])
				}
			}
			if errs := apiResourceErrors(h.Spec); len(errs) > 0 {
				t.Errorf("hardened into what the API server refuses: %q", errs)
			}
			if res := set.evaluate(h, testNS, Requester{}); !res.Allowed() {
				t.Errorf("hardened pod denied: %q", violationKeys(res.Violations))
			}
		})
	}
}

// TestEffectivePodQuantityMatchesKubernetes holds effectivePodQuantity to Kubernetes' own formula
// (k8s.io/component-helpers/resource, what the scheduler and kubelet use) over random pods: init containers,
// sidecars, pod-level values, quantities in every format and above int64.
func TestEffectivePodQuantityMatchesKubernetes(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 2))
	quantities := []string{"0", "1m", "100m", "0.5", "1", "4", "64000m", "1e3", "128Mi", "1Gi", "9.2G", "1e19", "123456789012345678901234567890"}
	names := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage, "nvidia.com/gpu", "hugepages-2Mi"}
	list := func() corev1.ResourceList {
		l := corev1.ResourceList{}
		for _, rn := range names {
			if rng.IntN(3) == 0 {
				l[rn] = resource.MustParse(quantities[rng.IntN(len(quantities))])
			}
		}
		return l
	}
	containers := func(n int) []corev1.Container {
		cs := make([]corev1.Container, n)
		for i := range cs {
			cs[i].Name = fmt.Sprint("c", i)
			cs[i].Resources = corev1.ResourceRequirements{Requests: list(), Limits: list()}
			if rng.IntN(3) == 0 {
				cs[i].RestartPolicy = ptrTo(corev1.ContainerRestartPolicyAlways)
			}
		}
		return cs
	}
	for i := range 3000 {
		pod := &corev1.Pod{Spec: corev1.PodSpec{InitContainers: containers(rng.IntN(4)), Containers: containers(rng.IntN(5))}}
		for j := range pod.Spec.Containers {
			pod.Spec.Containers[j].RestartPolicy = nil
		}
		if rng.IntN(3) == 0 {
			pod.Spec.Resources = &corev1.ResourceRequirements{Requests: list(), Limits: list()}
		}
		before := mustJSON(t, pod)
		opts := resourcehelper.PodResourcesOptions{ExcludeOverhead: true}
		for _, limits := range []bool{false, true} {
			want := resourcehelper.PodRequests(pod, opts)
			if limits {
				want = resourcehelper.PodLimits(pod, opts)
			}
			for _, rn := range names {
				got, _ := effectivePodQuantity(&pod.Spec, rn, limits)
				w := want[rn]
				if got.Cmp(w) != 0 {
					t.Fatalf("pod %d, %s (limits %v): got %s, Kubernetes says %s\n%s", i, rn, limits, got.String(), w.String(), before)
				}
			}
		}
		if after := mustJSON(t, pod); after != before {
			t.Fatalf("pod %d: effectivePodQuantity changed the pod:\n%s\n%s", i, before, after)
		}
	}
}

// TestResourcesFastPathAgrees: the check's fast pass (no report: a lookup per allowed name, and the per-pod
// total skipped when containers within max cannot exceed it) gives the verdict of its full report, over
// random pods and policies.
func TestResourcesFastPathAgrees(t *testing.T) {
	policies := []*Policy{
		Default(),
		testPolicy(t, "resources: {max: {cpu: '2', nvidia.com/gpu: '1'}, maxPerPod: {cpu: '5', nvidia.com/gpu: '2', memory: 3Gi}, allowed: [cpu, memory, nvidia.com/gpu]}"),
		testPolicy(t, "exempt: {containers: [{name: c1, image: 'registry.corp.example/**', checks: [resources], usernames: [operator]}]}\n"+
			"resources: {defaults: {limits: {cpu: '1'}}, max: {cpu: '4', memory: 8Gi}, maxPerPod: {cpu: '8', memory: 8Gi}}"),
		testPolicy(t, "resources: {}"),
	}
	rng := rand.New(rand.NewPCG(3, 11))
	quantities := []string{"0", "100m", "500m", "1", "2", "4", "5", "64", "128Mi", "1Gi", "4Gi", "9Gi", "20Gi"}
	names := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceMemory, corev1.ResourceEphemeralStorage, "nvidia.com/gpu", "hugepages-2Mi"}
	list := func() corev1.ResourceList {
		l := corev1.ResourceList{}
		for range rng.IntN(4) {
			l[names[rng.IntN(len(names))]] = resource.MustParse(quantities[rng.IntN(len(quantities))])
		}
		return l
	}
	containers := func(n int) []corev1.Container {
		cs := make([]corev1.Container, n)
		for i := range cs {
			cs[i] = corev1.Container{Name: fmt.Sprint("c", i), Image: testImage, Resources: corev1.ResourceRequirements{Requests: list(), Limits: list()}}
		}
		return cs
	}
	denied := 0
	for i := range 4000 {
		pod := validPod()
		pod.Spec.InitContainers = containers(rng.IntN(3))
		for j := range pod.Spec.InitContainers {
			if rng.IntN(2) == 0 {
				pod.Spec.InitContainers[j].RestartPolicy = ptrTo(corev1.ContainerRestartPolicyAlways)
			}
		}
		pod.Spec.Containers = containers(1 + rng.IntN(6))
		if rng.IntN(4) == 0 {
			pod.Spec.Resources = &corev1.ResourceRequirements{Requests: list(), Limits: list()}
		}
		w, err := NewWorkload(pod)
		if err != nil {
			t.Fatal(err)
		}
		for pi, p := range policies {
			view := newPodView(p, w, Requester{Username: "operator"}, nil).judgedBy("resources")
			fast := judgeResources(p, view, nil)
			r := &report{policy: p}
			full := judgeResources(p, view, r)
			if fast != full || full != (len(r.out) == 0) {
				t.Fatalf("pod %d, policy %d: fast %v, full %v with %d violations %q\n%s", i, pi, fast, full, len(r.out), violationKeys(r.out), mustJSON(t, pod.Spec))
			}
			if !fast {
				denied++
			}
		}
	}
	if denied == 0 || denied == 4000*len(policies) {
		t.Fatalf("%d of %d verdicts are denials: the generator tests one side only", denied, 4000*len(policies))
	}
}
