package apikeys_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeProgramsCompile builds every whole program in README.md (a
// ```go block that starts with "package main"), so that the snippets a new
// user copies compile as written.
func TestReadmeProgramsCompile(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds programs")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(readme), "```go\n")[1:]
	n := 0
	for i, b := range blocks {
		code, _, _ := strings.Cut(b, "```")
		if !strings.HasPrefix(code, "package main\n") {
			continue
		}
		n++
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "main.go")
			if err := os.WriteFile(file, []byte(code), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("go", "build", "-o", os.DevNull, file).CombinedOutput()
			if err != nil {
				t.Errorf("README program %d does not compile: %v\n%s\n%s", i, err, out, code)
			}
		})
	}
	if n == 0 {
		t.Fatal("README.md has no whole program")
	}
}
