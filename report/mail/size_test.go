package mail_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/mail"
	"github.com/ntpctl/ntpctl/report/store"
)

// big_net has a report too large for the tests' size cap; shared@ is a
// contact of all three constituencies.
const sizeConstituencies = `
constituencies:
  - name: big_net
    asns: [64500]
    contacts: [noc@big.example, shared@cert.example]
  - name: small_a
    asns: [64501]
    contacts: [shared@cert.example]
  - name: small_b
    asns: [64502]
    contacts: [Shared@cert.example]
    delivery: {attach: csv}
`

const sizeDay = "2026-11-29"

// bigRows is big_net's number of rows: about 700 kB of CSV, about 60 kB
// zipped.
const bigRows = 3000

func newSizeStore(t testing.TB, path string) (*store.Store, *store.Constituencies) {
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	cs, err := store.ParseConstituencies([]byte(sizeConstituencies))
	require.NoError(t, err)
	started := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	var rows []store.Row
	add := func(ip netip.Addr, asn string) {
		v := report.VersionRow{Common: report.Common{Timestamp: started.Format(report.TimeFormat), Severity: "medium", IP: ip.String(),
			Protocol: "udp", Port: "123", Tag: "ntpversion", ASN: asn, Geo: "NL", Hostname: fmt.Sprintf("host%d.big.example", len(rows))},
			Version: "ntpd 4.2.8p15@1.3728-o", Amplification: "35.00", System: "Linux/5.10", Stratum: "2"}
		rows = append(rows, store.VersionRowOf(report.ScanNTP, &v))
	}
	ip := netip.MustParseAddr("127.50.0.1")
	for range bigRows {
		add(ip, "64500")
		ip = ip.Next()
	}
	add(netip.MustParseAddr("127.51.0.1"), "64501")
	add(netip.MustParseAddr("127.51.0.2"), "64501")
	add(netip.MustParseAddr("127.52.0.1"), "64502")
	_, err = st.Import(ctx, store.Run{Source: sizeDay, Started: started, Complete: true, Types: store.TypesOf("version"),
		Space: []ntpctl.Range{ntpctl.RangeOf(netip.MustParsePrefix("127.48.0.0/12"))}}, func(yield func(store.Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}, store.ImportOptions{Constituencies: cs})
	require.NoError(t, err)
	return st, cs
}

// parsed is a received mail, read back.
type parsed struct {
	to, subject, listID, id string
	size                    int
	text                    string
	files                   map[string][]byte // by name, unzipped
}

func parse(t *testing.T, m received) parsed {
	t.Helper()
	mr, err := gomail.CreateReader(bytes.NewReader(m.data))
	require.NoError(t, err)
	p := parsed{to: m.to[0], size: len(m.data), files: map[string][]byte{}, listID: mr.Header.Get("List-Id")}
	p.subject, _ = mr.Header.Subject()
	p.id, _ = mr.Header.MessageID()
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		b := readAll(t, part.Body)
		switch h := part.Header.(type) {
		case *gomail.InlineHeader:
			p.text += string(b)
		case *gomail.AttachmentHeader:
			name, _ := h.Filename()
			if n, ok := strings.CutSuffix(name, ".zip"); ok {
				name, b = n, unzip(t, b)
			}
			p.files[name] = b
		}
	}
	return p
}

func reportCSV(t *testing.T, st *store.Store, c string) string {
	t.Helper()
	ctx := context.Background()
	run, err := st.RunOf(ctx, sizeDay, report.ScanNTP)
	require.NoError(t, err)
	var b bytes.Buffer
	_, err = st.WriteReport(ctx, &b, store.ReportQuery{RunID: run.ID, Type: report.ScanNTP, Constituency: c})
	require.NoError(t, err)
	return b.String()
}

func fileOf(c string) string { return sizeDay + "-scan_ntp-" + c + "-asn.csv" }

// TestGroupContact: a contact of three constituencies gets one mail
// with each one's report attached; by list, three.
func TestGroupContact(t *testing.T) {
	st, cs := newSizeStore(t, filepath.Join(t.TempDir(), "s.db"))
	r := newRelay(t)
	opt := options(r, nil)
	opt.Group = mail.GroupContact
	ctx := context.Background()
	res, err := mail.Deliver(ctx, st, cs, sizeDay, opt)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Mails)
	assert.Equal(t, 4, res.Sent, "four reports: three to shared@, one to noc@")
	var shared parsed
	for _, m := range r.mails() {
		if p := parse(t, m); p.to == "shared@cert.example" {
			shared = p
		} else {
			assert.Equal(t, "[big_net] Shadowserver big_net NTP Version Report: "+sizeDay, p.subject)
		}
	}
	assert.Equal(t, "[big_net, small_a, small_b] Shadowserver NTP Version Report: "+sizeDay, shared.subject)
	assert.Equal(t, "<aggregate.reports.reports.example>", shared.listID)
	require.Len(t, shared.files, 3)
	for _, c := range []string{"big_net", "small_a", "small_b"} {
		assert.Equal(t, reportCSV(t, st, c), string(shared.files[fileOf(c)]), c)
		assert.Contains(t, shared.text, c+": ")
	}
	assert.Equal(t, 3, strings.Count(shared.text, "https://reports.example/dl/"), "each report's URL")
	log, err := st.Mailings(ctx, sizeDay)
	require.NoError(t, err)
	require.Len(t, log, 4)
	for _, m := range log {
		assert.Equal(t, store.Sent, m.Status)
		if m.Contact != "noc@big.example" {
			assert.Equal(t, shared.id, m.MessageID, "one mail for the three")
		}
	}
	res, err = mail.Deliver(ctx, st, cs, sizeDay, opt)
	require.NoError(t, err)
	assert.Equal(t, 4, res.Skipped)
	assert.Zero(t, res.Mails)

	// By list (the default): shared@ gets one mail per constituency.
	st2, cs2 := newSizeStore(t, filepath.Join(t.TempDir(), "s2.db"))
	r2 := newRelay(t)
	res, err = mail.Deliver(ctx, st2, cs2, sizeDay, options(r2, nil))
	require.NoError(t, err)
	assert.Equal(t, 4, res.Mails)
	_, err = mail.Deliver(ctx, st2, cs2, sizeDay, mail.Options{MessageOptions: opt.MessageOptions, Relay: opt.Relay, Group: "everyone"})
	assert.ErrorIs(t, err, mail.ErrOptions)
}

// maxSize is the tests' cap: big_net's report zipped does not fit.
const maxSize = 16<<10 + 24<<10

// TestOversizeURL: above the cap a report goes by its URL only; in a
// contact's mail the reports that fit are attached, the rest by URL.
func TestOversizeURL(t *testing.T) {
	st, cs := newSizeStore(t, filepath.Join(t.TempDir(), "s.db"))
	r := newRelay(t)
	opt := options(r, nil)
	opt.Group, opt.MaxSize = mail.GroupContact, maxSize
	res, err := mail.Deliver(context.Background(), st, cs, sizeDay, opt)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Mails)
	for _, m := range r.mails() {
		p := parse(t, m)
		assert.LessOrEqual(t, p.size, maxSize)
		assert.NotContains(t, p.files, fileOf("big_net"))
		assert.Contains(t, p.text, "The report (CSV): "+fileOf("big_net"))
		if p.to == "shared@cert.example" {
			assert.Len(t, p.files, 2, "small_a and small_b attached")
			assert.Equal(t, reportCSV(t, st, "small_b"), string(p.files[fileOf("small_b")]))
		}
	}
}

// TestOversizeSplit: above the cap a report goes in parts, each under
// the cap, which put together are the report; a part that fails is
// sent again alone, under its Message-ID, by the next run.
func TestOversizeSplit(t *testing.T) {
	st, cs := newSizeStore(t, filepath.Join(t.TempDir(), "s.db"))
	r := newRelay(t)
	opt := options(r, nil)
	opt.Group, opt.MaxSize, opt.Oversize = mail.GroupContact, maxSize, mail.OversizeSplit
	opt.Concurrency, opt.Attempts = 1, 1
	r.answers["noc@big.example"] = []int{250, 451} // part 1 accepted, part 2 put off
	ctx := context.Background()
	res, err := mail.Deliver(ctx, st, cs, sizeDay, opt)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Failed, "%+v", res.Events)
	failedID := ""
	parts := 0
	for _, e := range res.Events {
		if e.Status == store.Failed {
			assert.Equal(t, 2, e.Part)
			failedID = e.MessageID
		}
		if e.Constituency == "big_net" {
			parts = e.Parts
		}
	}
	require.GreaterOrEqual(t, parts, 2)

	res, err = mail.Deliver(ctx, st, cs, sizeDay, opt)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Sent, "only the failed part, %+v", res.Events)
	assert.Equal(t, 1, res.Mails)

	byTo := map[string][]parsed{}
	for _, m := range r.mails() {
		p := parse(t, m)
		assert.LessOrEqual(t, p.size, maxSize, p.subject)
		byTo[p.to] = append(byTo[p.to], p)
	}
	last := byTo["noc@big.example"][len(byTo["noc@big.example"])-1]
	assert.Equal(t, failedID, last.id, "the part sent again keeps its Message-ID")
	want := reportCSV(t, st, "big_net")
	header, _, _ := strings.Cut(want, "\n")
	for _, to := range []string{"noc@big.example", "shared@cert.example"} {
		var got []parsed
		for _, p := range byTo[to] {
			if strings.Contains(p.subject, "big_net") {
				got = append(got, p)
			}
		}
		require.Len(t, got, parts, to)
		sort.Slice(got, func(i, j int) bool { return got[i].subject < got[j].subject })
		var b strings.Builder
		b.WriteString(header + "\n")
		for k, p := range got {
			assert.Equal(t, fmt.Sprintf("[big_net] Shadowserver big_net NTP Version Report: %s (part %d of %d)", sizeDay, k+1, parts), p.subject)
			csv := string(p.files[fileOf("big_net")])
			body, ok := strings.CutPrefix(csv, header+"\n")
			require.True(t, ok, "each part has the header")
			b.WriteString(body)
		}
		assert.Equal(t, want, b.String(), "the parts put together are the report")
	}
	// shared@'s small reports went together, in one mail.
	smalls := 0
	for _, p := range byTo["shared@cert.example"] {
		if len(p.files) == 2 {
			smalls++
		}
	}
	assert.Equal(t, 1, smalls)
}

// TestOverlappingRuns: two programs mailing the same day at once, each
// with its own connection to the store: every report reaches every
// contact once.
func TestOverlappingRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st, cs := newSizeStore(t, path)
	st2, err := store.Open(context.Background(), path)
	require.NoError(t, err)
	defer st2.Close()
	r := newRelay(t)
	r.setHook(func([]string) { time.Sleep(30 * time.Millisecond) })
	var wg sync.WaitGroup
	var results [2]mail.Result
	for i, s := range []*store.Store{st, st2} {
		wg.Go(func() {
			opt := options(r, nil)
			opt.Concurrency = 2
			var err error
			results[i], err = mail.Deliver(context.Background(), s, cs, sizeDay, opt)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, m := range r.mails() {
		p := parse(t, m)
		seen[p.to+" "+p.subject]++
	}
	assert.Len(t, seen, 4)
	for k, n := range seen {
		assert.Equal(t, 1, n, "%s received %d times", k, n)
	}
	t.Logf("busy %d+%d skipped %d+%d", results[0].Busy, results[1].Busy, results[0].Skipped, results[1].Skipped)
	assert.Equal(t, 4, results[0].Sent+results[1].Sent)
	assert.Equal(t, 4, results[0].Busy+results[1].Busy+results[0].Skipped+results[1].Skipped, "the other run left each one alone")
}

// TestDKIMAlignment: a signing domain not From's is refused; the
// oversigned fields cannot be added on the way.
func TestDKIMAlignment(t *testing.T) {
	d, pub := testKey(t)
	rep := &mail.Report{List: "example_net", Type: report.ScanNTP, Day: sizeDay, FileName: fileOf("example_net"),
		CSV: []byte("a,b\n1,2\n"), Rows: 1, URL: "https://reports.example/dl/x"}
	for from, ok := range map[string]bool{
		"autoreports@reports.example":      true,
		"autoreports@mail.reports.example": true, // a parent domain signs
		"autoreports@example.net":          false,
		"autoreports@badreports.example":   false,
	} {
		_, _, err := mail.Build([]*mail.Report{rep}, []string{"noc@example.net"}, mail.MessageOptions{From: from, DKIM: d})
		if ok {
			assert.NoError(t, err, from)
		} else {
			assert.ErrorIs(t, err, mail.ErrDKIMAlignment, from)
		}
	}
	unaligned := *d
	unaligned.Unaligned = true
	_, _, err := mail.Build([]*mail.Report{rep}, []string{"noc@example.net"}, mail.MessageOptions{From: "a@example.net", DKIM: &unaligned})
	assert.NoError(t, err)

	msg, _, err := mail.Build([]*mail.Report{rep}, []string{"noc@example.net"}, mail.MessageOptions{From: "autoreports@reports.example", DKIM: d})
	require.NoError(t, err)
	verify := func(m []byte) error {
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(m), &dkim.VerifyOptions{LookupTXT: func(string) ([]string, error) {
			return []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
		}})
		if err != nil {
			return err
		}
		if len(vs) != 1 {
			return errors.New("not one signature")
		}
		return vs[0].Err
	}
	require.NoError(t, verify(msg))
	for _, field := range []string{"Subject: forged", "From: ceo@reports.example", "To: other@example.net", "Message-ID: <x@y>", "Date: Mon, 30 Nov 2026 00:00:00 +0000"} {
		assert.Error(t, verify(append([]byte(field+"\r\n"), msg...)), field)
	}
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}
