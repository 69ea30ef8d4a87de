//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/internal/realpeer"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// privateAddr is a private-use address that the namespace test puts on
// the loopback interface of a namespace of its own.
const privateAddr = "10.99.0.1"

// envNSChild marks the copy of the test binary that runs inside the
// namespace.
const envNSChild = "NTPCTL_TEST_IN_NAMESPACE"

// TestAllowPrivate scans a private-use address: refused without
// -allow-private (with a hint), scanned with it. The scan runs in a copy
// of this test binary inside a network namespace the test creates, whose
// only interface is lo and which carries the private address, so no
// packet can reach any network.
func TestAllowPrivate(t *testing.T) {
	if os.Getenv(envNSChild) == "1" {
		allowPrivateInNamespace(t)
		return
	}
	ns := realpeer.NewNamespace(t)
	if out, err := ns.Command("ip", "addr", "add", privateAddr+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	cmd := ns.Command(os.Args[0], "-test.run=^TestAllowPrivate$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envNSChild+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "in the namespace:\n%s", out)
	assert.Contains(t, string(out), "--- PASS: TestAllowPrivate", "%s", out)
}

// allowPrivateInNamespace is TestAllowPrivate inside the namespace.
func allowPrivateInNamespace(t *testing.T) {
	ifs, err := net.Interfaces()
	require.NoError(t, err)
	for _, i := range ifs {
		// Anything but lo: this is not the namespace the test made.
		require.Equal(t, "lo", i.Name, "%s must run only in its own namespace", envNSChild)
	}
	clients := make([]mode7.MonitorEntry, 40)
	for i := range clients {
		clients[i] = mode7.MonitorEntry{Addr: netip.AddrFrom4([4]byte{10, 99, 1, byte(i)}), Port: 123, Mode: 3, Version: 4, Count: 1}
	}
	sim, err := ntpsim.Start(context.Background(), "udp4", privateAddr+":0",
		ntpsim.Config{Default: &ntpsim.Host{Mode7: ntpsim.Mode7Monlist, Clients: clients}})
	require.NoError(t, err)
	defer sim.Close()
	dir := t.TempDir()
	args := []string{"-port", fmt.Sprint(sim.Port()), "-probes", "monitor", "-timeout", "1s", "-quiet", "300ms",
		"-retries", "0", "-progress", "none", "-seed", "1", privateAddr}

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"-out", filepath.Join(dir, "refused")}, args...), &stdout, &stderr, nil)
	assert.Equal(t, exitUsage, code, stderr.String())
	assert.Contains(t, stderr.String(), "-allow-private")
	assert.Zero(t, sim.Stats().Requests, "nothing is sent to a refused target")

	stdout.Reset()
	stderr.Reset()
	out := filepath.Join(dir, "out")
	code = run(context.Background(), append([]string{"-out", out, "-allow-private"}, args...), &stdout, &stderr, nil)
	require.Equal(t, exitOK, code, stderr.String())
	assert.Contains(t, stderr.String(), "make sure they are your own networks", "the opt-in is said aloud")
	csvs, _ := filepath.Glob(filepath.Join(out, "*-scan_ntpmonitor-*.csv"))
	require.Len(t, csvs, 1)
	rows := readCSV[report.MonitorRow](t, csvs[0])
	require.Len(t, rows, 1)
	assert.Equal(t, privateAddr, rows[0].IP)
}
