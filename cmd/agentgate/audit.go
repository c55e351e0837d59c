package main

// agentgate audit: flags and wiring. Listing the live cluster is package cluster's job, judging package
// policy's (through the webhooks' decision path, as agentgate check does), reporting internal/report's.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"agentgate.io/agentgate/cluster"
	"agentgate.io/agentgate/internal/manifest"
	"agentgate.io/agentgate/internal/report"
	"agentgate.io/agentgate/policy"
)

const auditUsage = `Usage: agentgate audit [flags]

Judge what already runs: every pod (not finished) and pod-making workload (Deployment, ReplicaSet, StatefulSet,
DaemonSet, Job, CronJob, ReplicationController, agent-sandbox's Sandbox and SandboxTemplate where served, and the
kinds of --pod-template-kind), and every NetworkPolicy, in the namespaces the policies select, through the same
decision path as the admission webhook and agentgate check. Read-only: paginated LISTs, nothing is written.

Flags:
  --kubeconfig FILE        cluster to audit (default: $KUBECONFIG, then in-cluster)
  --policy FILE            judge by these policies (AgentPolicy documents or ConfigMaps holding one) instead of
                           the cluster's policy ConfigMaps: a candidate policy judged against the live cluster.
                           Repeatable.
  --policy-namespace NS    where the cluster's policy ConfigMaps are (default agentgate-system)
  --namespace NS           audit this namespace only (it is judged even if no policy selects it)
  --pod-template-kind GROUP/VERSION/KIND=FIELD.PATH
                           also list and judge this kind by its pod template, as serve does (repeatable)
  -o, --output FORMAT      text (default), json (the objects of agentgate check -o json) or sarif

Each namespace is reported as a source named "namespace/NS"; its objects are its documents.
Exit status: 0 everything admitted; 1 something would be denied; 2 the cluster, a permission or a policy is
unusable (the message says which).
`

type auditOptions struct {
	kubeconfig, policyNamespace, namespace, output string
	policies                                       []string
	podTemplateKinds                               podTemplateKindFlag
}

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := auditOptions{}
	fs := flag.NewFlagSet("agentgate audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage) }
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "")
	fs.Func("policy", "", func(s string) error { o.policies = append(o.policies, s); return nil })
	fs.StringVar(&o.policyNamespace, "policy-namespace", "agentgate-system", "")
	fs.StringVar(&o.namespace, "namespace", "", "")
	fs.StringVar(&o.output, "o", "text", "")
	fs.StringVar(&o.output, "output", "text", "")
	fs.Var(&o.podTemplateKinds, "pod-template-kind", "")
	fail, code, ok := parseCommandLine(fs, args, stderr, report.ExitUnusable)
	if !ok {
		return code
	}
	switch o.output {
	case "text", "json", "sarif":
	default:
		return fail("-o %q: want text, json or sarif", o.output)
	}
	kinds, err := o.podTemplateKinds.table()
	if err != nil {
		return fail("--pod-template-kind: %v", err)
	}
	cfg, err := clusterConfig(o.kubeconfig, "agentgate-audit")
	if err != nil {
		return fail("%v", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fail("%v", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fail("%v", err)
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return fail("%v", err)
	}
	templates, err := cluster.NewTemplateObjects(dyn, client.Discovery(), kinds)
	if err != nil {
		return fail("%v", err)
	}
	var set *policy.Set
	if len(o.policies) > 0 {
		policies, errs := manifest.ReadPolicies(o.policies)
		for _, err := range errs {
			fmt.Fprintf(stderr, "agentgate audit: %v\n", err)
		}
		if len(errs) > 0 {
			return report.ExitUnusable
		}
		set = policy.NewSet(policies...)
	} else {
		policies, errs := cluster.ReadPolicies(ctx, client, o.policyNamespace)
		for _, err := range errs {
			fmt.Fprintf(stderr, "agentgate audit: %v\n", err)
		}
		if len(errs) > 0 {
			return report.ExitUnusable
		}
		if len(policies) == 0 {
			return fail("no policy ConfigMap in namespace %s (label %s): nothing to judge by; use --policy", o.policyNamespace, policy.ConfigMapSelector)
		}
		set = policy.NewSet(policies...)
	}

	namespaces, err := cluster.AgentNamespaces(ctx, client, set)
	if err != nil {
		return fail("%v", err)
	}
	if o.namespace != "" {
		ns, err := client.CoreV1().Namespaces().Get(ctx, o.namespace, metav1.GetOptions{})
		if err != nil {
			return fail("namespace %s: %v", o.namespace, err)
		}
		namespaces = []policy.Namespace{{Name: ns.Name, Labels: ns.Labels}}
	}
	r := &report.Run{Set: set, Version: version, Namespaces: map[string]map[string]string{}, PodTemplateKinds: kinds,
		TokenSecrets: map[string][]string{}}
	tokensForbidden := false
	progress := newProgress(stderr)
	for i, ns := range namespaces {
		r.Namespaces[ns.Name] = ns.Labels
		// Which Secrets are service-account tokens (names only: metadata, no data). Without list on secrets the
		// references are not judged, and the run says so once.
		switch names, err := cluster.TokenSecretNames(ctx, mc, ns.Name); {
		case err == nil:
			r.TokenSecrets[ns.Name] = names
		case apierrors.IsForbidden(err):
			if !tokensForbidden {
				fmt.Fprintf(stderr, "agentgate audit: cannot list Secrets' metadata (%v): references to service-account token Secrets are not judged\n", err)
				tokensForbidden = true
			}
		default:
			progress.done()
			return fail("%v", err)
		}
		var docs []byte
		n := 0
		collect := func(_ string, obj []byte) error {
			docs = append(append(docs, obj...), '\n')
			n++
			return nil
		}
		err := cluster.EachWorkload(ctx, client, ns.Name, collect)
		if err == nil {
			err = templates.Each(ctx, ns.Name, collect)
		}
		// The token Secrets themselves, judged as their CREATE would be now (their type and name: no data).
		for _, name := range r.TokenSecrets[ns.Name] {
			if err != nil {
				break
			}
			var doc []byte
			if doc, err = json.Marshal(tokenSecretHeader(ns.Name, name)); err == nil {
				err = collect("Secret", doc)
			}
		}
		if err != nil {
			progress.done()
			return fail("%v", err)
		}
		if n > 0 {
			r.Judge(&manifest.Source{Name: "namespace/" + ns.Name, Data: docs})
		}
		progress.update(fmt.Sprintf("audited %d of %d namespaces (%s: %d objects)", i+1, len(namespaces), ns.Name, n))
	}
	progress.done()
	switch o.output {
	case "json":
		r.WriteJSON(stdout, stderr)
	case "sarif":
		r.WriteSARIF(stdout, stderr)
	default:
		r.WriteText(stdout, stderr)
	}
	return r.Tally().ExitCode()
}

// tokenSecretHeader is a service-account token Secret as far as agentgate judges one: no data.
func tokenSecretHeader(namespace, name string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Type:       corev1.SecretTypeServiceAccountToken,
	}
}

// progress is one line rewritten in place on a terminal, and nothing elsewhere (a CI log gets no noise).
type progress struct {
	w        io.Writer
	terminal bool
	shown    bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) update(line string) {
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.shown = true
	}
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
