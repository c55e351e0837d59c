package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	yaml3 "go.yaml.in/yaml/v3"
	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/yaml"
)

// Fixed renders the document with ops (RFC 6902, paths from the document's root) applied, as YAML without a
// leading --- line. A YAML document is edited in place, its key order and comments kept; the result is
// checked against an independent application of the same operations to the document's JSON, and replaced
// by a plain rendering of that JSON if they differ (anchors and aliases, for example, are not edited in
// place). A JSON document comes out as block-style YAML, its keys in order. A YAML document with no
// operation comes out as written.
func (d *Document) Fixed(ops []jsonpatch.Operation) ([]byte, error) {
	if len(ops) == 0 && !d.IsJSON {
		return stripMarker(d.Text), nil
	}
	opsJSON, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	patch, err := jsonpatchapply.DecodePatch(opsJSON)
	if err != nil {
		return nil, err
	}
	want, err := patch.Apply(d.JSON)
	if err != nil {
		return nil, fmt.Errorf("applying the hardening patch: %w", err)
	}
	if d.node != nil {
		// JSON is YAML in flow style; it is printed in block style, its keys kept in order.
		if text, err := editYAML(d.Text, ops, d.IsJSON); err == nil {
			if got, err := yaml.YAMLToJSONStrict(text); err == nil && sameJSON(got, want) {
				return text, nil
			}
		}
	}
	return yaml.JSONToYAML(want)
}

// stripMarker drops a leading "---" line (the writer puts its own between documents).
func stripMarker(text []byte) []byte {
	first, rest, ok := bytes.Cut(text, []byte("\n"))
	if isDocMarker(first) && isBlankOrComment(bytes.TrimSpace(first)[3:]) {
		if !ok {
			return nil
		}
		return rest
	}
	return text
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// editYAML applies add, replace and remove operations to the YAML document's node tree; block turns flow
// style (JSON) into block style.
func editYAML(text []byte, ops []jsonpatch.Operation, block bool) ([]byte, error) {
	doc := parseNode(text)
	if doc == nil {
		return nil, errors.New("cannot parse the document")
	}
	if block {
		blockStyle(doc)
	}
	root := doc.Content[0]
	for _, op := range ops {
		toks := pointerTokens(op.Path)
		if len(toks) == 0 {
			return nil, fmt.Errorf("operation on the whole document")
		}
		parent := root
		for _, t := range toks[:len(toks)-1] {
			if parent.Kind == yaml3.AliasNode || hasMergeKey(parent) {
				return nil, errors.New("anchors and aliases are not edited in place")
			}
			_, v := nodeChild(parent, t)
			if v == nil {
				return nil, fmt.Errorf("%s: no such field", op.Path)
			}
			parent = v
		}
		if parent.Kind == yaml3.AliasNode || hasMergeKey(parent) {
			return nil, errors.New("anchors and aliases are not edited in place")
		}
		last := toks[len(toks)-1]
		var val *yaml3.Node
		if op.Operation == "add" || op.Operation == "replace" {
			val = &yaml3.Node{}
			if err := val.Encode(integral(op.Value)); err != nil {
				return nil, err
			}
		}
		switch parent.Kind {
		case yaml3.MappingNode:
			i := 0
			for ; i+1 < len(parent.Content) && parent.Content[i].Value != last; i += 2 {
			}
			found := i+1 < len(parent.Content)
			switch {
			case op.Operation == "remove" && found:
				parent.Content = slices.Delete(parent.Content, i, i+2)
			case (op.Operation == "add" || op.Operation == "replace") && found:
				parent.Content[i+1] = val
			case op.Operation == "add":
				if len(parent.Content) == 0 {
					parent.Style &^= yaml3.FlowStyle
				}
				parent.Content = append(parent.Content, &yaml3.Node{Kind: yaml3.ScalarNode, Tag: "!!str", Value: last}, val)
			default:
				return nil, fmt.Errorf("%s %s: no such field", op.Operation, op.Path)
			}
		case yaml3.SequenceNode:
			idx := len(parent.Content)
			if last != "-" {
				n, err := strconv.Atoi(last)
				if err != nil || n < 0 || n > len(parent.Content) {
					return nil, fmt.Errorf("%s: bad index", op.Path)
				}
				idx = n
			}
			switch op.Operation {
			case "add":
				if len(parent.Content) == 0 {
					parent.Style &^= yaml3.FlowStyle
				}
				parent.Content = slices.Insert(parent.Content, idx, val)
			case "replace", "remove":
				if idx >= len(parent.Content) {
					return nil, fmt.Errorf("%s: bad index", op.Path)
				}
				if op.Operation == "replace" {
					parent.Content[idx] = val
				} else {
					parent.Content = slices.Delete(parent.Content, idx, idx+1)
				}
			default:
				return nil, fmt.Errorf("unsupported operation %q", op.Operation)
			}
		default:
			return nil, fmt.Errorf("%s: parent is not a mapping or a sequence", op.Path)
		}
	}
	var b bytes.Buffer
	enc := yaml3.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func blockStyle(n *yaml3.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

func hasMergeKey(n *yaml3.Node) bool {
	if n.Kind != yaml3.MappingNode {
		return false
	}
	for i := 0; i < len(n.Content); i += 2 {
		if n.Content[i].Tag == "!!merge" || n.Content[i].Value == "<<" {
			return true
		}
	}
	return false
}

// integral turns whole float64 numbers (how JSON decodes every number) back into integers, so that YAML
// prints 1000000000, not 1e+09.
func integral(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = integral(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = integral(e)
		}
		return out
	}
	return v
}
