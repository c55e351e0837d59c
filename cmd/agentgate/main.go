// Command agentgate is the admission webhook for agent pods (serve) and its offline checker (check).
// Thin by design: flags and wiring only; every decision comes from package policy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const usage = `agentgate: admission webhook that sandboxes agent pods

Usage:
  agentgate serve [flags]           serve /mutate, /validate, /validate-policy over HTTPS
  agentgate check [flags] PATH...   judge manifests offline (files, folders, - for stdin)
  agentgate audit [flags]           judge what already runs on a cluster (read-only)
  agentgate checklist [flags]       the pre-production checklist, verified on a cluster (read-only)
  agentgate version

Run "agentgate COMMAND -h" for a command's flags.
`

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run returns the process exit code, so that tests drive the whole command without a subprocess.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "check":
		return runCheck(args[1:], stdin, stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "checklist":
		return runChecklist(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version)
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "agentgate: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// clusterConfig is the cluster every command talks to: --kubeconfig, else $KUBECONFIG, else in-cluster, with
// the command named in its user agent (the API server's audit log tells agentgate's commands apart).
func clusterConfig(kubeconfig, command string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no cluster configuration (--kubeconfig, $KUBECONFIG, in-cluster): %w", err)
	}
	cfg.UserAgent = command + "/" + version
	return cfg, nil
}

// parseCommandLine parses the flags of a command that takes no arguments (audit, checklist). ok is false when
// it should stop with code: 0 for -h, unusable for a bad flag or a stray argument (said on stderr). fail says a
// reason on stderr, prefixed with the command's name, and gives unusable.
func parseCommandLine(fs *flag.FlagSet, args []string, stderr io.Writer, unusable int) (fail func(format string, a ...any) int, code int, ok bool) {
	fail = func(format string, a ...any) int {
		fmt.Fprintf(stderr, fs.Name()+": "+format+"\n", a...)
		return unusable
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fail, 0, false
		}
		return fail, unusable, false
	}
	if fs.NArg() > 0 {
		return fail, fail("unexpected arguments: %s", strings.Join(fs.Args(), " ")), false
	}
	return fail, 0, true
}
