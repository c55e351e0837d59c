package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPolicies(t *testing.T) {
	const agents = "apiVersion: agentgate.io/v1alpha1\nkind: AgentPolicy\nmetadata: {name: agents}\nspec: {mode: warn}\n"
	const configMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: tools, namespace: agentgate}
data:
  policy.yaml: |
    apiVersion: agentgate.io/v1alpha1
    kind: AgentPolicy
    metadata: {name: tools}
    spec: {mode: audit}
`
	for _, tc := range []struct {
		name  string
		files []string // contents; "" for a missing file
		want  []string // policy names, then the start of each error (the file named F<index>)
	}{
		{"an AgentPolicy", []string{agents}, []string{"agents"}},
		{"a ConfigMap holding one", []string{configMap}, []string{"tools"}},
		{"several in one file and in several", []string{agents + "---\n" + configMap, `{"apiVersion": "agentgate.io/v1alpha1", "kind": "AgentPolicy", "metadata": {"name": "json"}}`},
			[]string{"agents", "tools", "json"}},
		{"a ConfigMap without policy.yaml", []string{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {other: x}\n"},
			[]string{`policy F0:1: data[policy.yaml]: Required value: a ConfigMap labelled agentgate.io/policy=true holds its AgentPolicy document under data[policy.yaml]`}},
		// Read by the cluster's contract (policy.ParseConfigMap): what the server would not take, the CLI does not either.
		{"a ConfigMap holding it under binaryData", []string{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nbinaryData: {policy.yaml: eDo=}\n"},
			[]string{`policy F0:1: binaryData[policy.yaml]: Invalid value: "(binary)": the policy document must be text under data`}},
		{"a ConfigMap with a misspelt field", []string{strings.Replace(configMap, "\ndata:", "\ndta:", 1)},
			[]string{`policy F0:1: not a valid v1 ConfigMap: unknown field "dta"`}},
		{"field errors, prefixed inside a ConfigMap", []string{strings.Replace(agents, "warn", "block", 1) + "---\n" + strings.Replace(configMap, "audit", "block", 1)},
			[]string{
				`policy F0:1: document 1: spec.mode: Unsupported value: "block": `,
				`policy F0:6: document 2: data[policy.yaml].spec.mode: Unsupported value: "block": `,
			}},
		{"not a policy", []string{"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"}, []string{`policy F0:1: apiVersion: Unsupported value: "v1"`, `policy F0:1: kind: Unsupported value: "Pod"`}},
		{"one name twice", []string{agents, "# again\n" + agents},
			[]string{"agents", `policy F1:2: metadata.name: policy "agents" is already given by F0:1; names must be unique`}},
		{"empty", []string{"# nothing\n---\n"}, []string{"policy F0: empty: no policy document in it"}},
		{"not valid YAML", []string{"---\n# one\n" + agents + "---\na: [\n"}, []string{"agents", "policy F0:8: not valid YAML: did not find expected node content"}},
		{"not valid JSON", []string{`{"a": `}, []string{"policy F0: line 1: not valid JSON: unexpected EOF"}},
		{"missing", []string{""}, []string{"policy F0: open F0: no such file or directory"}},
		// Read as the server reads --policy-file: what follows an end marker is not looked at.
		{"content after an end marker", []string{agents + "...\nspec: {mode: enforce}\n"}, []string{"agents"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var names []string
			for i, data := range tc.files {
				name := filepath.Join(dir, "F"+string(rune('0'+i)))
				if data != "" {
					if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				names = append(names, name)
			}
			policies, errs := ReadPolicies(names)
			var got []string
			for _, p := range policies {
				got = append(got, p.Name)
			}
			for _, err := range errs {
				got = append(got, strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
			}
			ok := len(got) == len(tc.want)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.HasPrefix(got[i], tc.want[i])
			}
			if !ok {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
