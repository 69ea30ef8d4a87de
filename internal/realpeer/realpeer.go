// Package realpeer runs real NTP servers for tests: Debian's ntpsec ntpd,
// each in a network namespace the test creates, so that several servers
// (and the machine's own NTP service, if any) never collide on port 123
// and no packet leaves the namespace's loopback interface.
//
// Tests call StartNTPsec. Without root, iproute2 or ntpsec it skips the
// test with a clear message, unless the environment sets
// NTPCTL_REAL_PEERS=1 (as CI does), in which case it fails.
package realpeer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvRequired is the environment variable that turns a missing real peer
// from a skip into a failure.
const EnvRequired = "NTPCTL_REAL_PEERS"

// Required reports whether the environment asks for real peers
// (NTPCTL_REAL_PEERS set to anything but "", "0" or "false").
func Required() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(EnvRequired)))
	return v != "" && v != "0" && v != "false" && v != "no"
}

// unavailable skips t, or fails it when real peers are required.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("real peer required (%s=1) but unavailable: %s", EnvRequired, msg)
	}
	t.Skipf("real peer unavailable (set %s=1 to make this a failure): %s", EnvRequired, msg)
}

// Namespace is a network namespace created for one test, with its
// loopback interface up. It is deleted when the test ends.
type Namespace struct {
	Name string
}

// NewNamespace creates a namespace, or skips t when it cannot.
func NewNamespace(t testing.TB) *Namespace {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		unavailable(t, "iproute2's ip command is missing (apt-get install iproute2)")
	}
	removeStale()
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := &Namespace{Name: nsPrefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		unavailable(t, "ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns.Name).Run() })
	if out, err := ns.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("loopback up in %s: %v: %s", ns.Name, err, out)
	}
	return ns
}

const nsPrefix = "ntpctl-"

// removeStale deletes the namespaces (and kills the servers in them) that
// test processes left behind when they died before their cleanups ran: a
// namespace's name carries the PID of the process that made it.
func removeStale() { removeStaleNamespaces() }

// Command returns a command that runs inside the namespace.
func (ns *Namespace) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// ListenUDP opens a UDP socket inside the namespace; it can be used from
// any goroutine afterwards.
func (ns *Namespace) ListenUDP(network, address string) (*net.UDPConn, error) {
	return ns.listenUDP(network, address)
}

// NTPd is an ntpsec ntpd running in its own namespace on 127.0.0.1:123
// and [::1]:123, with the configuration [Config] returns: loopback only, a local reference clock, the clock discipline off.
type NTPd struct {
	NS      *Namespace
	Addr    netip.AddrPort // 127.0.0.1:123
	Addr6   netip.AddrPort // [::1]:123
	Dir     string
	Version string // what ntpd --version printed
	cmd     *exec.Cmd
}

// Config returns the ntpd configuration StartNTPsec writes, before the
// caller's extra lines: loopback only, a
// local reference clock, the clock discipline off.
func Config() []string {
	return []string{
		"interface ignore all",
		"interface listen 127.0.0.1",
		"interface listen ::1",
		"refclock local stratum 10",
		"disable ntp",
		"disable kernel",
		"disable stats",
		"restrict default ignore",
		"restrict 127.0.0.0 mask 255.0.0.0",
		"restrict ::1",
	}
}

// StartNTPsec starts ntpsec's ntpd for t and waits until it answers Mode 6
// queries. It stops the server when the test ends. extra lines are added
// to the configuration.
func StartNTPsec(t testing.TB, extra ...string) *NTPd {
	t.Helper()
	path, err := exec.LookPath("ntpd")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/ntpd"); err2 != nil {
			unavailable(t, "ntpd is not installed (apt-get install ntpsec)")
		}
		path = "/usr/sbin/ntpd"
	}
	ver, _ := exec.Command(path, "--version").CombinedOutput()
	if !strings.Contains(string(ver), "ntpsec") {
		unavailable(t, "%s is not ntpsec's ntpd: %q", path, bytes.TrimSpace(ver))
	}
	if _, err := exec.LookPath("ntpq"); err != nil {
		unavailable(t, "ntpq is not installed (apt-get install ntpsec)")
	}
	ns := NewNamespace(t)
	d := &NTPd{NS: ns, Addr: netip.MustParseAddrPort("127.0.0.1:123"), Addr6: netip.MustParseAddrPort("[::1]:123"),
		Dir: t.TempDir(), Version: strings.TrimSpace(string(ver))}
	conf := filepath.Join(d.Dir, "ntp.conf")
	lines := append(Config(), extra...)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd = ns.Command(path, "-n", "-c", conf, "-l", filepath.Join(d.Dir, "ntpd.log"), "-p", filepath.Join(d.Dir, "ntpd.pid"))
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start ntpd: %v", err)
	}
	t.Cleanup(d.stop)
	if err := d.waitReady(10 * time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(d.Dir, "ntpd.log"))
		t.Fatalf("ntpd did not answer: %v\nlog:\n%s", err, log)
	}
	return d
}

func (d *NTPd) stop() {
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
	}
}

// waitReady polls with a Mode 6 READVAR until a reply arrives.
func (d *NTPd) waitReady(limit time.Duration) error {
	c, err := d.ListenUDP("udp4")
	if err != nil {
		return err
	}
	defer c.Close()
	req := []byte{0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0} // ntpq -c rv
	buf := make([]byte, 2048)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := c.WriteToUDPAddrPort(req, d.Addr); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _, err := c.ReadFromUDPAddrPort(buf); err == nil && n >= 12 {
			return nil
		}
	}
	return errors.New("no Mode 6 reply within " + limit.String())
}

// ListenUDP opens a client socket ("udp4" or "udp6") inside the server's
// namespace.
func (d *NTPd) ListenUDP(network string) (*net.UDPConn, error) {
	addr := "127.0.0.1:0"
	if network == "udp6" {
		addr = "[::1]:0"
	}
	return d.NS.ListenUDP(network, addr)
}

// NTPQ runs ntpsec's ntpq inside the namespace with the given commands
// (each passed with -c) against host, and returns its output.
func (d *NTPd) NTPQ(ctx context.Context, host string, commands ...string) (string, error) {
	args := []string{"-n"}
	for _, c := range commands {
		args = append(args, "-c", c)
	}
	args = append(args, host)
	cmd := d.NS.Command("ntpq", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done // the output is complete only once Wait returns
		return out.String(), ctx.Err()
	}
}

// ClientAddr is the loopback address of the i-th client FeedClients
// sends from: 127.0.1.1, 127.0.1.2, … 127.0.1.200, 127.0.2.1, …
func ClientAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 0, byte(1 + i/200), byte(1 + i%200)})
}

// FeedClients makes the server hear from n clients, each from its own
// loopback address of the namespace (ClientAddr) and its own port: client
// i sends packets copies of the datagram that packet(i) returns, so that
// the server's MRU list has them. It paces the clients so that the
// server's socket buffer takes every datagram.
func (d *NTPd) FeedClients(t testing.TB, n int, packet func(i int) (b []byte, packets int)) {
	t.Helper()
	for i := range n {
		c, err := d.NS.ListenUDP("udp4", netip.AddrPortFrom(ClientAddr(i), 0).String())
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		b, k := packet(i)
		for range k {
			if _, err := c.WriteToUDPAddrPort(b, d.Addr); err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
		}
		c.Close()
		time.Sleep(time.Millisecond)
	}
}
