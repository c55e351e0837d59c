package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("tree/b.yaml", "b")
	write("tree/a.JSON", "a")
	write("tree/sub/c.yml", "c")
	write("tree/notes.txt", "not read")
	write("tree/.hidden/d.yaml", "not read")
	if err := os.Mkdir(filepath.Join(dir, "tree", "dir.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "tree", "sub"), filepath.Join(dir, "tree", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	file := write("one.yaml", "one")
	if err := os.Mkdir(filepath.Join(dir, "nothing"), 0o755); err != nil {
		t.Fatal(err)
	}

	got := Read([]string{file, "-", filepath.Join(dir, "tree"), filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "nothing")}, strings.NewReader("from stdin"))
	var lines []string
	for _, s := range got {
		line := strings.TrimPrefix(s.Name, dir+string(filepath.Separator)) + " "
		if s.Err != nil {
			line += "error: " + strings.TrimPrefix(s.Err.Error(), "stat "+dir+string(filepath.Separator))
		} else {
			line += string(s.Data)
		}
		lines = append(lines, line)
	}
	want := []string{
		"one.yaml one",
		"<stdin> from stdin",
		filepath.FromSlash("tree/a.JSON") + " a",
		filepath.FromSlash("tree/b.yaml") + " b",
		filepath.FromSlash("tree/sub/c.yml") + " c",
		"missing.yaml error: missing.yaml: no such file or directory",
		"nothing error: folder holds no *.yaml, *.yml or *.json file",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
