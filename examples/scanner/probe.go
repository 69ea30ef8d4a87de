package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/netip"
	"sync"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/ntpctl/ntpctl/report"
)

// A kind is one of the scanner's probes and its report: what differs
// between NTP Monitor, NTP Version, NTP MRU and Accessible NTP.
// Everything else is one code path, probeRun, generic over the probe's
// value R and the report's row T.
type kind[R report.Value, T report.Row] struct {
	name    string    // "monitor", "version", "mru" or "time", as -probes and the statistics name it
	title   string    // the report's name and query, for the summary
	found   [2]string // what a row is, for the summary: one, many
	refused string    // what an error reply means, for the summary
	probe   func() ntpctl.Probe[R]
	// row builds the result's row; extra is what the probe that fed the
	// target said of it (the MRU report's version, from READVAR).
	row   func(res ntpctl.Result[R], extra string, e enrich.Result, opt report.BuildOptions) (T, bool)
	count func(*report.Stats, *T)
	// record, when set, completes a JSON line (the MRU clients, with
	// -mru-clients).
	record func(o *options, rec *report.JSONRecord, res *ntpctl.Result[R])
}

var (
	monitorKind = kind[mode7.Reply, report.MonitorRow]{
		name: "monitor", title: "NTP Monitor (Mode 7 monlist)", found: [2]string{"amplifier", "amplifiers"},
		refused: "monlist disabled", probe: func() ntpctl.Probe[mode7.Reply] { return ntpctl.MonList() },
		row: noExtra(report.NewMonitorRow), count: (*report.Stats).AddMonitor,
	}
	versionKind = kind[mode6.Reply, report.VersionRow]{
		name: "version", title: "NTP Version (Mode 6 READVAR)", found: [2]string{"server answers", "servers answer"},
		refused: "a Mode 6 error code", probe: func() ntpctl.Probe[mode6.Reply] { return ntpctl.ReadVar() },
		row: noExtra(report.NewVersionRow), count: (*report.Stats).AddVersion,
	}
	mruKind = kind[ntpctl.MRUResult, report.MRURow]{
		name: "mru", title: "NTP MRU (Mode 6 READ_MRU, of the servers that answered READVAR)",
		found: [2]string{"server lists its clients", "servers list their clients"}, refused: "MRU list refused or nonce only",
		probe: func() ntpctl.Probe[ntpctl.MRUResult] { return ntpctl.MRUList() },
		row:   report.NewMRURow, count: (*report.Stats).AddMRU,
		record: func(o *options, rec *report.JSONRecord, res *ntpctl.Result[ntpctl.MRUResult]) {
			if o.mruClients && rec.MRU != nil {
				rec.MRU.Clients = report.MRUEntries(&res.Value, res.Time)
			}
		},
	}
	timeKind = kind[ntpctl.TimePacket, report.AccessibleRow]{
		name: "time", title: "Accessible NTP (Mode 3 client request)", found: [2]string{"server answers", "servers answer"},
		refused: "a kiss-o'-death", probe: func() ntpctl.Probe[ntpctl.TimePacket] { return ntpctl.Client() },
		row: noExtra(report.NewAccessibleRow), count: (*report.Stats).AddAccessible,
	}
)

// noExtra adapts a row builder that takes nothing from a feeding probe.
func noExtra[R report.Value, T report.Row](build func(ntpctl.Result[R], enrich.Result, report.BuildOptions) (T, bool)) func(ntpctl.Result[R], string, enrich.Result, report.BuildOptions) (T, bool) {
	return func(res ntpctl.Result[R], _ string, e enrich.Result, opt report.BuildOptions) (T, bool) {
		return build(res, e, opt)
	}
}

// side is what the scan needs of a probe, whatever its types.
type side interface {
	// name is the kind's name.
	name() string
	// open creates the probe's report files.
	open(o *outputs) error
	// run probes targets, enriches and writes what comes back until the
	// targets are done or ctx is, and returns the prober's error and the
	// first write error (after which it stops at once).
	run(ctx, enrichCtx context.Context, targets iter.Seq[netip.AddrPort], failed func()) (runErr, writeErr error)
	// abort finishes the targets in flight at once.
	abort()
	// proberStats are the prober's counters, safe to call while it runs.
	proberStats() ntpctl.Stats
	// flush writes what the files have buffered.
	flush() error
	// close finishes the files (the splits included) and names them.
	close() (files []string, err error)
	// abandon cuts the files back to their last complete flush.
	abandon()
	// stats is the probe's part of the statistics file.
	stats() *report.JSONProbeStats
	// summary writes the probe's lines of the summary.
	summary(w io.Writer)
	// rows returns the rows written per file path.
	rows() map[string]int
	// writeBlocked writes a blocked record of each of the first limit
	// addresses of set to the JSON lines, and returns how many it wrote.
	writeBlocked(set *ntpctl.TargetSet, limit int) (int, error)
	// input is the feed the probe takes its targets from, nil when it
	// takes the scan's.
	input() *feed
	// feeds makes the probe give f the targets that answered it, with
	// what it found of them (feedExtra).
	feeds(f *feed)
	// takeFrom makes the probe take its targets from f.
	takeFrom(f *feed)
}

// A feed carries targets from one probe to the next: the discovery
// pass gives the control queries the targets that answered Mode 3, and
// READVAR gives the MRU list the servers that answered it, with their
// version. The giving probe's writer sends; the taking probe's prober
// runs over it (ntpctl.Prober.RunFeed), probing each target as it comes
// while its earlier ones finish. Sending blocks while the feed is full
// (the giver's pipeline then waits, as for a full channel) and stops
// blocking once the taker has returned.
type feed struct {
	f     *ntpctl.Feed
	extra sync.Map // netip.AddrPort → string, until the taker writes the target's result
}

func newFeed() *feed { return &feed{f: ntpctl.NewFeed(4096)} }

// send gives the taker a target, with what the giver found of it.
func (f *feed) send(t netip.AddrPort, extra string) {
	if extra != "" {
		f.extra.Store(t, extra)
	}
	if !f.f.Send(context.Background(), t) {
		f.extra.Delete(t) // the taker has returned: never probed
	}
}

// done says the giver has no more targets.
func (f *feed) done() { f.f.Close() }

// take returns what the giver said of a target, and forgets it.
func (f *feed) take(t netip.AddrPort) string {
	if f == nil {
		return ""
	}
	v, _ := f.extra.LoadAndDelete(t)
	s, _ := v.(string)
	return s
}

// firstSends is how many targets' requests must all have failed to send
// for the scan to stop: the machine cannot send (no route, no address,
// a firewall), and going on would only write errors.
const firstSends = 1000

// sendFailure stops a scan whose first requests all failed to send.
type sendFailure struct {
	n    int
	last error
}

func (e *sendFailure) Unwrap() error { return e.last }

func (e *sendFailure) Error() string {
	return fmt.Sprintf("every one of the first %s failed to send (%v): check the route, the source address and local firewalls",
		plural(e.n, "request"), e.last)
}

// item is one result on its way to the files.
type item[R report.Value] struct {
	res ntpctl.Result[R]
	e   enrich.Result
}

// probeRun is one probe of a scan: its prober, its report files (IPv4 and
// IPv6, and with -split one file per AS or country) and its counts.
type probeRun[R report.Value, T report.Row] struct {
	k      *kind[R, T]
	s      *scan
	prober *ntpctl.Prober[R]
	out    *outputs
	files  [2]*csvFile[T] // IPv4, IPv6
	split  *splitFile[T]  // with -split
	in     *feed          // where the targets come from; nil: the scan's
	outs   []*feed        // the probes this one feeds

	// Written by the writer goroutine, read after run returns.
	sum       report.Stats
	replied   int    // targets that sent any datagram back
	unflushed [2][]T // rows written since their file's last flush: counted in sum once it succeeds
	tried     int    // of the first firstSends targets that were sent to, how many
	sentOK    bool   // one of them did not end with a send error
}

func newProbeRun[R report.Value, T report.Row](s *scan, k *kind[R, T]) (*probeRun[R, T], error) {
	p, err := ntpctl.NewProber(s.cfg, k.probe())
	if err != nil {
		return nil, err
	}
	return &probeRun[R, T]{k: k, s: s, prober: p}, nil
}

func (p *probeRun[R, T]) name() string              { return p.k.name }
func (p *probeRun[R, T]) abort()                    { p.prober.Abort() }
func (p *probeRun[R, T]) proberStats() ntpctl.Stats { return p.prober.Stats() }
func (p *probeRun[R, T]) input() *feed              { return p.in }
func (p *probeRun[R, T]) feeds(f *feed)             { p.outs = append(p.outs, f) }
func (p *probeRun[R, T]) takeFrom(f *feed)          { p.in = f }

func (p *probeRun[R, T]) open(o *outputs) error {
	p.out = o
	s := p.s
	for fam, v6 := range []bool{false, true} {
		if v6 && !s.has6 {
			continue
		}
		typ := report.TypeOf[R](famAddr(v6))
		f, err := openCSV[T](s, typ)
		if err != nil {
			return err
		}
		p.files[fam] = f
	}
	if s.opts.split != "" {
		sp, err := newSplitFile[T](s)
		if err != nil {
			return err
		}
		p.split = sp
	}
	return nil
}

// famAddr is an address of the family, for report.TypeOf.
func famAddr(v6 bool) netip.Addr {
	if v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// run is the probe's pipeline: the prober's Run emits into raw (from its
// own goroutine, so a full channel holds the prober back), the
// enrichment workers move results from raw to enriched, and the writer
// takes them from enriched. raw is closed when Run returns, enriched when
// the workers have drained raw; the writer returns when enriched is
// closed, or at its first error: then the prober is aborted, failed
// tells the scan (which stops the other probes and the enrichment), and
// enriched is drained, so that nothing blocks.
func (p *probeRun[R, T]) run(ctx, enrichCtx context.Context, targets iter.Seq[netip.AddrPort], failed func()) (runErr, writeErr error) {
	s := p.s
	raw := make(chan ntpctl.Result[R], 1024)
	enriched := make(chan item[R], 1024)
	defer func() {
		for _, f := range p.outs {
			f.done() // the probes this one feeds get nothing more
		}
	}()
	go func() {
		defer close(raw)
		emit := func(r ntpctl.Result[R]) error {
			raw <- r
			return nil
		}
		if p.in != nil {
			runErr = p.prober.RunFeed(ctx, p.in.f, emit)
		} else {
			runErr = p.prober.Run(ctx, targets, emit)
		}
	}()
	var workers sync.WaitGroup
	// -enrich-workers is the scan's, shared by the probes.
	for range max(1, s.opts.enrichWorkers/len(s.probes)) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for r := range raw {
				it := item[R]{res: r}
				// Only targets that answered are looked up.
				if r.Answered() {
					it.e = s.lookup(enrichCtx, r.Target.Addr())
				}
				enriched <- it
			}
		}()
	}
	go func() { workers.Wait(); close(enriched) }()

	writeErr = p.consume(enriched)
	if writeErr != nil {
		p.prober.Abort()
		failed()
		for range enriched {
		}
	}
	var sf *sendFailure
	if errors.As(writeErr, &sf) {
		return writeErr, nil // the files are whole: they are finished as usual
	}
	if errors.Is(runErr, context.Canceled) || errors.Is(runErr, ntpctl.ErrAborted) {
		runErr = nil // an interrupt, or another probe's failure: not this probe's error
	}
	return runErr, writeErr
}

// consume writes every item until the channel closes, flushing now and
// then so that the files are nearly complete should the process die.
func (p *probeRun[R, T]) consume(items <-chan item[R]) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case it, ok := <-items:
			if !ok {
				return p.flush()
			}
			if err := p.write(&it); err != nil {
				return err
			}
		case <-tick.C:
			if err := p.flush(); err != nil {
				return err
			}
		}
	}
}

// write writes one result: its row, if it is a finding, and its record
// in the JSON lines.
func (p *probeRun[R, T]) write(it *item[R]) error {
	r := &it.res
	p.sum.AddStatus(r.Status)
	if r.Attempts > 0 && p.tried < firstSends {
		p.tried++
		p.sentOK = p.sentOK || r.Status != ntpctl.StatusSendError
		// (A fed probe's targets are not counted before the scan: it
		// stops only after firstSends.)
		if !p.sentOK && (p.tried == firstSends || p.in == nil && uint64(p.tried) == p.s.size) {
			return &sendFailure{n: p.tried, last: r.Err}
		}
	}
	if r.Answered() {
		p.replied++
	}
	fam := 0
	if r.Target.Addr().Is6() {
		fam = 1
	}
	row, reportable := p.k.row(*r, p.in.take(r.Target), it.e, report.BuildOptions{})
	for _, obs := range p.s.observers {
		obs(p.k.name, &r.Outcome, reportable)
	}
	if r.Answered() && len(p.outs) > 0 {
		extra := feedExtra(&row, reportable)
		for _, f := range p.outs {
			f.send(r.Target, extra)
		}
	}
	if reportable {
		if err := p.files[fam].write(row); err != nil {
			return err
		}
		p.unflushed[fam] = append(p.unflushed[fam], row)
		p.split.write(row)
	}
	if p.s.opts.jsonAll || r.Answered() || r.Status != ntpctl.StatusNoAnswer && r.Status != ntpctl.StatusBlocked {
		// Every target that sent something, or about which something
		// came back (ICMP, forgeries), or whose request could not be
		// sent; -json-all adds the silent and the blocked.
		rec := report.NewRecord(r, it.e)
		if p.k.record != nil {
			p.k.record(p.s.opts, &rec, r)
		}
		return p.out.writeRecord(&rec)
	}
	return nil
}

// feedExtra is what a probe tells the probes it feeds about a target
// that answered it: READVAR's version variable, for the MRU report.
func feedExtra[T report.Row](row *T, reportable bool) string {
	if v, ok := any(row).(*report.VersionRow); ok && reportable {
		return v.Version
	}
	return ""
}

// flush writes out what the files hold; once it succeeds, the rows are
// in the files and counted in the statistics (which say only what the
// files hold, even after a full disk).
func (p *probeRun[R, T]) flush() error {
	p.split.flush() // its failures are its files', not the scan's
	var errs []error
	for fam, f := range p.files {
		if err := f.flush(); err != nil {
			errs = append(errs, err)
			continue
		}
		rows := p.unflushed[fam]
		for i := range rows {
			p.k.count(&p.sum, &rows[i])
		}
		clear(rows)
		p.unflushed[fam] = rows[:0]
	}
	return errors.Join(append(errs, p.out.flushRecords())...)
}

func (p *probeRun[R, T]) close() ([]string, error) {
	var files []string
	var errs []error
	for _, f := range p.files {
		if f != nil {
			errs = append(errs, f.close())
			files = append(files, f.path)
		}
	}
	errs = append(errs, p.split.close())
	return files, errors.Join(errs...)
}

// abandon cuts the reports back to their last complete flush; the split
// files, written row by row, keep the rows they have.
func (p *probeRun[R, T]) abandon() {
	for _, f := range p.files {
		f.abandon()
	}
	_ = p.split.close()
}

func (p *probeRun[R, T]) stats() *report.JSONProbeStats {
	return &report.JSONProbeStats{Report: p.sum.Summary(), Prober: p.prober.Stats(), Replied: p.replied}
}

func (p *probeRun[R, T]) writeBlocked(set *ntpctl.TargetSet, limit int) (int, error) {
	n := 0
	for ap := range set.All(p.s.port) {
		if n == limit {
			break
		}
		res := ntpctl.Result[R]{Outcome: ntpctl.Outcome{Target: ap, Status: ntpctl.StatusBlocked, Time: p.s.started,
			Err: fmt.Errorf("%w: %s", ntpctl.ErrBlocked, p.s.bl.Reason(ap.Addr()))}}
		rec := report.NewRecord(&res, enrich.Result{})
		if err := p.out.writeRecord(&rec); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (p *probeRun[R, T]) rows() map[string]int {
	m := map[string]int{}
	for _, f := range p.files {
		if f != nil {
			m[f.path] = f.flushedRows
		}
	}
	return m
}

func (p *probeRun[R, T]) summary(w io.Writer) {
	r := p.sum.Summary()
	st := p.prober.Stats()
	fmt.Fprintf(w, "\n%s: %s", p.k.title, plural(r.Rows, p.k.found[0], p.k.found[1]))
	if a := r.Amplification; a.Count > 0 {
		fmt.Fprintf(w, ", amplification median %.2f, max %.2f", a.Median, a.Max)
	}
	refused := int(st.Statuses.ServerError)
	fmt.Fprintf(w, "\n  %d more answered with an error (%s), %d sent nothing usable, %s\n",
		refused, p.k.refused, max(0, p.replied-r.Rows-refused), plural(int(st.Statuses.NoAnswer), "was silent", "were silent"))
	if c := st.Statuses; c.Closed+c.Unreachable+c.Prohibited > 0 {
		fmt.Fprintf(w, "  ICMP said: %d closed (port unreachable), %d unreachable, %d prohibited\n",
			c.Closed, c.Unreachable, c.Prohibited)
	}
	if n := st.SendErrors; n > 0 {
		fmt.Fprintf(w, "  %s could not be sent (%s with a send error)\n", plural(int(n), "request"),
			plural(int(st.Statuses.SendError), "target ended", "targets ended"))
	}
	if n := st.Statuses.Spoofed; n > 0 {
		fmt.Fprintf(w, "  %d drew forged replies (spoofing suspected: datagrams answering other requests or at other ports) and are not findings\n", n)
	}
	var top []string
	for i, c := range r.Versions {
		if i == 5 {
			top = append(top, "…")
			break
		}
		top = append(top, fmt.Sprintf("%s (%d)", report.TerminalSafe(c.Key), c.Count)) // a server's banner
	}
	if len(top) > 0 {
		fmt.Fprintf(w, "  daemons: %s\n", joinComma(top))
	}
}
