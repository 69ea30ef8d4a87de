package ntpctl_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCIPackagesRefusesOnAWorkstation runs .ci/packages, the step of .ci/run
// that installs ntpsec, against stub dpkg-query, apt-get and systemctl: on a
// machine that looks like a workstation (systemd as the first process, no
// container marker, no CI variable) it must refuse, name what apt would
// remove, and install nothing, unless asked with --yes; on a container it
// goes on; with the packages already there it neither installs nor stops a
// service.
func TestCIPackagesRefusesOnAWorkstation(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the script is for Debian machines")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script, err := filepath.Abs(".ci/packages")
	if err != nil {
		t.Fatal(err)
	}
	type machine struct {
		pid1      string // the first process's name
		container bool   // /.dockerenv exists
		installed bool   // ntpsec and iproute2 are already installed
	}
	run := func(t *testing.T, m machine, env []string, args ...string) (out, calls string, code int) {
		dir := t.TempDir()
		fs := filepath.Join(dir, "fs")
		bin := filepath.Join(dir, "bin")
		log := filepath.Join(dir, "calls")
		for _, d := range []string{filepath.Join(fs, "proc/1"), bin} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(fs, "proc/1/comm"), []byte(m.pid1+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if m.container {
			if err := os.WriteFile(filepath.Join(fs, ".dockerenv"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		status := "exit 1"
		if m.installed {
			status = "printf 'install ok installed'"
		}
		stubs := map[string]string{
			"dpkg-query": status,
			"apt-get": `echo "apt-get $*" >>"$CALLS"
case "$*" in *-s*) printf 'Remv chrony [4.3-2]\nInst ntpsec (1.2.2)\n' ;; esac`,
			"systemctl": `echo "systemctl $*" >>"$CALLS"`,
			"sudo":      `"$@"`,
			"id":        `echo 0`,
			// a workstation's: not in a container
			"systemd-detect-virt": `exit 1`,
		}
		for name, body := range stubs {
			if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(bash, append([]string{script}, args...)...)
		cmd.Env = append([]string{
			"PATH=" + bin + ":/usr/bin:/bin",
			"CALLS=" + log,
			"NTPCTL_CI_FSROOT=" + fs,
		}, env...)
		b, err := cmd.CombinedOutput()
		code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		c, _ := os.ReadFile(log)
		return string(b), string(c), code
	}
	installs := func(calls string) bool {
		for _, l := range strings.Split(calls, "\n") {
			if strings.HasPrefix(l, "apt-get install") && !strings.Contains(l, " -s ") {
				return true
			}
		}
		return false
	}

	workstation := machine{pid1: "systemd"}
	out, calls, code := run(t, workstation, nil)
	if code != 2 || installs(calls) || strings.Contains(calls, "update") || !strings.Contains(out, "REMOVE: chrony") || !strings.Contains(out, "--yes") {
		t.Errorf("workstation: exit %d, calls %q, output:\n%s\nwant exit 2, no install or update, chrony named, --yes offered", code, calls, out)
	}
	_, calls, code = run(t, machine{pid1: "runit"}, nil)
	if code != 2 || installs(calls) {
		t.Errorf("workstation on runit: exit %d, calls %q, want it refused", code, calls)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{{"--yes", nil, []string{"--yes"}}, {"NTPCTL_CI=1", []string{"NTPCTL_CI=1"}, nil}, {"CI=true", []string{"CI=true"}, nil}} {
		out, calls, code = run(t, workstation, tc.env, tc.args...)
		if code != 0 || !installs(calls) || !strings.Contains(calls, "systemctl stop ntpsec") {
			t.Errorf("workstation with %s: exit %d, calls %q, output:\n%s\nwant it installed and the new service stopped", tc.name, code, calls, out)
		}
	}
	for _, m := range []machine{{pid1: "systemd", container: true}, {pid1: "process_api"}} {
		out, calls, code = run(t, m, nil)
		if code != 0 || !installs(calls) {
			t.Errorf("throwaway machine %+v: exit %d, calls %q, output:\n%s\nwant it installed", m, code, calls, out)
		}
	}
	out, calls, code = run(t, machine{pid1: "systemd", installed: true}, nil)
	if code != 0 || calls != "" {
		t.Errorf("packages already there: exit %d, calls %q, output:\n%s\nwant nothing run", code, calls, out)
	}
	_, _, code = run(t, machine{pid1: "systemd", installed: true}, nil, "--force")
	if code != 2 {
		t.Errorf("unknown argument: exit %d, want 2", code)
	}
}
