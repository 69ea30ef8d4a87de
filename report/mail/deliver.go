package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	// Group says how a contact of several constituencies gets their
	// reports; "" means GroupList, as Shadowserver does it.
	Group Grouping
	// MaxSize is the largest mail, in bytes; 0 means 10,000,000 (below
	// the usual relay limits: Postfix's 10,240,000, and the 10 MB many
	// mailbox providers take).
	MaxSize int
	// Oversize says what becomes of a report whose attachment would make
	// its mail larger than MaxSize; "" means OversizeURL.
	Oversize Oversize
	// Concurrency bounds the mails in flight; 0 means 4.
	Concurrency int
	// Attempts is how many times one run tries a mail that fails
	// temporarily (4xx, relay unreachable); 0 means 3. A mail still
	// failing is tried again by the next run.
	Attempts int
	// Backoff is the wait before the second attempt, doubled for each
	// further one; 0 means 2 s.
	Backoff time.Duration
	// Lease is how long a run holds its claim on a mail it sends (renewed
	// on each attempt); another run at the same time leaves the mail
	// alone (Busy), and a run that starts after a crash sends it again
	// once the lease has passed. 0 means 10 minutes.
	Lease time.Duration
	// Holder names this run in the claims; "" makes a random name.
	Holder string
	// Types are the report types to send; nil means all four.
	Types []report.Type
}

// Grouping is how a contact's reports are put into mails.
type Grouping string

// The groupings.
const (
	// GroupList: one mail per constituency (list), report type and day.
	GroupList Grouping = "list"
	// GroupContact: one mail per contact, report type and day, carrying
	// the report of each of the contact's constituencies (each its own
	// attachment, named for its constituency).
	GroupContact Grouping = "contact"
)

// Oversize is what becomes of a report too large to attach.
type Oversize string

// The ways with a report too large for a mail.
const (
	// OversizeURL sends the report by its download URL only (what does
	// not fit into a contact's mail goes by URL; the rest is attached).
	OversizeURL Oversize = "url"
	// OversizeSplit sends the report in parts, each a mail of its own
	// with the CSV's header and as many whole rows as fit; a contact's
	// reports that do not fit into one mail go into several.
	OversizeSplit Oversize = "split"
)

// Event is what Deliver did with one report (or one part of it) for one
// contact.
type Event struct {
	Constituency string
	Type         report.Type
	Contact      string
	Part, Parts  int              // as in store.Mailing
	Status       store.MailStatus // or Skipped, Written, Busy
	MessageID    string
	Answer       string
	Attempts     int
	File         string // the .eml file of a dry run
}

// Result sums up a Deliver call, counting Events.
type Result struct {
	Events                                         []Event
	Sent, Failed, Rejected, Skipped, Written, Busy int
	// Mails is how many mails were sent (or written).
	Mails int
}

// Statuses of an Event that are not the log's.
const (
	// Skipped: the log says it was sent, or rejected.
	Skipped store.MailStatus = "skipped"
	// Written: a dry run wrote it.
	Written store.MailStatus = "written"
	// Busy: another run holds the claim on it; left alone.
	Busy store.MailStatus = "busy"
)

// Errors of Deliver.
var (
	// ErrNoRelay: Options has neither a Relay nor DryRun.
	ErrNoRelay = errors.New("mail: no relay and no dry run")
	// ErrOptions: an unknown Group or Oversize.
	ErrOptions = errors.New("mail: bad options")
)

// entry is one constituency's report of one type, for one contact.
type entry struct {
	rep  *Report
	run  *store.Run
	logs []store.Mailing // the log's entries, if any
}

// mailJob is one mail to send: some reports (or one part) to a contact.
type mailJob struct {
	reps    []*Report
	entries []*entry
	contact string
	id      string
}

// Deliver sends each constituency's reports of day (YYYY-MM-DD) to its
// contacts: by default one mail per constituency, report type and
// contact (see Options.Group), none for an empty report (or an empty
// delta), the delta on a constituency's delta days. The delivery log in
// the store makes it resumable: a mail the relay accepted is never sent
// again, one that failed temporarily is retried, one rejected (5xx) is
// not; a mail whose run stopped between handing it over and recording
// the answer is sent again with the same Message-ID. Two runs at once
// do not send the same mail: each claims a mail in the log first.
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
	switch opt.Group {
	case "":
		opt.Group = GroupList
	case GroupList, GroupContact:
	default:
		return res, fmt.Errorf("%w: group %q: want list or contact", ErrOptions, opt.Group)
	}
	switch opt.Oversize {
	case "":
		opt.Oversize = OversizeURL
	case OversizeURL, OversizeSplit:
	default:
		return res, fmt.Errorf("%w: oversize %q: want url or split", ErrOptions, opt.Oversize)
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
	if opt.MaxSize <= 0 {
		opt.MaxSize = 10_000_000
	}
	if opt.Lease <= 0 {
		opt.Lease = 10 * time.Minute
	}
	if opt.Holder == "" {
		var raw [8]byte
		rand.Read(raw[:])
		opt.Holder = hex.EncodeToString(raw[:])
	}
	from, err := netmail.ParseAddress(opt.From)
	if err != nil {
		return res, fmt.Errorf("%w: From %q: %v", ErrAddress, opt.From, err)
	}
	if opt.DKIM != nil {
		if err := opt.DKIM.aligned(from.Address); err != nil {
			return res, err
		}
	}
	types := opt.Types
	if types == nil {
		types = []report.Type{report.ScanNTP, report.Scan6NTP, report.ScanNTPMonitor, report.Scan6NTPMonitor}
	}

	// Each contact's entries, by type, in the order of the file.
	type contactReports struct {
		addr   string
		byType [][]*entry
	}
	runs := make([]*store.Run, len(types)) // the day's run of each type, if any
	for ti, t := range types {
		run, err := st.RunOf(ctx, day, t)
		switch {
		case err == nil:
			runs[ti] = &run
		case !errors.Is(err, store.ErrNotFound):
			return res, err
		}
	}
	var contacts []*contactReports
	byAddr := map[string]*contactReports{}
	for i := range cs.List {
		c := &cs.List[i]
		if len(c.Contacts) == 0 {
			continue
		}
		for ti, t := range types {
			if runs[ti] == nil {
				continue
			}
			rep, err := reportOf(ctx, st, c, day, runs[ti], t, &opt)
			if err != nil {
				return res, err
			}
			if rep == nil {
				continue
			}
			run := runs[ti]
			seen := map[string]bool{}
			for _, addr := range c.Contacts {
				// One mail per address, however often the file names it.
				k := strings.ToLower(addr)
				if seen[k] {
					continue
				}
				seen[k] = true
				cr := byAddr[k]
				if cr == nil {
					cr = &contactReports{addr: addr, byType: make([][]*entry, len(types))}
					byAddr[k] = cr
					contacts = append(contacts, cr)
				}
				cr.byType[ti] = append(cr.byType[ti], &entry{rep: rep, run: run})
			}
		}
	}

	// The mails: each contact's entries not yet done, grouped and split.
	budget := max(opt.MaxSize-16<<10, 4<<10) // room for the headers, the text and a signature
	sp := splitter{budget: budget, def: opt.Attach, parts: map[splitKey][]*Report{}}
	var jobs []mailJob
	for _, cr := range contacts {
		for _, es := range cr.byType {
			var pending []*entry
			for _, e := range es {
				if opt.DryRun == "" {
					logs, err := st.MailingsOf(ctx, e.run.ID, e.rep.Type, e.rep.List, cr.addr)
					if err != nil {
						return res, err
					}
					e.logs = logs
				}
				if done(e.logs) {
					for _, m := range e.logs {
						res.Events = append(res.Events, Event{Constituency: m.Constituency, Type: m.Type, Contact: m.Contact, Part: m.Part, Parts: m.Parts,
							Status: Skipped, MessageID: m.MessageID, Answer: m.Answer, Attempts: m.Attempts})
						res.Skipped++
					}
					continue
				}
				pending = append(pending, e)
			}
			if opt.Group == GroupList {
				for _, e := range pending {
					js, err := sp.plan(cr.addr, []*entry{e}, opt.Oversize)
					if err != nil {
						return res, err
					}
					jobs = append(jobs, js...)
				}
			} else if len(pending) > 0 {
				js, err := sp.plan(cr.addr, pending, opt.Oversize)
				if err != nil {
					return res, err
				}
				jobs = append(jobs, js...)
			}
		}
	}
	for i := range jobs {
		jobs[i].id = messageID(&jobs[i], from.Address)
	}

	results := make([][]Event, len(jobs))
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
			results[i], errs[i] = deliverOne(ctx, st, &jobs[i], &opt)
		})
	}
	wg.Wait()
	for i, events := range results {
		if errs[i] != nil {
			return res, errs[i]
		}
		if len(events) == 0 {
			continue // not started: cancelled
		}
		if s := events[0].Status; s == store.Sent || s == Written {
			res.Mails++
		}
		for _, e := range events {
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
			case Busy:
				res.Busy++
			}
		}
	}
	return res, ctx.Err()
}

// reportOf is a constituency's report of a type in run, nil if it is
// empty.
func reportOf(ctx context.Context, st *store.Store, c *store.Constituency, day string, run *store.Run, t report.Type, opt *Options) (*Report, error) {
	counts, err := st.RowCounts(ctx, run.ID, c.Name)
	if err != nil {
		return nil, err
	}
	if counts[t] == 0 {
		return nil, nil // no mail for an empty report
	}
	delta := c.DeltaOn(run.Started.UTC())
	var csv bytes.Buffer
	n, err := st.WriteReport(ctx, &csv, store.ReportQuery{RunID: run.ID, Type: t, Constituency: c.Name, Delta: delta})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil // nothing changed on a delta day
	}
	f, err := st.Publish(ctx, run.ID, t, c.Name, delta, api.FileName(run.Started, t, c))
	if err != nil {
		return nil, err
	}
	return &Report{List: c.Name, Type: t, Day: day, FileName: f.Name, CSV: csv.Bytes(), Rows: n,
		URL: opt.DownloadURL + f.Token, Delta: delta, Attach: c.Delivery.Attach}, nil
}

// done says whether the log has a report as sent (or rejected) to a
// contact: its whole, or every part.
func done(logs []store.Mailing) bool {
	if len(logs) == 0 {
		return false
	}
	parts := map[int]bool{}
	for _, m := range logs {
		if m.Status != store.Sent && m.Status != store.Rejected {
			return false
		}
		if m.Part == 0 {
			return true
		}
		parts[m.Part] = true
	}
	return len(parts) >= logs[0].Parts
}

// loggedParts is the number of parts the log has a report sent in; 0
// when it was never sent in parts.
func loggedParts(logs []store.Mailing) int {
	for _, m := range logs {
		if m.Part > 0 {
			return m.Parts
		}
	}
	return 0
}

// partDone says whether the log has part k as sent or rejected.
func partDone(logs []store.Mailing, k int) bool {
	for _, m := range logs {
		if m.Part == k && (m.Status == store.Sent || m.Status == store.Rejected) {
			return true
		}
	}
	return false
}

type splitKey struct {
	rep *Report
	n   int
}

// splitter plans mails within a size budget; the parts of a report are
// made once, whoever receives them.
type splitter struct {
	budget int
	def    store.Attach
	parts  map[splitKey][]*Report
}

// plan puts entries (one contact's, of one type) into mails.
func (sp *splitter) plan(contact string, entries []*entry, over Oversize) ([]mailJob, error) {
	var jobs []mailJob
	var cur mailJob
	size := 0
	flush := func() {
		if len(cur.reps) > 0 {
			jobs = append(jobs, cur)
		}
		cur, size = mailJob{contact: contact}, 0
	}
	flush()
	for _, e := range entries {
		n, err := e.rep.attachedSize(sp.def)
		if err != nil {
			return nil, err
		}
		logged := loggedParts(e.logs)
		if logged == 0 && (n <= sp.budget || e.rep.attachOf(sp.def) == store.AttachURL) {
			if size+n > sp.budget && len(cur.reps) > 0 {
				if over == OversizeSplit {
					flush()
				} else {
					n = 256
					cur.reps, cur.entries = append(cur.reps, urlOnly(e.rep)), append(cur.entries, e)
					size += n
					continue
				}
			}
			cur.reps, cur.entries = append(cur.reps, e.rep), append(cur.entries, e)
			size += n
			continue
		}
		if logged == 0 && over == OversizeURL {
			cur.reps, cur.entries = append(cur.reps, urlOnly(e.rep)), append(cur.entries, e)
			size += 256
			continue
		}
		parts, err := sp.split(e.rep, logged)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			if !partDone(e.logs, p.Part) {
				jobs = append(jobs, mailJob{contact: contact, reps: []*Report{p}, entries: []*entry{e}})
			}
		}
	}
	flush()
	return jobs, nil
}

// urlOnly is r sent by its URL alone.
func urlOnly(r *Report) *Report {
	return &Report{List: r.List, Type: r.Type, Day: r.Day, FileName: r.FileName, CSV: r.CSV, Rows: r.Rows, URL: r.URL, Delta: r.Delta,
		Attach: store.AttachURL}
}

// split cuts r into n parts at record boundaries, each with the CSV's
// header; for n 0, into as few as fit the budget each.
func (sp *splitter) split(r *Report, n int) ([]*Report, error) {
	if n > 0 {
		return sp.cut(r, n)
	}
	size, err := r.attachedSize(sp.def)
	if err != nil {
		return nil, err
	}
	n = max(2, (size+sp.budget-1)/sp.budget)
	for {
		parts, err := sp.cut(r, n)
		if err != nil {
			return nil, err
		}
		fits := true
		for _, p := range parts {
			if s, err := p.attachedSize(sp.def); err != nil {
				return nil, err
			} else if s > sp.budget {
				fits = false
				break
			}
		}
		if fits || len(parts) < n || n >= r.Rows {
			return parts, nil
		}
		n += max(1, n/4)
	}
}

// cut cuts r into n parts (fewer if it has fewer rows), made once.
func (sp *splitter) cut(r *Report, n int) ([]*Report, error) {
	k := splitKey{r, n}
	if ps, ok := sp.parts[k]; ok {
		return ps, nil
	}
	head, recs, err := records(r.CSV)
	if err != nil {
		return nil, fmt.Errorf("mail: splitting %s: %w", r.FileName, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("mail: splitting %s: no rows", r.FileName)
	}
	n = min(n, len(recs))
	var ps []*Report
	for i := range n {
		lo, hi := i*len(recs)/n, (i+1)*len(recs)/n
		end := recs[hi-1][1]
		if hi == len(recs) {
			end = int64(len(r.CSV)) // and what follows the last record
		}
		csv := append(append([]byte(nil), head...), r.CSV[recs[lo][0]:end]...)
		ps = append(ps, &Report{List: r.List, Type: r.Type, Day: r.Day, FileName: r.FileName, CSV: csv, Rows: hi - lo,
			URL: r.URL, Delta: r.Delta, Attach: r.Attach, Part: i + 1, Parts: n})
	}
	sp.parts[k] = ps
	return ps, nil
}

// records finds a CSV's header and the byte range of each record after
// it (a quoted field may hold a line break: the CSV reader says where
// records end).
func records(b []byte) (head []byte, recs [][2]int64, err error) {
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	if _, err := cr.Read(); err != nil {
		return nil, nil, err
	}
	start := cr.InputOffset()
	head = b[:start]
	for {
		_, err := cr.Read()
		if err == io.EOF {
			return head, recs, nil
		}
		if err != nil {
			return nil, nil, err
		}
		end := cr.InputOffset()
		recs = append(recs, [2]int64{start, end})
		start = end
	}
}

// messageID is a mail's Message-ID, the same whenever the same run's
// same reports go to the same contact: a mail sent again after an
// unanswered attempt keeps its Message-ID, so that the receiving side
// can drop the copy.
func messageID(j *mailJob, from string) string {
	h := sha256.New()
	e := j.entries[0]
	fmt.Fprintf(h, "%d\x00%d\x00%s\x00%s", e.run.ID, e.run.Started.UnixMicro(), e.rep.Type, strings.ToLower(j.contact))
	for _, r := range j.reps {
		fmt.Fprintf(h, "\x00%s\x00%d\x00%d", r.List, r.Part, r.Parts)
	}
	_, domain, _ := strings.Cut(from, "@")
	return strings.ReplaceAll(j.reps[0].Day, "-", "") + "." + hex.EncodeToString(h.Sum(nil)[:16]) + "@" + domain
}

// rows are the log's entries a mail stands for.
func (j *mailJob) rows() []store.Mailing {
	var ms []store.Mailing
	for i, r := range j.reps {
		e := j.entries[i]
		attempts := 0
		for _, m := range e.logs {
			if m.Part == r.Part {
				attempts = m.Attempts
			}
		}
		ms = append(ms, store.Mailing{RunID: e.run.ID, Type: r.Type, Constituency: r.List, Contact: j.contact,
			Part: r.Part, Parts: max(r.Parts, 1), MessageID: j.id, Attempts: attempts})
	}
	return ms
}

// deliverOne builds and sends (or writes) one mail, logging each step.
func deliverOne(ctx context.Context, st *store.Store, j *mailJob, opt *Options) ([]Event, error) {
	if ctx.Err() != nil {
		return nil, nil // not started
	}
	rows := j.rows()
	events := func(status store.MailStatus, answer, file string) []Event {
		var es []Event
		for _, m := range rows {
			es = append(es, Event{Constituency: m.Constituency, Type: m.Type, Contact: m.Contact, Part: m.Part, Parts: m.Parts,
				Status: status, MessageID: j.id, Answer: answer, Attempts: m.Attempts, File: file})
		}
		return es
	}
	record := func(ctx context.Context, status store.MailStatus, answer string) error {
		for i := range rows {
			rows[i].Status, rows[i].Answer = status, answer
			if err := st.RecordMailing(ctx, rows[i]); err != nil {
				return err
			}
		}
		return nil
	}
	mo := opt.MessageOptions
	mo.MessageID = j.id
	msg, _, err := Build(j.reps, []string{j.contact}, mo)
	if err != nil {
		// A contact the file has but no mail can be addressed to: this
		// one is rejected, the others go on.
		if opt.DryRun != "" {
			return events(store.Rejected, err.Error(), ""), nil
		}
		return events(store.Rejected, err.Error(), ""), record(ctx, store.Rejected, err.Error())
	}
	if opt.DryRun != "" {
		list := j.reps[0].List
		if len(j.reps) > 1 {
			list = "aggregate"
		}
		name := fmt.Sprintf("%s-%s-%s-%s", j.reps[0].Day, j.reps[0].Type, list, fileToken(j.contact))
		if p := j.reps[0]; p.Parts > 1 {
			name += fmt.Sprintf("-part%d", p.Part)
		}
		file := filepath.Join(opt.DryRun, name+".eml")
		return events(Written, "", file), os.WriteFile(file, msg, 0o644)
	}
	status, answer := store.Failed, ""
	backoff := opt.Backoff
	for attempt := 0; attempt < opt.Attempts; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				// The log says failed: the next run goes on.
				return events(status, answer, ""), nil
			}
			backoff *= 2
		}
		for i := range rows {
			rows[i].Attempts++
		}
		ok, err := st.ClaimMailings(ctx, opt.Holder, opt.Lease, rows)
		if err != nil {
			return nil, err
		}
		if !ok {
			return events(Busy, "claimed by another run", ""), nil
		}
		sent, err := opt.Relay.Send(ctx, envelopeFrom(opt.From), []string{j.contact}, msg)
		var se *SendError
		switch {
		case err == nil:
			status, answer = store.Sent, sent
		case errors.Is(err, ErrRelayConfig):
			return nil, err
		case errors.As(err, &se) && se.Permanent:
			status, answer = store.Rejected, se.Error()
		case errors.As(err, &se) && se.Uncertain:
			// Perhaps accepted: left "sending", the next run sends it
			// again under the same Message-ID; not again in this one.
			status, answer = store.Sending, se.Error()
		default:
			status, answer = store.Failed, err.Error()
		}
		// Recorded even when ctx has ended: what the relay said stands.
		if err := record(context.WithoutCancel(ctx), status, answer); err != nil {
			return nil, err
		}
		if status != store.Failed || ctx.Err() != nil {
			break
		}
	}
	return events(status, answer, ""), nil
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
