package policy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func execPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "agents", Labels: map[string]string{"app": "agent"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "runner", Image: "registry.corp.example/agents/runner:1",
				Env: []corev1.EnvVar{{Name: "ROOT", Value: "/"}}}},
			InitContainers:      []corev1.Container{{Name: "setup", Image: "registry.corp.example/agents/setup:1"}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox:1"}}},
		},
	}
}

var agentsNS = Namespace{Name: "agents", Labels: map[string]string{"agentgate.io/agents": "true"}}

func execPolicy(t *testing.T, e Exec, commands *Commands) *Set {
	t.Helper()
	return NewSet(policyFromDefault(t, func(ap *AgentPolicy) {
		ap.Spec.Exec = e
		if commands != nil {
			ap.Spec.Commands = *commands
		}
	}))
}

// TestJudgeExec: every way into a running agent pod, and every spelling of a blocked command that the
// commands check itself refuses, with the exact rule that refuses it.
func TestJudgeExec(t *testing.T) {
	audit := Exec{Mode: ExecAudit}
	deny := Exec{Mode: ExecDeny, AllowGroups: []string{"sre"}}
	noTTY := Exec{Mode: ExecAudit, Interactive: InteractiveDeny, AllowGroups: []string{"sre"}}
	allow := Exec{Mode: ExecAllow}
	allowList := &Commands{Blocked: []string{"rm -rf /"}, Allowed: []string{"psql", "sh", "python"}}
	dev := []string{"system:authenticated", "dev"}
	sre := []string{"system:authenticated", "sre"}
	cases := []struct {
		name     string
		exec     Exec
		commands *Commands
		pod      *corev1.Pod
		req      ExecRequest
		want     []string // "reason rule", in order; none: allowed
	}{
		{"audit: harmless command", audit, nil, execPod(), ExecRequest{Subresource: "exec", Container: "runner", Command: []string{"ls", "/"}, Groups: dev}, nil},
		{"audit: blocked command", audit, nil, execPod(), ExecRequest{Subresource: "exec", Container: "runner", Command: []string{"rm", "-rf", "/"}, Groups: dev}, []string{"command spec.commands.blocked[0]"}},
		{"audit: blocked, other spelling", audit, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"/bin/rm", "--recursive", "-f", "/tmp/.."}, Groups: dev}, []string{"command spec.commands.blocked[0]"}},
		{"audit: blocked inside sh -c", audit, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"sh", "-c", "cd /tmp && rm -rf /"}, Groups: dev}, []string{"command spec.commands.blocked[0]"}},
		{"audit: blocked through a wrapper", audit, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"nice", "-n", "5", "env", "X=1", "reboot"}, Groups: dev}, []string{"command spec.commands.blocked[5]"}},
		{"audit: blocked with the container's env", audit, nil, execPod(), ExecRequest{Subresource: "exec", Container: "runner", Command: []string{"sh", "-c", "rm -rf $ROOT"}, Groups: dev}, []string{"command spec.commands.blocked[0]"}},
		{"audit: glob entry", audit, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"mkfs.ext4", "/dev/sda"}, Groups: dev}, []string{"command spec.commands.blocked[15]"}},
		{"audit: unknown executable at run time", audit, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"sh", "-c", "$(echo rm) -rf /"}, Groups: dev}, []string{"command spec.commands"}},
		{"audit: blocked even for allowGroups", Exec{Mode: ExecAudit, AllowGroups: []string{"sre"}}, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"reboot"}, Groups: sre}, []string{"command spec.commands.blocked[5]"}},
		{"audit: interactive shell admitted", audit, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"sh"}, TTY: true, Stdin: true, Groups: dev}, nil},
		{"audit: kubectl cp (tar)", audit, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"tar", "cf", "-", "/data"}, Groups: dev}, nil},
		{"audit: attach", audit, nil, execPod(), ExecRequest{Subresource: "attach", Container: "runner", Stdin: true, TTY: true, Groups: dev}, nil},
		{"audit: port-forward", audit, nil, execPod(), ExecRequest{Subresource: "portforward", Ports: []int32{8080}, Groups: dev}, nil},
		{"allow: blocked command not judged", allow, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"rm", "-rf", "/"}, Groups: dev}, nil},
		{"deny: non-member exec", deny, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"ls"}, User: "alice", Groups: dev}, []string{"mode spec.exec.mode"}},
		{"deny: non-member attach", deny, nil, execPod(), ExecRequest{Subresource: "attach", User: "alice", Groups: dev}, []string{"mode spec.exec.mode"}},
		{"deny: non-member port-forward", deny, nil, execPod(), ExecRequest{Subresource: "portforward", Ports: []int32{80}, User: "alice", Groups: dev}, []string{"mode spec.exec.mode"}},
		{"deny: a user named like the group is not a member", deny, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"ls"}, User: "sre", Groups: dev}, []string{"mode spec.exec.mode"}},
		{"deny: group case differs", deny, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"ls"}, User: "bob", Groups: []string{"SRE"}}, []string{"mode spec.exec.mode"}},
		{"deny: member exec", deny, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"ls"}, User: "bob", Groups: sre}, nil},
		{"deny: member's blocked command", deny, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"halt"}, User: "bob", Groups: sre}, []string{"command spec.commands.blocked[6]"}},
		{"deny: non-member blocked command, both reasons", deny, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"halt"}, User: "alice", Groups: dev}, []string{"mode spec.exec.mode", "command spec.commands.blocked[6]"}},
		{"interactive deny: tty", noTTY, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"sh"}, TTY: true, Groups: dev}, []string{"interactive spec.exec.interactive"}},
		{"interactive deny: stdin only", noTTY, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"sh"}, Stdin: true, Groups: dev}, []string{"interactive spec.exec.interactive"}},
		{"interactive deny: attach with stdin", noTTY, nil, execPod(), ExecRequest{Subresource: "attach", Stdin: true, Groups: dev}, []string{"interactive spec.exec.interactive"}},
		{"interactive deny: attach read-only", noTTY, nil, execPod(), ExecRequest{Subresource: "attach", Groups: dev}, nil},
		{"interactive deny: non-interactive exec", noTTY, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"ls"}, Groups: dev}, nil},
		{"interactive deny: member", noTTY, nil, execPod(), ExecRequest{Subresource: "exec", Command: []string{"sh"}, TTY: true, Stdin: true, Groups: sre}, nil},
		{"allowed list: listed", audit, allowList, execPod(), ExecRequest{Subresource: "exec", Command: []string{"psql", "-c", "select 1"}, Groups: dev}, nil},
		{"allowed list: not listed", audit, allowList, execPod(), ExecRequest{Subresource: "exec", Command: []string{"curl", "http://x"}, Groups: dev}, []string{"command spec.commands.allowed"}},
		{"allowed list: unlisted inside a listed shell", audit, allowList, execPod(), ExecRequest{Subresource: "exec", Command: []string{"sh", "-c", "psql; curl x"}, Groups: dev}, []string{"command spec.commands.allowed"}},
		{"ephemeral container judged", audit, nil, execPod(), ExecRequest{Subresource: "exec", Container: "debug", Command: []string{"poweroff"}, Groups: dev}, []string{"command spec.commands.blocked[7]"}},
		{"init container judged", audit, nil, execPod(), ExecRequest{Subresource: "exec", Container: "setup", Command: []string{"shutdown"}, Groups: dev}, []string{"command spec.commands.blocked[4]"}},
		{"unknown container still judged", audit, nil, execPod(), ExecRequest{Subresource: "exec", Container: "nope", Command: []string{"iptables", "-F"}, Groups: dev}, []string{"command spec.commands.blocked[16]"}},
		{"pod unknown: judged strictly", deny, nil, nil, ExecRequest{Subresource: "exec", Command: []string{"ls"}, User: "alice", Groups: dev}, []string{"mode spec.exec.mode"}},
		{"pod unknown: blocked command", audit, nil, nil, ExecRequest{Subresource: "exec", Command: []string{"reboot"}, Groups: dev}, []string{"command spec.commands.blocked[5]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := execPolicy(t, c.exec, c.commands)
			res := set.JudgeExec(c.pod, agentsNS, c.req)
			var got []string
			for _, d := range res.Denials {
				got = append(got, d.Reason+" "+d.Rule)
				if d.Policy != "agents" || d.Message == "" {
					t.Errorf("denial %+v: policy or message missing", d)
				}
			}
			if strings.Join(got, "; ") != strings.Join(c.want, "; ") {
				t.Errorf("denials %q, want %q", got, c.want)
			}
			if res.Allowed() != (len(c.want) == 0) {
				t.Errorf("Allowed() = %v", res.Allowed())
			}
			if len(res.Matched) != 1 {
				t.Errorf("matched %v, want the agents policy", res.Matched)
			}
		})
	}
}

func TestJudgeExecMessages(t *testing.T) {
	set := execPolicy(t, Exec{Mode: ExecDeny, AllowGroups: []string{"sre"}}, nil)
	res := set.JudgeExec(execPod(), agentsNS, ExecRequest{Subresource: "exec", Command: []string{"sh", "-c", "rm -rf /*"}, User: "alice", Groups: []string{"dev"}})
	want := []string{
		`exec.mode is deny: only members of allowGroups ["sre"] may exec into agent pods, and user "alice" is in none of them`,
		`blocked command "rm -rf /*" in the exec's command: "rm -rf /*"`,
	}
	if len(res.Denials) != len(want) {
		t.Fatalf("denials %+v", res.Denials)
	}
	for i, w := range want {
		if res.Denials[i].Message != w {
			t.Errorf("message %d = %q, want %q", i, res.Denials[i].Message, w)
		}
	}
	if !res.Blocked() || res.Container != "runner" {
		t.Errorf("Blocked %v, container %q", res.Blocked(), res.Container)
	}
}

// TestJudgeExecSelection: the policy that does not select the pod does not judge it; an exempt namespace leaves
// it out (and says so); exemptions claimed by requesters (who creates pods) do not cover the user who opens a
// session; an unknown pod is judged by namespace alone.
func TestJudgeExecSelection(t *testing.T) {
	p := policyFromDefault(t, func(ap *AgentPolicy) {
		ap.Spec.Exec = Exec{Mode: ExecDeny}
		ap.Spec.Match.PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}}
		ap.Spec.Exempt.ServiceAccounts = []string{"agents/operator"}
		ap.Spec.Exempt.Usernames = []string{"alice"}
		ap.Spec.Exempt.Containers = []ContainerExempt{{Name: "runner", Image: "registry.corp.example/agents/*", Checks: []string{"commands"}, Usernames: []string{"alice"}}}
	})
	set := NewSet(p)
	req := ExecRequest{Subresource: "exec", Command: []string{"ls"}, User: "alice"}
	other := execPod()
	other.Labels = map[string]string{"app": "web"}
	if res := set.JudgeExec(other, agentsNS, req); len(res.Matched) != 0 || !res.Allowed() {
		t.Errorf("a pod the podSelector leaves out: %+v", res)
	}
	if res := set.JudgeExec(execPod(), Namespace{Name: "plain", Labels: map[string]string{}}, req); len(res.Matched) != 0 {
		t.Errorf("a namespace the selector leaves out: %+v", res)
	}
	ops := execPod()
	ops.Spec.ServiceAccountName = "operator"
	if res := set.JudgeExec(ops, agentsNS, req); len(res.Matched) != 1 || res.Allowed() || len(res.Exemptions) != 0 {
		t.Errorf("a username exempt as a pod creator opens a session: %+v", res)
	}
	blocked := ExecRequest{Subresource: "exec", Container: "runner", Command: []string{"reboot"}, User: "alice", Groups: []string{"sre"}}
	if res := set.JudgeExec(execPod(), agentsNS, blocked); !res.Blocked() {
		t.Errorf("a container exemption from commands claimed by the session's user: %+v", res)
	}
	if res := set.JudgeExec(nil, agentsNS, req); res.Allowed() {
		t.Errorf("an unknown pod in an agent namespace is admitted: %+v", res)
	}
	if res := set.JudgeExec(nil, Namespace{Name: "kube-system", Labels: nil}, req); len(res.Exemptions) != 1 || len(res.Matched) != 0 {
		t.Errorf("an unknown pod in an exempt namespace: %+v", res)
	}
}

func TestParseExec(t *testing.T) {
	cases := []struct {
		exec string
		want []string
	}{
		{"mode: deny\n    allowGroups: [sre, oncall]\n    interactive: deny", nil},
		{"mode: Deny", []string{`spec.exec.mode: Unsupported value: "Deny": supported values: "deny", "audit", "allow"`}},
		{"mode: enforce\n    interactive: never", []string{
			`spec.exec.mode: Unsupported value: "enforce": supported values: "deny", "audit", "allow"`,
			`spec.exec.interactive: Unsupported value: "never": supported values: "allow", "deny"`}},
		{"allowGroups: ['', ' sre', system:authenticated, ops, ops]", []string{
			`spec.exec.allowGroups[0]: Required value: an empty group name admits nobody`,
			`spec.exec.allowGroups[1]: Invalid value: " sre": a group name without surrounding spaces: the API server's groups never have them, so this one would admit nobody`,
			`spec.exec.allowGroups[2]: Invalid value: "system:authenticated": every user (or every service account) is in this group: with it, mode deny would refuse nobody; use mode audit to say so`,
			`spec.exec.allowGroups[4]: Duplicate value: "ops"`}},
		{"mode: deny\n    allowGroup: [sre]", []string{`spec.exec.allowGroup: Forbidden: unknown field: decoding is strict; check its spelling and place against apiVersion agentgate.io/v1alpha1`}},
		{"allowGroups: sre", []string{"spec.exec.allowGroups"}},
	}
	for _, c := range cases {
		doc := "apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: x}\nspec:\n  exec:\n    " + c.exec + "\n"
		_, errs := Parse([]byte(doc))
		got := errorStrings(errs)
		if len(got) != len(c.want) {
			t.Errorf("%q: errors %q, want %q", c.exec, got, c.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], c.want[i]) {
				t.Errorf("%q: error %d = %q, want %q", c.exec, i, got[i], c.want[i])
			}
		}
	}
	p, errs := Parse([]byte("apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: x}\n"))
	if len(errs) > 0 || p.Spec.Exec.Mode != ExecAudit || p.Spec.Exec.Interactive != InteractiveAllow {
		t.Errorf("defaults: %+v %v", p.Spec.Exec, errs)
	}
	if d := Default().Spec.Exec; d.Mode != ExecAudit || len(d.AllowGroups) != 0 || d.Interactive != InteractiveAllow {
		t.Errorf("default policy exec = %+v", d)
	}
}
