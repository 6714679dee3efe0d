package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A real `go test -json` run over a module whose tests pass, skip and
// fail: the summary keeps the failure's output, drops the passing noise
// and lists each skip with its reason.
func TestSummarizeRealGoTest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test on a scratch module")
	}
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.test/scratch\n\ngo 1.22\n")
	write("x_test.go", `package scratch

import "testing"

func TestPasses(t *testing.T) { t.Log("chatter a plain go test hides") }
func TestNeedsCurl(t *testing.T) { t.Skip("curl not installed: apt install curl") }
func TestFails(t *testing.T) { t.Error("the answer was 41") }
func TestTable(t *testing.T) {
	t.Run("as root", func(t *testing.T) { t.Skipf("needs root (uid %d)", 1000) })
}
`)
	if err := os.Mkdir(filepath.Join(dir, "broken"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("broken/b_test.go", "package broken\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) { x := 1 }\n")
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	stream, err := cmd.Output()
	if err == nil {
		t.Fatal("go test passed a module with a failing test")
	}
	var out bytes.Buffer
	if err := summarize(bytes.NewReader(stream), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"--- FAIL: TestFails", "x_test.go:7: the answer was 41", "FAIL\texample.test/scratch",
		"2 tests skipped", "declared and not used: x", "FAIL\texample.test/scratch/broken [build failed]",
		"example.test/scratch TestNeedsCurl: x_test.go:6: curl not installed: apt install curl",
		"example.test/scratch TestTable/as_root: x_test.go:9: needs root (uid 1000)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	for _, noise := range []string{"=== RUN", "chatter a plain go test hides", "--- PASS"} {
		if strings.Contains(got, noise) {
			t.Errorf("summary has %q:\n%s", noise, got)
		}
	}
}
