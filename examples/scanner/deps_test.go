package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestLeanDependencies pins what the first `go run ./examples/scanner` on
// a fresh machine has to compile: from a clean build cache that is almost
// all of its start-up time. On two cores, with the modules downloaded, it
// took 15–16 s (22–24 CPU seconds); when the scanner also linked net/http,
// crypto/tls and a progress-bar module, 22 s (33–34 CPU seconds). The
// scanner must link no HTTP or TLS stack and no module beyond the few it
// needs.
func TestLeanDependencies(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command(gocmd, "list", "-deps", "-f", "{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := []string{
		"github.com/ntpctl/ntpctl",
		"golang.org/x/net", "golang.org/x/sys", // sockets: sendmmsg, IP_RECVERR
		"golang.org/x/term",                       // is stderr a terminal
		"github.com/oschwald/maxminddb-golang/v2", // -mmdb
	}
	var pkgs int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, mod, _ := strings.Cut(line, " ")
		pkgs++
		switch pkg {
		case "net/http", "crypto/tls", "crypto/x509":
			t.Errorf("the scanner links %s", pkg)
		}
		if mod != "" && !slices.Contains(allowed, mod) {
			t.Errorf("the scanner links %s from module %s, not in the list of modules it may use", pkg, mod)
		}
	}
	if pkgs < 50 {
		t.Fatalf("go list -deps: implausible output %q", out)
	}
	t.Logf("%d packages", pkgs)
}
