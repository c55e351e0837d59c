// Package corpus builds the AdmissionReview payloads that the load tool and
// the benchmarks replay. Everything is generated in code from k8s.io/api types
// so the payloads are deterministic, reviewable, and always decode into the
// typed objects the webhook expects.
//
// The objects carry the fields the API server adds by defaulting before
// admission (imagePullPolicy, terminationMessagePath, probe timings, the
// not-ready/unreachable tolerations, ...): the webhook decodes what the API
// server sends, not what a user writes, and those fields are a good part of
// the bytes.
package corpus

import (
	"encoding/json"
	"fmt"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Namespace is where every corpus object lives.
const Namespace = "agents"

// The corpora, by name.
const (
	Small      = "small"      // compliant 2-container agent pod, ~6 KB
	Violating  = "violating"  // Small with privileged, hostNetwork, hostPath and a docker.io image
	Large      = "large"      // compliant 11-container agent pod, ~42 KB
	Deployment = "deployment" // apps/v1 Deployment whose template is Small
)

// Names lists the corpora in a stable order.
func Names() []string { return []string{Small, Violating, Large, Deployment} }

// Object returns the typed object of a corpus: a *corev1.Pod or an
// *appsv1.Deployment. Each call builds a fresh object, so callers may modify it.
func Object(name string) (runtime.Object, error) {
	switch name {
	case Small:
		return smallPod(), nil
	case Violating:
		return violatingPod(), nil
	case Large:
		return largePod(), nil
	case Deployment:
		return deployment(), nil
	}
	return nil, fmt.Errorf("unknown corpus %q (want one of %v)", name, Names())
}

// Corpus returns the JSON of a corpus object as the API server would put it
// in request.object.
func Corpus(name string) ([]byte, error) {
	obj, err := Object(name)
	if err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}

// Review returns an AdmissionReview v1 request (operation CREATE) carrying the
// corpus object, with request.uid set to uid.
func Review(name, uid string) ([]byte, error) {
	raw, err := Corpus(name)
	if err != nil {
		return nil, err
	}
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvr := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	objName := podName
	if name == Deployment {
		gvk = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
		gvr = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
		objName = deploymentName
	}
	opts, err := json.Marshal(metav1.CreateOptions{
		TypeMeta:     metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "CreateOptions"},
		FieldManager: "agent-dispatcher",
	})
	if err != nil {
		return nil, err
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:             types.UID(uid),
			Kind:            gvk,
			Resource:        gvr,
			RequestKind:     &gvk,
			RequestResource: &gvr,
			Name:            objName,
			Namespace:       Namespace,
			Operation:       admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{
				Username: "system:serviceaccount:agents-control:agent-dispatcher",
				UID:      "5d0c6a8e-3f44-4a0e-9a43-2f1f3c0b7e21",
				Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:agents-control", "system:authenticated"},
				Extra: map[string]authenticationv1.ExtraValue{
					"authentication.kubernetes.io/credential-id": {"JTI=0c7b2e61-8a4f-4d55-b1c9-7e3a9f12d6a0"},
				},
			},
			Object:  runtime.RawExtension{Raw: raw},
			DryRun:  ptr(false),
			Options: runtime.RawExtension{Raw: opts},
		},
	}
	return json.Marshal(review)
}

const (
	podName        = "agent-task-runner-5f7c9d"
	deploymentName = "agent-task-runner"
	agentRegistry  = "registry.corp.example/agents/"
)

func ptr[T any](v T) *T { return &v }

func commonLabels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "agent-task-runner",
		"app.kubernetes.io/instance":   "agent-task-runner-eu-west-1",
		"app.kubernetes.io/component":  "agent",
		"app.kubernetes.io/part-of":    "agent-platform",
		"app.kubernetes.io/managed-by": "agent-dispatcher",
		"app.kubernetes.io/version":    "1.8.2",
		"agents.corp.example/pool":     "ci-default",
		"agents.corp.example/tenant":   "payments-team",
		"agents.corp.example/tier":     "standard",
	}
}

func podMeta() metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      podName,
		Namespace: Namespace,
		Labels:    commonLabels(),
		Annotations: map[string]string{
			"agents.corp.example/task-id":             "task-2f6e1b0c-9d7a-4f3e-8c21-5a6b7c8d9e0f",
			"agents.corp.example/requested-by":        "pipeline/payments-service/build-4812",
			"agents.corp.example/control-plane":       "https://control.corp.example/api/v2/agents",
			"agents.corp.example/max-runtime":         "45m",
			"prometheus.io/scrape":                    "true",
			"prometheus.io/port":                      "9102",
			"prometheus.io/path":                      "/metrics",
			"kubectl.kubernetes.io/default-container": "runner",
		},
	}
}

// secretEnv is an environment variable whose value comes from a Secret, as a
// compliant agent does for anything that looks like a credential.
func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key},
	}}
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path},
	}}
}

// agentEnv returns n environment variables; the mix of literals, secret refs
// and field refs is what agent pods in the wild carry.
func agentEnv(prefix string, n int) []corev1.EnvVar {
	env := []corev1.EnvVar{
		fieldEnv("POD_NAME", "metadata.name"),
		fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		fieldEnv("NODE_NAME", "spec.nodeName"),
		secretEnv("CONTROL_PLANE_TOKEN", "agent-credentials", "token"),
		secretEnv("REGISTRY_PASSWORD", "agent-credentials", "registry-password"),
		{Name: "CONTROL_PLANE_URL", Value: "https://control.corp.example/api/v2/agents"},
		{Name: "AGENT_POOL", Value: "ci-default"},
		{Name: "LOG_LEVEL", Value: "info"},
		{Name: "LOG_FORMAT", Value: "json"},
		{Name: "HOME", Value: "/work"},
		{Name: "TMPDIR", Value: "/tmp"},
	}
	for i := len(env); i < n; i++ {
		env = append(env, corev1.EnvVar{
			Name:  prefix + "_SETTING_" + strconv.Itoa(i),
			Value: "value-" + strconv.Itoa(i*7919%100000) + "-for-" + prefix,
		})
	}
	return env[:n]
}

func restrictedSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		Privileged:               ptr(false),
		RunAsNonRoot:             ptr(true),
		RunAsUser:                ptr(int64(10001)),
		RunAsGroup:               ptr(int64(10001)),
		ReadOnlyRootFilesystem:   ptr(true),
		AllowPrivilegeEscalation: ptr(false),
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func httpProbe(path string, port int32, initialDelay int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP,
		}},
		InitialDelaySeconds: initialDelay,
		TimeoutSeconds:      1,
		PeriodSeconds:       10,
		SuccessThreshold:    1,
		FailureThreshold:    3,
	}
}

func resources(cpuReq, memReq, cpuLim, memLim string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(cpuReq),
			corev1.ResourceMemory: resource.MustParse(memReq),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(cpuLim),
			corev1.ResourceMemory: resource.MustParse(memLim),
		},
	}
}

// container builds a compliant agent container; envN tunes its size.
func container(name, image string, port int32, envN int) corev1.Container {
	return corev1.Container{
		Name:    name,
		Image:   agentRegistry + image,
		Command: []string{"/usr/local/bin/" + name},
		Args:    []string{"--config=/etc/agent/config.yaml", "--listen=:" + strconv.Itoa(int(port)), "--work-dir=/work"},
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: port + 1000, Protocol: corev1.ProtocolTCP},
		},
		Env:       agentEnv(envPrefix(name), envN),
		Resources: resources("250m", "256Mi", "1", "512Mi"),
		VolumeMounts: []corev1.VolumeMount{
			{Name: "tmp", MountPath: "/tmp"},
			{Name: "work", MountPath: "/work"},
			{Name: "config", MountPath: "/etc/agent", ReadOnly: true},
		},
		LivenessProbe:            httpProbe("/healthz", port, 5),
		ReadinessProbe:           httpProbe("/readyz", port, 2),
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		SecurityContext:          restrictedSecurityContext(),
	}
}

func envPrefix(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c == '-':
			b[i] = '_'
		}
	}
	return string(b)
}

func podSpec(containers []corev1.Container) corev1.PodSpec {
	return corev1.PodSpec{
		Volumes: []corev1.Volume{
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr(resource.MustParse("256Mi"))}}},
			{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr(resource.MustParse("2Gi"))}}},
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "agent-task-runner-config"},
				DefaultMode:          ptr(int32(0o644)),
			}}},
		},
		Containers:                    containers,
		RestartPolicy:                 corev1.RestartPolicyNever,
		TerminationGracePeriodSeconds: ptr(int64(30)),
		ActiveDeadlineSeconds:         ptr(int64(2700)),
		DNSPolicy:                     corev1.DNSClusterFirst,
		NodeSelector:                  map[string]string{"kubernetes.io/os": "linux", "agents.corp.example/pool": "ci-default"},
		ServiceAccountName:            "agent-task-runner",
		DeprecatedServiceAccount:      "agent-task-runner",
		AutomountServiceAccountToken:  ptr(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsUser:      ptr(int64(10001)),
			RunAsGroup:     ptr(int64(10001)),
			RunAsNonRoot:   ptr(true),
			FSGroup:        ptr(int64(10001)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "corp-registry"}},
		SchedulerName:    corev1.DefaultSchedulerName,
		Tolerations: []corev1.Toleration{
			{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
			{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
			{Key: "agents.corp.example/dedicated", Operator: corev1.TolerationOpEqual, Value: "ci", Effect: corev1.TaintEffectNoSchedule},
		},
		PriorityClassName:  "agents-standard",
		Priority:           ptr(int32(1000)),
		EnableServiceLinks: ptr(false),
		PreemptionPolicy:   ptr(corev1.PreemptLowerPriority),
	}
}

func pod(spec corev1.PodSpec) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: podMeta(),
		Spec:       spec,
	}
}

func smallContainers() []corev1.Container {
	return []corev1.Container{
		container("runner", "task-runner:1.8.2", 8080, 12),
		container("log-forwarder", "log-forwarder:0.4.1", 8081, 11),
	}
}

func smallPod() *corev1.Pod { return pod(podSpec(smallContainers())) }

// violatingPod is smallPod with the escapes the policy exists to stop. It
// stays a pod the API server itself would accept (privileged without
// allowPrivilegeEscalation: false, host ports equal to container ports), so
// it is agentgate that has to deny it.
func violatingPod() *corev1.Pod {
	p := smallPod()
	s := &p.Spec
	s.HostNetwork = true
	s.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	s.Volumes = append(s.Volumes, corev1.Volume{Name: "docker-sock", VolumeSource: corev1.VolumeSource{
		HostPath: &corev1.HostPathVolumeSource{Path: "/var/run/docker.sock", Type: ptr(corev1.HostPathSocket)},
	}})
	for i := range s.Containers {
		for j := range s.Containers[i].Ports {
			s.Containers[i].Ports[j].HostPort = s.Containers[i].Ports[j].ContainerPort
		}
	}
	runner := &s.Containers[0]
	runner.SecurityContext.Privileged = ptr(true)
	runner.SecurityContext.AllowPrivilegeEscalation = nil
	runner.SecurityContext.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN", "NET_ADMIN"}}
	runner.VolumeMounts = append(runner.VolumeMounts, corev1.VolumeMount{Name: "docker-sock", MountPath: "/var/run/docker.sock"})
	s.Containers[1].Image = "docker.io/library/busybox:1.36"
	return p
}

// largePod has 11 containers, as heavily instrumented agent pods do (runner,
// sidecars for logs, metrics, proxying, secrets and tool servers).
func largePod() *corev1.Pod {
	names := []string{
		// No name holds SECRET, TOKEN, PASSWORD or _KEY: the literal settings derive their names from the
		// container's, and the default policy denies literal values of secret-looking variables.
		"runner", "log-forwarder", "metrics-exporter", "egress-proxy", "vault-agent", "tool-git",
		"tool-db-client", "tool-http", "artifact-uploader", "trace-collector", "heartbeat",
	}
	containers := make([]corev1.Container, 0, len(names))
	for i, n := range names {
		containers = append(containers, container(n, n+":2."+strconv.Itoa(i)+".0", int32(8080+i), 34))
	}
	return pod(podSpec(containers))
}

func deployment() *appsv1.Deployment {
	p := smallPod()
	p.Spec.RestartPolicy = corev1.RestartPolicyAlways // the only policy a Deployment allows
	p.Spec.ActiveDeadlineSeconds = nil                // likewise forbidden in a Deployment template
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        deploymentName,
			Namespace:   Namespace,
			Labels:      commonLabels(),
			Annotations: map[string]string{"agents.corp.example/owner": "payments-team"},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				"app.kubernetes.io/name":     "agent-task-runner",
				"app.kubernetes.io/instance": "agent-task-runner-eu-west-1",
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: p.Labels, Annotations: p.Annotations},
				Spec:       p.Spec,
			},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr(intstr.FromString("25%")),
					MaxSurge:       ptr(intstr.FromString("25%")),
				},
			},
			RevisionHistoryLimit:    ptr(int32(10)),
			ProgressDeadlineSeconds: ptr(int32(600)),
		},
	}
}
