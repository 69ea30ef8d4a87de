// Package buildtest checks, in the programs' tests, that a binary built from
// this checkout prints its VCS revision (internal/buildinfo).
package buildtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CheckBinaryVersion builds the program in pkgDir (a directory of this
// checkout) with VCS stamping on, whatever GOFLAGS the machine has, runs
// it with versionArg and checks that it prints the checkout's revision.
// It skips when git is missing, when the directory is not in a git
// checkout, or when the checkout is a git worktree (go stamps only a
// checkout whose .git is a directory). For the programs' tests.
func CheckBinaryVersion(t testing.TB, pkgDir, program, versionArg string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	top, err := exec.Command("git", "-C", pkgDir, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skip("not in a git checkout")
	}
	root := strings.TrimSpace(string(top))
	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		t.Skip("a git worktree: go build stamps no VCS information there")
	}
	rev, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("git rev-parse HEAD: %v", err)
	}
	bin := filepath.Join(t.TempDir(), program)
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = pkgDir
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, versionArg).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", program, versionArg, err, out)
	}
	text := string(out)
	for _, want := range []string{program + " ", "module   github.com/ntpctl/ntpctl\n",
		"revision " + strings.TrimSpace(string(rev)) + "\n", "\ntime     ", "\nmodified ", "\ngo       go1."} {
		if !strings.Contains(text, want) {
			t.Errorf("%s %s: no %q in\n%s", program, versionArg, want, text)
		}
	}
}
