package mail_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/mail"
	"github.com/ntpctl/ntpctl/report/store"
)

// Three constituencies: example_net (AS 64496, two contacts, one of
// which the relay rejects), de_hosts (a prefix, plain CSV) and quiet
// (no rows ever).
const testConstituencies = `
constituencies:
  - name: example_net
    asns: [64496]
    contacts: [noc@example.net, gone@example.net]
  - name: de_hosts
    prefixes: [127.42.1.0/24]
    contacts: [cert@de.example]
    delivery: {attach: csv}
  - name: quiet
    asns: [65000]
    contacts: [nobody@quiet.example]
`

var testDays = []string{"2026-11-29", "2026-11-30"}

func newStore(t testing.TB) (*store.Store, *store.Constituencies) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "mail.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	cs, err := store.ParseConstituencies([]byte(testConstituencies))
	require.NoError(t, err)
	hosts := [][3]string{{"127.42.0.1", "64496", "NL"}, {"127.42.0.2", "64496", "NL"}, {"127.42.1.4", "64497", "DE"}}
	for _, day := range testDays {
		started, _ := time.Parse(time.DateOnly, day)
		started = started.Add(6 * time.Hour)
		var rows []store.Row
		for _, h := range hosts {
			v := report.VersionRow{Common: report.Common{Timestamp: started.Format(report.TimeFormat), Severity: "medium", IP: h[0],
				Protocol: "udp", Port: "123", Tag: "ntpversion", ASN: h[1], Geo: h[2]}, Version: "ntpd 4.2.8p15", Amplification: "35.00"}
			rows = append(rows, store.VersionRowOf(report.ScanNTP, &v))
		}
		m := report.MonitorRow{Common: report.Common{Timestamp: started.Format(report.TimeFormat), Severity: "medium", IP: "127.42.0.1",
			Protocol: "udp", Port: "123", ASN: "64496", Geo: "NL"}, Packets: "100", ResponseSize: "44000", Amplification: "5500.00"}
		rows = append(rows, store.MonitorRowOf(report.ScanNTPMonitor, &m))
		_, err := st.Import(ctx, store.Run{Source: day, Started: started, Complete: true, Types: store.TypesOf("monitor", "version"),
			Space: []ntpctl.Range{ntpctl.RangeOf(netip.MustParsePrefix("127.42.0.0/23"))}}, func(yield func(store.Row, error) bool) {
			for _, r := range rows {
				if !yield(r, nil) {
					return
				}
			}
		}, store.ImportOptions{Constituencies: cs})
		require.NoError(t, err)
	}
	return st, cs
}

// relay is a go-smtp server on loopback that keeps what it accepts and
// misbehaves on request: per recipient, a list of SMTP codes to answer
// RCPT with before accepting (250: accepted; 451: try later; 550:
// rejected, for good).
type relay struct {
	mu      sync.Mutex
	got     []received
	answers map[string][]int
	addr    string
	srv     *smtp.Server
	// dataHook, when set, runs as a mail's data arrives, before it is
	// read: it can hold the delivery.
	dataHook func(to []string)
}

type received struct {
	from string
	to   []string
	data []byte
}

func newRelay(t testing.TB) *relay {
	r := &relay{answers: map[string][]int{}}
	r.srv = smtp.NewServer(r)
	r.srv.Domain = "relay.test"
	r.srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r.addr = ln.Addr().String()
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *relay) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{r: r}, nil }

type session struct {
	r    *relay
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if as := s.r.answers[to]; len(as) > 0 {
		code := as[0]
		if code != 550 {
			s.r.answers[to] = as[1:]
		}
		if code == 250 {
			s.to = append(s.to, to)
			return nil
		}
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: "as the test asked"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(rd io.Reader) error {
	s.r.mu.Lock()
	h := s.r.dataHook
	s.r.mu.Unlock()
	if h != nil {
		h(s.to)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	s.r.got = append(s.r.got, received{s.from, s.to, b})
	s.r.mu.Unlock()
	return nil
}

func (r *relay) setHook(h func(to []string)) {
	r.mu.Lock()
	r.dataHook = h
	r.mu.Unlock()
}

func (r *relay) mails() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func testKey(t *testing.T) (*mail.DKIM, ed25519.PublicKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return &mail.DKIM{Domain: "reports.example", Selector: "ntpctl", Key: priv}, pub
}

func options(r *relay, d *mail.DKIM) mail.Options {
	return mail.Options{
		MessageOptions: mail.MessageOptions{From: "NTP reports <autoreports@reports.example>", DKIM: d},
		Relay:          &mail.Relay{Addr: r.addr, Timeout: 10 * time.Second},
		DownloadURL:    "https://reports.example/dl/", Backoff: 10 * time.Millisecond,
	}
}

// TestDeliver: one mail per non-empty report and contact, in
// Shadowserver's shape, DKIM-signed; a second run sends nothing; 4xx is
// retried, 5xx is not.
func TestDeliver(t *testing.T) {
	st, cs := newStore(t)
	r := newRelay(t)
	r.answers["gone@example.net"] = []int{550}
	r.answers["cert@de.example"] = []int{451} // once, then accepted
	d, pub := testKey(t)
	ctx := context.Background()
	res, err := mail.Deliver(ctx, st, cs, "2026-11-30", options(r, d))
	require.NoError(t, err)
	// example_net: scan_ntp and scan_ntpmonitor to noc (and rejected for
	// gone); de_hosts: scan_ntp only (no monitor row); quiet: nothing.
	assert.Equal(t, 3, res.Sent, "%+v", res.Events)
	assert.Equal(t, 2, res.Rejected)
	assert.Zero(t, res.Failed)
	mails := r.mails()
	require.Len(t, mails, 3)
	subjects := map[string]received{}
	for _, m := range mails {
		msg, err := gomail.CreateReader(bytes.NewReader(m.data))
		require.NoError(t, err)
		subj, err := msg.Header.Subject()
		require.NoError(t, err)
		subjects[subj+" → "+m.to[0]] = m
		assert.Equal(t, "autoreports@reports.example", m.from)
		assert.Equal(t, "list", msg.Header.Get("Precedence"))
		assert.Equal(t, "auto-generated", msg.Header.Get("Auto-Submitted"))
		assert.NotEmpty(t, msg.Header.Get("Message-Id"))
		assert.NotEmpty(t, msg.Header.Get("Date"))

		// DKIM verifies with the public key given directly.
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.data), &dkim.VerifyOptions{LookupTXT: func(domain string) ([]string, error) {
			if domain != "ntpctl._domainkey.reports.example" {
				return nil, errors.New("no such record")
			}
			return []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
		}})
		require.NoError(t, err)
		require.Len(t, vs, 1)
		assert.NoError(t, vs[0].Err)
		assert.Equal(t, "reports.example", vs[0].Domain)
	}
	assert.ElementsMatch(t, []string{
		"[example_net] Shadowserver example_net NTP Version Report: 2026-11-30 → noc@example.net",
		"[example_net] Shadowserver example_net NTP Monitor Report: 2026-11-30 → noc@example.net",
		"[de_hosts] Shadowserver de_hosts NTP Version Report: 2026-11-30 → cert@de.example",
	}, keys(subjects))

	// The attachment is the store's CSV: zipped, or plain for de_hosts.
	run, err := st.RunOf(ctx, "2026-11-30", report.ScanNTP)
	require.NoError(t, err)
	for subj, c := range map[string]string{
		"[example_net] Shadowserver example_net NTP Version Report: 2026-11-30 → noc@example.net": "example_net",
		"[de_hosts] Shadowserver de_hosts NTP Version Report: 2026-11-30 → cert@de.example":       "de_hosts",
	} {
		var want bytes.Buffer
		_, err := st.WriteReport(ctx, &want, store.ReportQuery{RunID: run.ID, Type: report.ScanNTP, Constituency: c})
		require.NoError(t, err)
		name, body, text := attachment(t, subjects[subj].data)
		filter := "asn"
		if c == "de_hosts" {
			filter = "ip"
		}
		csvName := "2026-11-30-scan_ntp-" + c + "-" + filter + ".csv"
		if c == "example_net" {
			assert.Equal(t, csvName+".zip", name)
			zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
			require.NoError(t, err)
			require.Len(t, zr.File, 1)
			assert.Equal(t, csvName, zr.File[0].Name)
			f, err := zr.File[0].Open()
			require.NoError(t, err)
			body, err = io.ReadAll(f)
			require.NoError(t, err)
		} else {
			assert.Equal(t, csvName, name)
		}
		assert.Equal(t, want.String(), string(body))
		assert.Regexp(t, `https://reports\.example/dl/[0-9a-f]{32}`, text, "the download URL")
		assert.Contains(t, text, "restrict default kod limited nomodify notrap nopeer noquery")
	}

	// The log: a second run sends nothing.
	log, err := st.Mailings(ctx, "2026-11-30")
	require.NoError(t, err)
	require.Len(t, log, 5)
	for _, m := range log {
		if m.Contact == "cert@de.example" {
			assert.Equal(t, 2, m.Attempts, "retried once after 451")
		}
	}
	res, err = mail.Deliver(ctx, st, cs, "2026-11-30", options(r, d))
	require.NoError(t, err)
	assert.Equal(t, 5, res.Skipped)
	assert.Zero(t, res.Sent+res.Failed+res.Rejected)
	assert.Len(t, r.mails(), 3)
}

// TestRelayDown: the relay unreachable; every mail is logged failed, and
// the next run, with the relay back, sends each once.
func TestRelayDown(t *testing.T) {
	st, cs := newStore(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	ln.Close()
	ctx := context.Background()
	opt := options(&relay{addr: dead}, nil)
	opt.Attempts = 2
	res, err := mail.Deliver(ctx, st, cs, "2026-11-29", opt)
	require.NoError(t, err)
	assert.Equal(t, 5, res.Failed)
	for _, e := range res.Events {
		assert.Equal(t, store.Failed, e.Status)
		assert.Equal(t, 2, e.Attempts)
	}
	r := newRelay(t)
	res, err = mail.Deliver(ctx, st, cs, "2026-11-29", options(r, nil))
	require.NoError(t, err)
	assert.Equal(t, 5, res.Sent)
	assert.Len(t, r.mails(), 5)
	// Sent again under the Message-IDs the failed attempts had.
	log, err := st.Mailings(ctx, "2026-11-29")
	require.NoError(t, err)
	for _, m := range log {
		assert.Equal(t, store.Sent, m.Status)
		assert.Equal(t, 3, m.Attempts)
	}
	ids := map[string]bool{}
	for _, m := range r.mails() {
		msg, err := gomail.CreateReader(bytes.NewReader(m.data))
		require.NoError(t, err)
		id, err := msg.Header.MessageID()
		require.NoError(t, err)
		ids[id] = true
	}
	for _, m := range log {
		assert.True(t, ids[m.MessageID], m.MessageID)
	}
}

// TestInterrupted: a run cancelled while the relay holds a mail; the
// next run sends what was not accepted, and no contact gets a report
// twice.
func TestInterrupted(t *testing.T) {
	st, cs := newStore(t)
	r := newRelay(t)
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan struct{})
	var once sync.Once
	r.setHook(func(to []string) {
		if to[0] == "cert@de.example" {
			once.Do(func() {
				cancel() // the run stops while this mail is in flight
				close(held)
			})
			time.Sleep(200 * time.Millisecond)
		}
	})
	opt := options(r, nil)
	opt.Concurrency = 1
	res, err := mail.Deliver(ctx, st, cs, "2026-11-29", opt)
	assert.ErrorIs(t, err, context.Canceled)
	<-held
	first := len(r.mails())
	assert.Less(t, first, 5, "%+v", res)
	r.setHook(nil)
	res, err = mail.Deliver(context.Background(), st, cs, "2026-11-29", options(r, nil))
	require.NoError(t, err)
	byContact := map[string]int{}
	for _, m := range r.mails() {
		mr, err := gomail.CreateReader(bytes.NewReader(m.data))
		require.NoError(t, err)
		subj, _ := mr.Header.Subject()
		byContact[m.to[0]+" "+subj]++
	}
	assert.Len(t, byContact, 5, "every report reached every contact")
	for k, n := range byContact {
		assert.Equal(t, 1, n, "%s received %d times", k, n)
	}
	log, err := st.Mailings(context.Background(), "2026-11-29")
	require.NoError(t, err)
	for _, m := range log {
		assert.Equal(t, store.Sent, m.Status, m.Contact)
	}
}

func TestRelayCheck(t *testing.T) {
	for _, r := range []mail.Relay{
		{Addr: "smtp.example:587", TLS: "STARTTLS"},
		{Addr: "smtp.example:587", Username: "u", Password: "p"},
		{Addr: "smtp.example:587", TLS: mail.NoTLS, Username: "u", Password: "p"},
		{Addr: "smtp.example"},
	} {
		err := r.Check()
		assert.ErrorIs(t, err, mail.ErrRelayConfig, "%+v", r)
		_, err = r.Send(context.Background(), "a@b.example", []string{"c@d.example"}, []byte("x"))
		assert.ErrorIs(t, err, mail.ErrRelayConfig)
	}
	for _, r := range []mail.Relay{
		{Addr: "127.0.0.1:25", Username: "u", Password: "p"},
		{Addr: "smtp.example:587", TLS: mail.STARTTLSRequired, Username: "u", Password: "p"},
		{Addr: "smtp.example:465", TLS: mail.ImplicitTLS},
	} {
		assert.NoError(t, r.Check(), "%+v", r)
	}
}

// TestDryRun writes .eml files and logs nothing.
func TestDryRun(t *testing.T) {
	st, cs := newStore(t)
	dir := t.TempDir()
	res, err := mail.Deliver(context.Background(), st, cs, "2026-11-29", mail.Options{
		MessageOptions: mail.MessageOptions{From: "autoreports@reports.example"}, DryRun: dir, DownloadURL: "https://reports.example/dl/"})
	require.NoError(t, err)
	assert.Equal(t, 5, res.Written)
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	require.NoError(t, err)
	assert.Len(t, files, 5)
	b, err := os.ReadFile(filepath.Join(dir, "2026-11-29-scan_ntp-example_net-noc@example.net.eml"))
	require.NoError(t, err)
	msg, err := gomail.CreateReader(bytes.NewReader(b))
	require.NoError(t, err)
	subj, err := msg.Header.Subject()
	require.NoError(t, err)
	assert.Equal(t, "[example_net] Shadowserver example_net NTP Version Report: 2026-11-29", subj)
	assert.Regexp(t, `\r\nhttps://reports\.example/dl/[0-9a-f]{32}\r\n`, string(b), "the URL whole in the raw body")
	log, err := st.Mailings(context.Background(), "2026-11-29")
	require.NoError(t, err)
	assert.Empty(t, log)
	_, err = mail.Deliver(context.Background(), st, cs, "2026-11-29", mail.Options{})
	assert.ErrorIs(t, err, mail.ErrNoRelay)
}

func unzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	require.Len(t, zr.File, 1)
	f, err := zr.File[0].Open()
	require.NoError(t, err)
	defer f.Close()
	out, err := io.ReadAll(f)
	require.NoError(t, err)
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// attachment returns a mail's one attachment (name and bytes) and its
// text.
func attachment(t *testing.T, data []byte) (name string, body []byte, text string) {
	t.Helper()
	mr, err := gomail.CreateReader(bytes.NewReader(data))
	require.NoError(t, err)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(p.Body)
		require.NoError(t, err)
		switch h := p.Header.(type) {
		case *gomail.InlineHeader:
			text += string(b)
		case *gomail.AttachmentHeader:
			name, _ = h.Filename()
			body = b
		}
	}
	return name, body, strings.TrimSpace(text)
}
