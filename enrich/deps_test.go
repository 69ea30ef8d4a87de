package enrich

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoHTTPDependency pins the package's lean import set: enrich, and so
// every program that imports it (examples/scanner among them), must not
// link net/http, crypto/tls or crypto/x509, which cost a clean build about
// a third of its time. The RDAP client, which needs them, lives in
// enrich/rdap. The check runs go list -deps with the go command that runs
// the test (go test puts its GOROOT/bin first in PATH), for the host and
// for the other systems the package is built for.
func TestNoHTTPDependency(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	forbidden := []string{"net/http", "crypto/tls", "crypto/x509"}
	for _, goos := range []string{"", "linux", "windows", "darwin"} {
		cmd := exec.Command(gocmd, "list", "-deps", ".")
		cmd.Env = os.Environ()
		if goos != "" {
			cmd.Env = append(cmd.Env, "GOOS="+goos, "CGO_ENABLED=0")
		}
		out, err := cmd.Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("GOOS=%s go list -deps: %v\n%s", goos, err, msg)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, "net/netip") || !slices.Contains(deps, "github.com/ntpctl/ntpctl/enrich") {
			t.Fatalf("GOOS=%s go list -deps: implausible output %q", goos, out)
		}
		for _, p := range forbidden {
			if slices.Contains(deps, p) {
				t.Errorf("GOOS=%s: package enrich depends on %s; keep HTTP clients out of it (see enrich/rdap)", goos, p)
			}
		}
	}
}
