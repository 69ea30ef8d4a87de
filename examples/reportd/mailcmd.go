package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/mail"
	"github.com/ntpctl/ntpctl/report/store"
)

// mailCmd is reportd mail: each constituency's reports of a day to its
// contacts, through a relay (or as .eml files with -dry-run), resumable
// through the store's delivery log.
func mailCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reportd mail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("db", "", "the store")
	csFile := fs.String("constituencies", "", "constituency file: contacts and delivery options")
	day := fs.String("day", "", "the day, YYYY-MM-DD (default: yesterday, UTC)")
	from := fs.String("from", "", `sender, e.g. "NTP reports <autoreports@example.net>"`)
	relay := fs.String("relay", "", "SMTP relay host:port")
	tlsMode := fs.String("tls", string(mail.STARTTLSOpportunistic), "TLS to the relay: opportunistic, starttls (required), tls (implicit), none")
	user := fs.String("user", "", "SMTP AUTH user")
	passFile := fs.String("password-file", "", "file holding the SMTP AUTH password")
	dl := fs.String("dl", "", "download base URL of the report service, ending in / (https://reports.example.net/dl/)")
	dryRun := fs.String("dry-run", "", "write the mails as .eml files into this directory instead of sending them")
	dkimKey := fs.String("dkim-key", "", "DKIM private key (PEM: RSA or Ed25519)")
	dkimDomain := fs.String("dkim-domain", "", "DKIM signing domain (default: the sender's)")
	dkimSelector := fs.String("dkim-selector", "", "DKIM selector")
	maxSize := fs.Int("max-size", 10_000_000, "largest mail in bytes")
	oversize := fs.String("oversize", string(mail.OversizeURL), "a report too large for a mail: url (by its download URL only) or split (in parts, each a mail)")
	group := fs.String("group", string(mail.GroupList), "list: one mail per constituency, type and contact; contact: one per contact and type, with each constituency's report")
	concurrency := fs.Int("concurrency", 4, "mails in flight")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *dsn == "" || *csFile == "" || *from == "" {
		return usagef("mail: -db, -constituencies and -from are required")
	}
	if (*relay == "") == (*dryRun == "") {
		return usagef("mail: name one of -relay and -dry-run")
	}
	if *day == "" {
		*day = time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	}
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	cs, err := store.LoadConstituencies(*csFile)
	if err != nil {
		return err
	}
	opt := mail.Options{MessageOptions: mail.MessageOptions{From: *from}, DownloadURL: *dl, DryRun: *dryRun,
		MaxSize: *maxSize, Oversize: mail.Oversize(*oversize), Group: mail.Grouping(*group), Concurrency: *concurrency}
	if *relay != "" {
		r := &mail.Relay{Addr: *relay, TLS: mail.TLSMode(*tlsMode), Username: *user}
		if *passFile != "" {
			b, err := os.ReadFile(*passFile)
			if err != nil {
				return err
			}
			r.Password = string(trimNL(b))
		}
		if err := r.Check(); err != nil {
			return usageError{err}
		}
		opt.Relay = r
	}
	if *dkimKey != "" {
		k, err := mail.LoadDKIMKey(*dkimKey)
		if err != nil {
			return err
		}
		if *dkimSelector == "" {
			return usagef("mail: -dkim-key needs -dkim-selector")
		}
		opt.DKIM = &mail.DKIM{Domain: *dkimDomain, Selector: *dkimSelector, Key: k}
		if opt.DKIM.Domain == "" {
			opt.DKIM.Domain = domainOf(*from)
		}
	}
	res, err := mail.Deliver(ctx, st, cs, *day, opt)
	for _, e := range res.Events {
		what := string(e.Status)
		if e.Parts > 1 {
			what = fmt.Sprintf("part %d/%d %s", e.Part, e.Parts, what)
		}
		switch {
		case e.File != "":
			what += " " + e.File
		case e.Answer != "":
			what += ": " + e.Answer
		}
		fmt.Fprintf(stdout, "%s %-16s %-24s %s\n", *day, e.Type, report.TerminalSafe(e.Constituency), report.TerminalSafe(e.Contact+" "+what))
	}
	fmt.Fprintf(stdout, "%d mails; reports: %d sent, %d written, %d failed (retried next run), %d rejected, %d done before, %d busy (another run has them)\n",
		res.Mails, res.Sent, res.Written, res.Failed, res.Rejected, res.Skipped, res.Busy)
	return err
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func domainOf(from string) string {
	for i := len(from) - 1; i >= 0; i-- {
		if from[i] == '@' {
			d := from[i+1:]
			if j := len(d) - 1; j >= 0 && d[j] == '>' {
				d = d[:j]
			}
			return d
		}
	}
	return ""
}
