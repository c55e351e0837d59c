package main

// agentgate checklist: flags and wiring. The items and their probes are internal/checklist's.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"agentgate.io/agentgate/internal/checklist"
)

const checklistUsage = `Usage: agentgate checklist [flags]

The pre-production checklist verified on the live cluster, read-only: tls, token, sandbox, resources, commands,
network, audit-logs, alerts, rotation, each pass, fail or unknown with its evidence and, when not pass, what to
do; then the lines no API call can judge (kube-bench, anonymous-auth, dashboard, bastion), always unknown, with
the command that would judge them. A permission the caller lacks makes an item unknown, never pass.

Flags:
  --kubeconfig FILE              cluster to check (default: $KUBECONFIG, then in-cluster)
  --namespace NS                 agentgate's namespace: policy ConfigMaps, Deployment, Secret (default agentgate-system)
  --webhook-configuration NAME   name of agentgate's webhook configurations (default agentgate)
  --deployment NAME              agentgate's Deployment, whose flags are read (default agentgate)
  --tls-secret NAME              Secret holding the serving certificate (default agentgate-tls)
  -o, --output FORMAT            text (default) or json

Exit status: 0 no item fails (unknown items do not fail); 1 an item fails; 2 the checklist cannot run (flags,
no cluster configuration, API server unreachable).
`

func runChecklist(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := checklist.Options{}
	var kubeconfig, output string
	fs := flag.NewFlagSet("agentgate checklist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checklistUsage) }
	fs.StringVar(&kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&o.Namespace, "namespace", "agentgate-system", "")
	fs.StringVar(&o.WebhookConfiguration, "webhook-configuration", "agentgate", "")
	fs.StringVar(&o.Deployment, "deployment", "agentgate", "")
	fs.StringVar(&o.TLSSecret, "tls-secret", "agentgate-tls", "")
	fs.StringVar(&output, "o", "text", "")
	fs.StringVar(&output, "output", "text", "")
	fail, code, ok := parseCommandLine(fs, args, stderr, checklist.ExitCannot)
	if !ok {
		return code
	}
	if output != "text" && output != "json" {
		return fail("-o %q: want text or json", output)
	}
	cfg, err := clusterConfig(kubeconfig, "agentgate-checklist")
	if err != nil {
		return fail("%v", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fail("%v", err)
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return fail("%v", err)
	}
	// An API server that does not answer at all is "cannot run", not nine unknowns: nothing was checked.
	if _, err := client.Discovery().ServerVersion(); err != nil {
		return fail("API server unreachable: %v", err)
	}
	r := checklist.Run(ctx, client, mc, o)
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fail("%v", err)
		}
	} else {
		r.WriteText(stdout)
	}
	return r.ExitCode()
}
