//go:build linux

package mail_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl/internal/mailtest"
	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/api"
	"github.com/ntpctl/ntpctl/report/mail"
	"github.com/ntpctl/ntpctl/report/store"
)

// imapFetch reads every message of the INBOX with Python's imaplib (an
// independent client), without marking them seen (BODY.PEEK[]).
const imapFetch = `
import base64, imaplib, json, sys
host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
m = imaplib.IMAP4(host, port)
m.login(user, password)
m.select("INBOX", readonly=True)
typ, data = m.search(None, "ALL")
out = []
for num in data[0].split():
    typ, msg = m.fetch(num, "(BODY.PEEK[])")
    out.append(base64.b64encode(msg[0][1]).decode())
m.logout()
json.dump(out, sys.stdout)
`

func readIMAP(t *testing.T, srv *mailtest.Server) [][]byte {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("NTPCTL_REAL_PEERS") == "1" {
			t.Fatal("no python3 to read the mails back (NTPCTL_REAL_PEERS=1 requires it)")
		}
		t.Skip("no python3 to read the mails back")
	}
	host, port, _ := strings.Cut(srv.IMAP, ":")
	out, err := exec.Command(py, "-c", imapFetch, host, port, srv.User, srv.Password).Output()
	require.NoError(t, err)
	var enc []string
	require.NoError(t, json.Unmarshal(out, &enc))
	var msgs [][]byte
	for _, e := range enc {
		b, err := base64.StdEncoding.DecodeString(e)
		require.NoError(t, err)
		msgs = append(msgs, b)
	}
	return msgs
}

// TestThroughMTA: two days of reports through Debian's OpenSMTPD to a
// maildir, read back over IMAP from Dovecot: one mail per non-empty
// report and contact, Shadowserver's subject and headers, the unzipped
// attachment and the download URL both byte-equal to the store's CSV,
// DKIM verifying; an address the MTA refuses is rejected and not tried
// again; with the relay down, the day's mails are logged failed and sent
// once when it is back; a second run sends nothing.
func TestThroughMTA(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil && os.Getenv("NTPCTL_REAL_PEERS") != "1" {
		t.Skip("no python3 to read the mails back")
	}
	srv := mailtest.Start(t, []string{"noc@example.net", "cert@de.example"})
	st, cs := newStore(t)
	ctx := context.Background()

	// The report service, for the download URLs.
	as, err := api.NewServer(st, cs, api.ServerOptions{})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/dl/", as.Downloads())
	hs := httptest.NewServer(mux)
	defer hs.Close()

	d, pub := testKey(t)
	opt := mail.Options{
		MessageOptions: mail.MessageOptions{From: "NTP reports <autoreports@reports.example>", DKIM: d},
		Relay:          &mail.Relay{Addr: srv.SMTP, Timeout: 20 * time.Second},
		DownloadURL:    hs.URL + "/dl/", Backoff: 50 * time.Millisecond,
	}
	res, err := mail.Deliver(ctx, st, cs, "2026-11-29", opt)
	require.NoError(t, err)
	assert.Equal(t, 3, res.Sent, "%+v\n%s", res.Events, srv.Log())
	assert.Equal(t, 2, res.Rejected, "gone@example.net, two reports")
	for _, e := range res.Events {
		if e.Status == store.Rejected {
			assert.Contains(t, e.Answer, "permanent failure: 5")
		}
	}

	// Day 2 with the relay down: failed, kept in the log.
	srv.WaitMails(3)
	srv.StopSMTP()
	opt.Attempts = 2
	res, err = mail.Deliver(ctx, st, cs, "2026-11-30", opt)
	require.NoError(t, err)
	assert.Equal(t, 5, res.Failed, "nothing can be sent, nor refused")
	srv.StartSMTP()
	res, err = mail.Deliver(ctx, st, cs, "2026-11-30", opt)
	require.NoError(t, err)
	assert.Equal(t, 3, res.Sent)
	assert.Equal(t, 2, res.Rejected)
	for _, day := range testDays {
		res, err = mail.Deliver(ctx, st, cs, day, opt)
		require.NoError(t, err)
		assert.Zero(t, res.Sent+res.Failed+res.Rejected, "a second run sends nothing")
		assert.Equal(t, 5, res.Skipped, "the rejected ones are not tried again")
	}

	// What the contacts received, over IMAP.
	srv.WaitMails(6)
	msgs := readIMAP(t, srv)
	require.Len(t, msgs, 6, srv.Log())
	urlRE := regexp.MustCompile(regexp.QuoteMeta(hs.URL) + `/dl/[0-9a-f]{32}`)
	var subjects []string
	for _, raw := range msgs {
		mr, err := gomail.CreateReader(bytes.NewReader(raw))
		require.NoError(t, err)
		subj, err := mr.Header.Subject()
		require.NoError(t, err)
		subjects = append(subjects, subj+" → "+mr.Header.Get("Delivered-To"))
		assert.Equal(t, "list", mr.Header.Get("Precedence"))
		assert.Equal(t, "auto-generated", mr.Header.Get("Auto-Submitted"))
		assert.Regexp(t, `^<[a-z_]+\.reports\.example>$`, mr.Header.Get("List-Id"))

		vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: func(domain string) ([]string, error) {
			if domain != "ntpctl._domainkey.reports.example" {
				return nil, errors.New("no such record")
			}
			return []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
		}})
		require.NoError(t, err)
		require.Len(t, vs, 1)
		assert.NoError(t, vs[0].Err, "DKIM after the MTA added its headers")

		// The attachment and the download are the store's CSV.
		name, body, text := attachment(t, raw)
		if strings.HasSuffix(name, ".zip") {
			body = unzip(t, body)
		}
		day := subj[len(subj)-10:]
		list := subj[1:strings.IndexByte(subj, ']')]
		typ := report.ScanNTP
		if strings.Contains(subj, "Monitor") {
			typ = report.ScanNTPMonitor
		}
		run, err := st.RunOf(ctx, day, typ)
		require.NoError(t, err)
		var want bytes.Buffer
		_, err = st.WriteReport(ctx, &want, store.ReportQuery{RunID: run.ID, Type: typ, Constituency: list})
		require.NoError(t, err)
		assert.Equal(t, want.String(), string(body), subj)
		u := urlRE.FindString(text)
		require.NotEmpty(t, u, text)
		resp, err := http.Get(u)
		require.NoError(t, err)
		dl, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, want.String(), string(dl), "the download URL of %s", subj)
	}
	assert.ElementsMatch(t, []string{
		"[example_net] Shadowserver example_net NTP Version Report: 2026-11-29 → noc@example.net",
		"[example_net] Shadowserver example_net NTP Monitor Report: 2026-11-29 → noc@example.net",
		"[de_hosts] Shadowserver de_hosts NTP Version Report: 2026-11-29 → cert@de.example",
		"[example_net] Shadowserver example_net NTP Version Report: 2026-11-30 → noc@example.net",
		"[example_net] Shadowserver example_net NTP Monitor Report: 2026-11-30 → noc@example.net",
		"[de_hosts] Shadowserver de_hosts NTP Version Report: 2026-11-30 → cert@de.example",
	}, subjects)
}
