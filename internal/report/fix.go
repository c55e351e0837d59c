package report

import (
	"bytes"
	"fmt"
	"io"
	"slices"
)

// WriteFixed writes every document of every readable source to out, in order, as YAML documents separated by
// "---" lines: hardened where Judge (with Fix set) found something to fill, with comments and key order kept
// where possible (manifest.Document.Fixed), the others as written. A document with an error is left out (it
// is reported as an error). When several sources are readable, each document starts with a "# Source: FILE"
// comment. Errors are written to errs.
func (r *Run) WriteFixed(out, errs io.Writer) {
	first := true
	sources := 0
	for _, f := range r.files {
		if f.err == nil {
			sources++
		}
	}
	for _, f := range r.files {
		if f.err != nil {
			continue
		}
		for _, d := range f.docs {
			if slices.ContainsFunc(d.entries, func(e *entry) bool { return e.err != nil }) {
				continue // reported as an error; nothing trustworthy to print
			}
			text, err := d.Fixed(d.fixOps)
			if err != nil {
				fmt.Fprintf(errs, "error: %s:%d: document %d: --fix: %v\n", f.name, d.ContentLine, d.Index, err)
				continue
			}
			var b bytes.Buffer
			if !first {
				b.WriteString("---\n")
			}
			first = false
			if sources > 1 {
				b.WriteString("# Source: " + f.name + "\n")
			}
			b.Write(text)
			if !bytes.HasSuffix(text, []byte("\n")) {
				b.WriteString("\n")
			}
			out.Write(b.Bytes())
		}
	}
}
