package manifest

import (
	"slices"
	"strconv"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	"gomodules.xyz/jsonpatch/v2"
)

// LineOf finds the source line of a field path (as package policy prints it, "spec.containers[0].image")
// inside the object at item, an RFC 6901 JSON pointer into the document ("" for the document itself,
// "/items/2" for an item of a List): the line of the field itself, or of its closest ancestor written in the
// manifest (the place to add an unset field). It is the document's first line of content when yaml.v3
// cannot read the document.
func (d *Document) LineOf(item, fieldPath string) int {
	if d.node == nil {
		return d.ContentLine
	}
	n := d.node.Content[0]
	line := n.Line
	for _, tok := range append(pointerTokens(item), fieldTokens(fieldPath)...) {
		k, v := nodeChild(n, tok)
		if v == nil {
			break
		}
		if k != nil {
			line = k.Line
		} else {
			line = v.Line
		}
		n = v
	}
	return d.Line + line - 1
}

// nodeChild returns the key and value under tok of a mapping, or the element at index tok of a sequence.
func nodeChild(n *yaml3.Node, tok string) (key, val *yaml3.Node) {
	if n.Kind == yaml3.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml3.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == tok {
				return n.Content[i], n.Content[i+1]
			}
		}
	case yaml3.SequenceNode:
		if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(n.Content) {
			return nil, n.Content[i]
		}
	}
	return nil, nil
}

// fieldTokens splits "spec.containers[0].securityContext" or "metadata.annotations[a.b/c]".
func fieldTokens(p string) []string {
	var toks []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '.':
			flush()
		case '[':
			flush()
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				toks = append(toks, p[i+1:])
				return toks
			}
			toks = append(toks, p[i+1:i+j])
			i += j
		default:
			cur.WriteByte(p[i])
		}
	}
	flush()
	return toks
}

// pointerTokens splits an RFC 6901 JSON pointer.
func pointerTokens(ptr string) []string {
	if ptr == "" {
		return nil
	}
	toks := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks
}

// FieldPath renders an RFC 6901 JSON pointer the way field paths are written: "/items/2" as ".items[2]",
// "" as "".
func FieldPath(ptr string) string {
	var b strings.Builder
	for _, t := range pointerTokens(ptr) {
		if isArrayIndex(t) {
			b.WriteString("[" + t + "]")
		} else {
			b.WriteString("." + t)
		}
	}
	return b.String()
}

func isArrayIndex(tok string) bool {
	if tok == "-" {
		return true
	}
	_, err := strconv.Atoi(tok)
	return err == nil
}

// SortPatches orders operations by path, in place, so that output is the same on every run (the diff library
// walks maps in random order): object keys in byte order, array indexes in numeric order. Operations on
// elements of one array keep their relative order, which matters.
func SortPatches(ops []jsonpatch.Operation) []jsonpatch.Operation {
	key := func(p string) []string {
		toks := pointerTokens(p)
		if n := len(toks); n > 0 && isArrayIndex(toks[n-1]) {
			toks = toks[:n-1]
		}
		return toks
	}
	slices.SortStableFunc(ops, func(a, b jsonpatch.Operation) int {
		ka, kb := key(a.Path), key(b.Path)
		for i := 0; i < len(ka) && i < len(kb); i++ {
			if ka[i] == kb[i] {
				continue
			}
			na, ea := strconv.Atoi(ka[i])
			nb, eb := strconv.Atoi(kb[i])
			if ea == nil && eb == nil {
				return na - nb
			}
			return strings.Compare(ka[i], kb[i])
		}
		return len(ka) - len(kb)
	})
	return ops
}
