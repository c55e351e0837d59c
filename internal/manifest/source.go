// Package manifest reads Kubernetes manifests as they are written, for agentgate check: sources (files,
// folders, standard input), their documents (YAML documents, JSON objects) with document numbers and lines,
// the line of a field path inside a document, and the comment-preserving YAML edits of --fix. It also reads
// policy files, which share the document format. It makes no decision: that is package policy's job.
package manifest

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// StdinName is how standard input is named in reports.
const StdinName = "<stdin>"

// Source is one input file (or standard input) and its bytes, or why it cannot be read.
type Source struct {
	Name string
	Data []byte
	Err  error
}

// Read reads every path in order: "-" is standard input; a folder is searched recursively, in lexical order,
// for *.yaml, *.yml and *.json files, skipping folders whose name starts with "."; a folder without any
// such file is an error. An unreadable path is a Source with Err set, so that the others are still read.
func Read(paths []string, stdin io.Reader) []*Source {
	var out []*Source
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(stdin)
			out = append(out, &Source{Name: StdinName, Data: data, Err: err})
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			out = append(out, &Source{Name: p, Err: err})
			continue
		}
		if !info.IsDir() {
			data, err := os.ReadFile(p)
			out = append(out, &Source{Name: p, Data: data, Err: err})
			continue
		}
		found := 0
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				out = append(out, &Source{Name: path, Err: err})
				return nil
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
			default:
				return nil
			}
			if fi, err := os.Stat(path); err == nil && fi.IsDir() {
				return nil // a symbolic link to a folder named like a manifest
			}
			found++
			data, err := os.ReadFile(path)
			out = append(out, &Source{Name: path, Data: data, Err: err})
			return nil
		})
		if err != nil {
			out = append(out, &Source{Name: p, Err: err})
		} else if found == 0 {
			out = append(out, &Source{Name: p, Err: errors.New("folder holds no *.yaml, *.yml or *.json file")})
		}
	}
	return out
}
