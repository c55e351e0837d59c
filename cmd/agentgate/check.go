package main

// agentgate check: flags and wiring. Reading manifests is package internal/manifest's job, judging them
// package policy's (through exactly the webhooks' decision path, policy.Set.Review), and reporting them
// package internal/report's.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"agentgate.io/agentgate/internal/manifest"
	"agentgate.io/agentgate/internal/report"
	"agentgate.io/agentgate/policy"
)

const checkUsage = `Usage: agentgate check [flags] PATH...

Judge Kubernetes manifests offline, through the same decision path as the admission webhook: Pods as the
mutating webhook would patch them and the validating webhook would then judge them, controllers (Deployment,
ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ReplicationController, agent-sandbox's Sandbox and
SandboxTemplate, declared kinds) by their pod template as it will be after hardening.

PATH is a file, a folder (searched recursively for *.yaml, *.yml and *.json; folders whose name starts with "."
are skipped) or - for standard input. A file holds YAML documents separated by ---, JSON objects, or kind: List
objects. Other kinds are reported as skipped, not judged. A document without apiVersion or kind is an error.

Flags:
  --policy FILE               policy to apply: an AgentPolicy document, or a ConfigMap holding one under the
                              key policy.yaml. Repeat for several; a workload must satisfy every policy that
                              selects it. Default: the policy embedded in agentgate (the one "make run" serves).
  -o, --output FORMAT         text (default), json (an array, one object per document) or sarif (SARIF 2.1.0).
  --fix                       print the manifests hardened, as YAML documents separated by ---, instead of the
                              report (which then goes to standard error). Pods come out as the mutating webhook
                              would patch them; controllers' pod templates are hardened the same way, although
                              the webhook itself never mutates controllers: committing the output is how to fix
                              them at the source. Workloads still denied get every field hardening can fill;
                              their remaining violations say what to change by hand. Other documents are
                              printed unchanged.
  --pod-template-kind GROUP/VERSION/KIND=FIELD.PATH
                              judge this kind by the pod template (metadata and spec) at FIELD.PATH, like a
                              Deployment's, as "agentgate serve --pod-template-kind" does (repeatable).
                              agent-sandbox's Sandbox and SandboxTemplate (agents.x-k8s.io,
                              extensions.agents.x-k8s.io, v1alpha1 and v1beta1) are always judged.
  --as USER                   judge as if USER sent the workloads to the API server (for example
                              system:serviceaccount:NS:NAME), so that the exemptions and token allowances a
                              policy anchors to requesting users apply. Without it the requester is unknown
                              and none of them applies (the strict side).
  --namespace-labels K=V,...  labels of the workloads' namespaces, for policies' namespaceSelector (plus
                              kubernetes.io/metadata.name, which the API server sets on every namespace);
                              "" means no labels. Without it the labels are unknown and every
                              namespaceSelector matches (the strict side). A workload's namespace is its
                              metadata.namespace, or "default".

Output (text): one line per violation, "FILE: Kind/name: field.path: message" (FILE#N for the Nth document of a
file holding several); warn-mode violations start with "warning:", audit-mode ones with "audit:", exemptions
with "exempt:"; then a summary line. Notes (skipped documents) and errors go to standard error.

Exit status: 0 every workload admitted; 1 at least one workload denied; 2 unusable input or policy (each error
names the file, line, document and field; the other files are still checked and reported).
`

type checkOptions struct {
	policies         []string
	podTemplateKinds podTemplateKindFlag
	output           string
	fix              bool
	// nsLabels is nil when the namespace's labels are unknown (no --namespace-labels).
	nsLabels map[string]string
	// as is the requesting user (--as); empty: unknown.
	as    string
	paths []string
}

func runCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, code, ok := parseCheckArgs(args, stdout, stderr)
	if !ok {
		return code
	}
	set, ok := loadPolicies(opts.policies, stderr)
	if !ok {
		return report.ExitUnusable
	}
	kinds, err := opts.podTemplateKinds.table()
	if err != nil {
		fmt.Fprintf(stderr, "agentgate check: --pod-template-kind: %v\n", err)
		return report.ExitUnusable
	}
	r := &report.Run{Set: set, NamespaceLabels: opts.nsLabels, Requester: policy.Requester{Username: opts.as}, Fix: opts.fix, Version: version, PodTemplateKinds: kinds}
	for _, src := range manifest.Read(opts.paths, stdin) {
		r.Judge(src)
	}
	switch {
	case opts.fix:
		r.WriteFixed(stdout, stderr)
		r.WriteText(stderr, stderr)
	case opts.output == "json":
		r.WriteJSON(stdout, stderr)
	case opts.output == "sarif":
		r.WriteSARIF(stdout, stderr)
	default:
		r.WriteText(stdout, stderr)
	}
	return r.Tally().ExitCode()
}

// parseCheckArgs accepts flags before, between and after paths ("--" ends the flags).
func parseCheckArgs(args []string, stdout, stderr io.Writer) (*checkOptions, int, bool) {
	opts := &checkOptions{}
	fs := flag.NewFlagSet("agentgate check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("policy", "", func(s string) error {
		if s == "" || s == "-" {
			return errors.New("--policy needs a file name (standard input is for manifests)")
		}
		opts.policies = append(opts.policies, s)
		return nil
	})
	fs.StringVar(&opts.output, "o", "text", "")
	fs.StringVar(&opts.output, "output", "text", "")
	fs.BoolVar(&opts.fix, "fix", false, "")
	fs.Var(&opts.podTemplateKinds, "pod-template-kind", "")
	fs.Func("as", "", func(s string) error {
		if strings.TrimSpace(s) == "" {
			return errors.New("--as needs a username (leave it out for an unknown requester)")
		}
		opts.as = s
		return nil
	})
	fs.Func("namespace-labels", "", func(s string) error {
		m, err := parseLabels(s)
		if err != nil {
			return err
		}
		if opts.nsLabels == nil {
			opts.nsLabels = map[string]string{}
		}
		maps.Copy(opts.nsLabels, m)
		return nil
	})
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, checkUsage)
				return nil, report.ExitAdmitted, false
			}
			fmt.Fprintf(stderr, "agentgate check: %v\nRun \"agentgate check -h\" for usage.\n", err)
			return nil, report.ExitUnusable, false
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		if consumed := len(rest) - len(left); consumed > 0 && rest[consumed-1] == "--" {
			opts.paths = append(opts.paths, left...)
			break
		}
		opts.paths = append(opts.paths, left[0])
		rest = left[1:]
	}
	switch opts.output {
	case "text", "json", "sarif":
	default:
		fmt.Fprintf(stderr, "agentgate check: -o %q: the output format is text, json or sarif\n", opts.output)
		return nil, report.ExitUnusable, false
	}
	if opts.fix && opts.output != "text" {
		fmt.Fprintf(stderr, "agentgate check: --fix prints manifests; it cannot be combined with -o %s\n", opts.output)
		return nil, report.ExitUnusable, false
	}
	if len(opts.paths) == 0 {
		fmt.Fprintf(stderr, "agentgate check: no PATH given (a file, a folder, or - for standard input)\nRun \"agentgate check -h\" for usage.\n")
		return nil, report.ExitUnusable, false
	}
	if n := slices.Index(opts.paths, "-"); n >= 0 && slices.Index(opts.paths[n+1:], "-") >= 0 {
		fmt.Fprintf(stderr, "agentgate check: - (standard input) given twice\n")
		return nil, report.ExitUnusable, false
	}
	return opts, 0, true
}

// parseLabels reads "k=v,k2=v2" (an empty string: a namespace with no labels).
func parseLabels(s string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			return nil, fmt.Errorf("--namespace-labels: %q is not key=value", kv)
		}
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("--namespace-labels: label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("--namespace-labels: label value %q: %s", v, strings.Join(errs, "; "))
		}
		m[k] = v
	}
	return m, nil
}

// loadPolicies parses every --policy file (the embedded default when there is none). Every problem of
// every file is printed before giving up.
func loadPolicies(files []string, stderr io.Writer) (*policy.Set, bool) {
	if len(files) == 0 {
		return policy.NewSet(policy.Default()), true
	}
	policies, errs := manifest.ReadPolicies(files)
	for _, err := range errs {
		fmt.Fprintf(stderr, "agentgate check: %v\n", err)
	}
	if len(errs) > 0 {
		return nil, false
	}
	return policy.NewSet(policies...), true
}
