//go:build linux

// Package mailtest runs a real mail server for tests: Debian's OpenSMTPD
// accepting on 127.0.0.1 and delivering the addresses it is given to a
// maildir in the test's temporary directory, which Debian's Dovecot
// serves over IMAP on 127.0.0.1. Nothing listens beyond loopback, and
// nothing is relayed anywhere: any other recipient is refused (a 5xx).
// OpenSMTPD needs root and keeps its queue in its built-in spool
// (/var/spool/smtpd).
package mailtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a running OpenSMTPD and Dovecot pair.
type Server struct {
	// SMTP and IMAP are the servers' host:port on 127.0.0.1.
	SMTP, IMAP string
	// User and Password log in to IMAP (any user name works).
	User, Password string
	// Maildir is where the mails land.
	Maildir string

	t       testing.TB
	dir     string
	smtpd   string
	smtpCmd *exec.Cmd
}

// need returns a program's path; without it the test skips, or fails
// under NTPCTL_REAL_PEERS=1 (as CI runs).
func need(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return filepath.Join(dir, name)
			}
		}
		skip(t, fmt.Sprintf("no %s (apt-get install %s)", name, pkg))
	}
	return p
}

func skip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("NTPCTL_REAL_PEERS") == "1" {
		t.Fatal(why + " (NTPCTL_REAL_PEERS=1 requires it)")
	}
	t.Skip(why)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start starts both servers; accept are the addresses the MTA delivers
// (others get a 5xx). Cleanup stops them.
func Start(t testing.TB, accept []string) *Server {
	t.Helper()
	smtpd := need(t, "smtpd", "opensmtpd")
	dovecot := need(t, "dovecot", "dovecot-imapd")
	if os.Geteuid() != 0 {
		skip(t, "OpenSMTPD needs root")
	}
	// The spool is OpenSMTPD's own: mail queued there by another instance
	// would be delivered into this test's maildir.
	if queued, _ := filepath.Glob("/var/spool/smtpd/queue/*/*"); len(queued) > 0 {
		skip(t, "OpenSMTPD's spool (/var/spool/smtpd/queue) holds queued mail")
	}
	dir := t.TempDir()
	// The delivery user (nobody) must reach the maildir.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{t: t, dir: dir, smtpd: smtpd, User: "reader", Password: "mailtest", Maildir: filepath.Join(dir, "Maildir")}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(s.Maildir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "-R", "nobody:nogroup", s.Maildir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	var vusers strings.Builder
	for _, a := range accept {
		fmt.Fprintf(&vusers, "%s nobody\n", a)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("vusers", vusers.String())
	smtpPort, imapPort := freePort(t), freePort(t)
	for imapPort == smtpPort {
		imapPort = freePort(t)
	}
	s.SMTP = "127.0.0.1:" + strconv.Itoa(smtpPort)
	s.IMAP = "127.0.0.1:" + strconv.Itoa(imapPort)
	write("smtpd.conf", fmt.Sprintf(`table vusers file:%s/vusers
listen on 127.0.0.1 port %d
action "box" maildir "%s" virtual <vusers>
match from any for any action "box"
`, dir, smtpPort, s.Maildir))
	if out, err := exec.Command(smtpd, "-n", "-f", filepath.Join(dir, "smtpd.conf")).CombinedOutput(); err != nil {
		t.Fatalf("smtpd -n: %v\n%s", err, out)
	}
	base := filepath.Join(dir, "dovecot")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := write("dovecot.conf", fmt.Sprintf(`protocols = imap
listen = 127.0.0.1
base_dir = %[1]s
state_dir = %[1]s
log_path = %[2]s/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:%[3]s
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = static
  args = password=%[4]s
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=%[2]s
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = %[5]d
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
`, base, dir, s.Maildir, s.Password, imapPort))
	dc := exec.Command(dovecot, "-F", "-c", conf)
	dc.Stdout, dc.Stderr = os.Stderr, os.Stderr
	if err := dc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dc.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { dc.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			dc.Process.Kill()
			<-done
		}
	})
	s.StartSMTP()
	t.Cleanup(s.StopSMTP)
	for _, addr := range []string{s.IMAP} {
		waitListen(t, addr, filepath.Join(dir, "dovecot.log"))
	}
	return s
}

// StartSMTP starts OpenSMTPD (again, after StopSMTP).
func (s *Server) StartSMTP() {
	s.t.Helper()
	if s.smtpCmd != nil {
		return
	}
	log, err := os.OpenFile(filepath.Join(s.dir, "smtpd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.smtpd, "-d", "-f", filepath.Join(s.dir, "smtpd.conf"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	log.Close()
	s.smtpCmd = cmd
	waitListen(s.t, s.SMTP, filepath.Join(s.dir, "smtpd.log"))
}

// StopSMTP stops OpenSMTPD, once its queue is empty: the relay is down.
func (s *Server) StopSMTP() {
	if s.smtpCmd == nil {
		return
	}
	// Stopped with mail in its queue, OpenSMTPD would deliver it again
	// when it starts (a delivery it made but had not yet struck off):
	// let the queue drain first.
	drained := false
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if queued, _ := filepath.Glob("/var/spool/smtpd/queue/*/*"); len(queued) == 0 {
			drained = true
			break
		}
	}
	if !drained {
		s.t.Errorf("OpenSMTPD's queue did not drain\n%s", s.Log())
	}
	s.smtpCmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.smtpCmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.smtpCmd.Process.Kill()
		<-done
	}
	s.smtpCmd = nil
}

// WaitMails waits until the maildir holds n mails (the MTA delivers
// after it has accepted) and fails the test after a while. Stop the MTA
// only when what it accepted is delivered: like any MTA, one stopped
// with mail in its queue delivers that mail again when it starts.
func (s *Server) WaitMails(n int) {
	s.t.Helper()
	var files []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		files, _ = filepath.Glob(filepath.Join(s.Maildir, "new", "*"))
		cur, _ := filepath.Glob(filepath.Join(s.Maildir, "cur", "*"))
		files = append(files, cur...)
		if len(files) >= n {
			return
		}
	}
	s.t.Fatalf("%d mails delivered, want %d\n%s", len(files), n, s.Log())
}

// Log returns the MTA's log, for a failing test's message.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "smtpd.log"))
	return string(b)
}

func waitListen(t testing.TB, addr, logPath string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(logPath)
	t.Fatalf("nothing listens on %s\n%s", addr, b)
}
