package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/api"
	"github.com/ntpctl/ntpctl/report/store"
)

// Options configure Deliver. MessageOptions.From is required, and one of
// Relay and DryRun.
type Options struct {
	MessageOptions
	// Relay sends the mails.
	Relay *Relay
	// DryRun, when set, writes each mail as an .eml file into this
	// directory instead of sending it, and logs nothing (the reports'
	// download tokens are made, as the URLs in the mails need them).
	DryRun string
	// DownloadURL is the base of the download URLs (the report service's
	// <dl-base>/, ending in "/").
	DownloadURL string
	// Concurrency bounds the mails in flight; 0 means 4.
	Concurrency int
	// Attempts is how many times one run tries a mail that fails
	// temporarily (4xx, relay unreachable); 0 means 3. A mail still
	// failing is tried again by the next run.
	Attempts int
	// Backoff is the wait before the second attempt, doubled for each
	// further one; 0 means 2 s.
	Backoff time.Duration
	// MaxAttachment is the largest report (CSV bytes) attached; a larger
	// one goes by its URL only. 0 means 10 MiB.
	MaxAttachment int
	// Types are the report types to send; nil means all four.
	Types []report.Type
}

// Event is what Deliver did with one report for one contact.
type Event struct {
	Constituency string
	Type         report.Type
	Contact      string
	Status       store.MailStatus // or "skipped" when the log says it was done, "written" for a dry run
	MessageID    string
	Answer       string
	Attempts     int
	File         string // the .eml file of a dry run
}

// Result sums up a Deliver call.
type Result struct {
	Events                                   []Event
	Sent, Failed, Rejected, Skipped, Written int
}

// Statuses of an Event that are not the log's.
const (
	Skipped store.MailStatus = "skipped"
	Written store.MailStatus = "written"
)

// ErrNoRelay: Options has neither a Relay nor DryRun.
var ErrNoRelay = errors.New("mail: no relay and no dry run")

// job is one mail to send: one report to one contact.
type job struct {
	rep     *Report
	runID   int64
	contact string
	attach  store.Attach
	prev    store.Mailing // the log's entry, if any
}

// Deliver sends each constituency's reports of day (YYYY-MM-DD) to its
// contacts: one mail per constituency, report type and contact, none for
// an empty report (or an empty delta), the delta on a constituency's
// delta days. The delivery log in the store makes it resumable: a mail
// the relay accepted is never sent again, one that failed temporarily is
// retried, one rejected (5xx) is not; a mail whose run stopped between
// handing it over and recording the answer is sent again with the same
// Message-ID.
func Deliver(ctx context.Context, st *store.Store, cs *store.Constituencies, day string, opt Options) (Result, error) {
	var res Result
	if opt.Relay == nil && opt.DryRun == "" {
		return res, ErrNoRelay
	}
	if opt.DryRun == "" {
		if err := opt.Relay.Check(); err != nil {
			return res, err
		}
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 4
	}
	if opt.Attempts <= 0 {
		opt.Attempts = 3
	}
	if opt.Backoff <= 0 {
		opt.Backoff = 2 * time.Second
	}
	if opt.MaxAttachment <= 0 {
		opt.MaxAttachment = 10 << 20
	}
	types := opt.Types
	if types == nil {
		types = []report.Type{report.ScanNTP, report.Scan6NTP, report.ScanNTPMonitor, report.Scan6NTPMonitor}
	}
	var jobs []job
	for i := range cs.List {
		c := &cs.List[i]
		if len(c.Contacts) == 0 {
			continue
		}
		for _, t := range types {
			run, err := st.RunOf(ctx, day, t)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return res, err
			}
			counts, err := st.RowCounts(ctx, run.ID, c.Name)
			if err != nil {
				return res, err
			}
			if counts[t] == 0 {
				continue // no mail for an empty report
			}
			delta := c.DeltaOn(run.Started.UTC())
			var csv bytes.Buffer
			n, err := st.WriteReport(ctx, &csv, store.ReportQuery{RunID: run.ID, Type: t, Constituency: c.Name, Delta: delta})
			if err != nil {
				return res, err
			}
			if n == 0 {
				continue // nothing changed on a delta day
			}
			f, err := st.Publish(ctx, run.ID, t, c.Name, delta, api.FileName(run.Started, t, c))
			if err != nil {
				return res, err
			}
			rep := &Report{List: c.Name, Type: t, Day: day, FileName: f.Name, CSV: csv.Bytes(), Rows: n,
				URL: opt.DownloadURL + f.Token, Delta: delta}
			attach := c.Delivery.Attach
			if attach == "" {
				attach = store.AttachZip
			}
			if csv.Len() > opt.MaxAttachment {
				attach = store.AttachURL
			}
			seen := map[string]bool{}
			for _, contact := range c.Contacts {
				// One mail per address, however often the file names it.
				if k := strings.ToLower(contact); seen[k] {
					continue
				} else {
					seen[k] = true
				}
				j := job{rep: rep, runID: run.ID, contact: contact, attach: attach}
				if opt.DryRun == "" {
					prev, err := st.Mailing(ctx, run.ID, t, c.Name, contact)
					switch {
					case err == nil:
						j.prev = prev
					case !errors.Is(err, store.ErrNotFound):
						return res, err
					}
					if prev.Status == store.Sent || prev.Status == store.Rejected {
						res.Events = append(res.Events, Event{Constituency: c.Name, Type: t, Contact: contact, Status: Skipped,
							MessageID: prev.MessageID, Answer: prev.Answer, Attempts: prev.Attempts})
						res.Skipped++
						continue
					}
				}
				jobs = append(jobs, j)
			}
		}
	}
	events := make([]Event, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, opt.Concurrency)
	for i := range jobs {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			events[i], errs[i] = deliverOne(ctx, st, &jobs[i], &opt)
		})
	}
	wg.Wait()
	for i, e := range events {
		if errs[i] != nil {
			return res, errs[i]
		}
		if e.Status == "" {
			continue // not started: cancelled
		}
		res.Events = append(res.Events, e)
		switch e.Status {
		case store.Sent:
			res.Sent++
		case store.Failed, store.Sending:
			res.Failed++
		case store.Rejected:
			res.Rejected++
		case Written:
			res.Written++
		}
	}
	return res, ctx.Err()
}

// deliverOne builds and sends (or writes) one mail, logging each step.
func deliverOne(ctx context.Context, st *store.Store, j *job, opt *Options) (Event, error) {
	e := Event{Constituency: j.rep.List, Type: j.rep.Type, Contact: j.contact}
	mo := opt.MessageOptions
	mo.Attach = j.attach
	mo.MessageID = j.prev.MessageID // a mail sent again keeps its Message-ID
	msg, id, err := Build(j.rep, []string{j.contact}, mo)
	if err != nil {
		// A contact the file has but no mail can be addressed to: this
		// one is rejected, the others go on.
		e.Status, e.Answer = store.Rejected, err.Error()
		if opt.DryRun != "" {
			return e, nil
		}
		return e, st.RecordMailing(ctx, store.Mailing{RunID: j.runID, Type: j.rep.Type, Constituency: j.rep.List, Contact: j.contact,
			Status: store.Rejected, Answer: err.Error(), Attempts: j.prev.Attempts})
	}
	e.MessageID = id
	if opt.DryRun != "" {
		name := fmt.Sprintf("%s-%s-%s-%s.eml", j.rep.Day, j.rep.Type, j.rep.List, fileToken(j.contact))
		e.File = filepath.Join(opt.DryRun, name)
		e.Status = Written
		return e, os.WriteFile(e.File, msg, 0o644)
	}
	m := store.Mailing{RunID: j.runID, Type: j.rep.Type, Constituency: j.rep.List, Contact: j.contact, MessageID: id, Attempts: j.prev.Attempts}
	backoff := opt.Backoff
	for attempt := 0; attempt < opt.Attempts; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				// The log says failed: the next run goes on.
				e.Status, e.Answer, e.Attempts = m.Status, m.Answer, m.Attempts
				return e, nil
			}
			backoff *= 2
		}
		m.Attempts++
		m.Status, m.Answer = store.Sending, ""
		if err := st.RecordMailing(ctx, m); err != nil {
			return e, err
		}
		answer, err := opt.Relay.Send(ctx, envelopeFrom(opt.From), []string{j.contact}, msg)
		var se *SendError
		switch {
		case err == nil:
			m.Status, m.Answer = store.Sent, answer
		case errors.Is(err, ErrRelayConfig):
			return e, err
		case errors.As(err, &se) && se.Permanent:
			m.Status, m.Answer = store.Rejected, se.Error()
		case errors.As(err, &se) && se.Uncertain:
			// Perhaps accepted: left "sending", the next run sends it
			// again under the same Message-ID; not again in this one.
			m.Status, m.Answer = store.Sending, se.Error()
		default:
			m.Status, m.Answer = store.Failed, err.Error()
		}
		// Recorded even when ctx has ended: what the relay said stands.
		if err := st.RecordMailing(context.WithoutCancel(ctx), m); err != nil {
			return e, err
		}
		if m.Status != store.Failed || ctx.Err() != nil {
			break
		}
	}
	e.Status, e.Answer, e.Attempts = m.Status, m.Answer, m.Attempts
	return e, nil
}

// envelopeFrom is the bare address of a From header's value.
func envelopeFrom(from string) string {
	if a, err := netmail.ParseAddress(from); err == nil {
		return a.Address
	}
	return from
}

// fileToken makes an address usable in a file name.
func fileToken(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '@' || r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, s)
}
