package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/report"
)

// scan is one run of the scanner: its targets, prober settings,
// enrichment and output.
type scan struct {
	opts           *options
	stdout, stderr io.Writer

	set      ntpctl.TargetSet
	seq      iter.Seq[netip.AddrPort] // the shard's targets, permuted
	size     uint64                   // targets in this shard (estimated for large sharded scans)
	exact    bool                     // size is exact
	has6     bool
	port     uint16
	seed     uint64
	cfg      ntpctl.Config
	enricher enrich.Enricher // nil: no enrichment
	closers  []io.Closer
	dir      string
	date     time.Time
	started  time.Time
	// create creates an output file; nil means os.Create. Tests use it
	// to give the writer a full disk.
	create func(name string) (*os.File, error)

	// probes are the probes that run, monitor first.
	probes []side
	// observers see every result as the writers take it, from their
	// goroutines: what a program built on this one would hook into. The
	// lab's self-check (lab.go) is one.
	observers []func(probe string, o *ntpctl.Outcome, reportable bool)
	// head and foot, when set, write lines before and after the
	// summary's counts (the lab's description and check).
	head, foot func(w io.Writer, interrupted bool)
	// beforeFinish, when set, runs when every result is written and the
	// files are not yet closed (a test measures the heap then).
	beforeFinish func()

	// blocked counts the target addresses the blocklists took out before
	// the scan; blockedSet holds them (for -json-all), bl judged them.
	blocked uint64
	// limited is set when -max-targets cut the targets short: the scan
	// covers only part of its ranges.
	limited    bool
	blockedSet ntpctl.TargetSet
	bl         *ntpctl.Blocklist

	enrichErrs  atomic.Uint64
	enrichFirst sync.Once
	prog        *progress
}

// newScan prepares a scan of the targets of opts.
func newScan(ctx context.Context, o *options, stdout, stderr io.Writer) (*scan, error) {
	s := &scan{opts: o, stdout: stdout, stderr: stderr, port: uint16(o.port), started: time.Now()}
	for _, t := range o.targets {
		if err := s.set.AddString(t); err != nil {
			return nil, usageError{err}
		}
	}
	for _, name := range o.targetFiles {
		if err := readFile(name, func(r io.Reader) error { _, err := s.set.ReadFrom(r); return err }); err != nil {
			return nil, usageError{err}
		}
	}
	bl := &ntpctl.Blocklist{AllowLoopback: o.allowLoopback, AllowPrivate: o.allowPrivate}
	if o.allowPrivate {
		fmt.Fprintln(s.stderr, "scanner: -allow-private: the private-use ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) are scanned; make sure they are your own networks")
	}
	for _, name := range o.blockFiles {
		if err := readFile(name, bl.ReadDeny); err != nil {
			return nil, usageError{err}
		}
	}
	for _, name := range o.allowFiles {
		if err := readFile(name, bl.ReadAllow); err != nil {
			return nil, usageError{err}
		}
	}
	if err := s.checkTargets(bl); err != nil {
		return nil, err
	}
	// The rate, concurrency and source addresses: prepare (proberConfig).
	s.cfg = ntpctl.Config{Retries: o.retries, Timeout: o.timeout, Quiet: o.quiet,
		Senders: o.senders, Blocklist: bl, Port: s.port}
	e, closers, err := buildEnricher(o)
	if err != nil {
		for _, c := range closers {
			_ = c.Close()
		}
		return nil, err
	}
	s.enricher, s.closers = e, closers
	if err := s.prepare(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// prepare sizes the shard, picks the seed and makes the output directory
// and the probers.
func (s *scan) prepare() error {
	o := s.opts
	s.seed = o.seed
	if s.seed == 0 {
		s.seed = rand.Uint64()
	}
	total := s.set.Len()
	if total.Sign() == 0 {
		return usagef("no targets")
	}
	if !total.IsUint64() || total.Uint64() > ntpctl.MaxPermutation {
		return usagef("%s targets are more than one scan can permute (%d); split them into several runs", total, uint64(ntpctl.MaxPermutation))
	}
	n := total.Uint64()
	var err error
	if s.seq, err = s.set.Permuted(ntpctl.PermuteOptions{Port: s.port, Seed: s.seed, Shard: o.shard, Shards: o.shards}); err != nil {
		return usageError{err}
	}
	s.size, s.exact = shardSize(n, s.seed, o.shard, o.shards)
	for _, r := range s.set.Ranges() {
		s.has6 = s.has6 || r.First.Is6()
	}
	s.limitTargets()
	if s.cfg, err = s.proberConfig(s.cfg); err != nil {
		return err
	}
	if o.habits.dryrun {
		return nil // no directory, no prober: dryRun only lists the targets
	}
	s.date = s.started.UTC()
	if !s.opts.date.IsZero() {
		s.date = s.opts.date.UTC()
	}
	if s.dir == "" {
		s.dir = o.out
		if s.dir == "" {
			s.dir = "ntpctl-scan-" + s.started.UTC().Format("20060102-150405")
		}
	}
	if err := s.prepareDir(); err != nil {
		return err
	}
	return s.newProbes()
}

// newProbes makes the probes -probes asks for and connects their feeds:
// with -discover, the Mode 3 probe gives the control queries the
// targets that answered it; READVAR gives the MRU list the servers that
// answered it. The others take the scan's targets.
func (s *scan) newProbes() error {
	o := s.opts
	byName := map[string]side{}
	for _, name := range probeNames {
		if !o.probeSet[name] {
			continue
		}
		var p side
		var err error
		switch name {
		case monitorKind.name:
			p, err = newProbeRun(s, &monitorKind)
		case versionKind.name:
			p, err = newProbeRun(s, &versionKind)
		case mruKind.name:
			p, err = newProbeRun(s, &mruKind)
		case timeKind.name:
			p, err = newProbeRun(s, &timeKind)
		}
		if err != nil {
			return err
		}
		byName[name] = p
		s.probes = append(s.probes, p)
	}
	for _, p := range s.probes {
		if giver := o.feeder(p.name()); giver != "" {
			f := newFeed()
			p.takeFrom(f)
			byName[giver].feeds(f)
		}
	}
	return nil
}

// prepareDir makes the output directory, which must be empty: a second
// scan into a reused directory would leave the first one's files (its
// scan6_ reports, its splits) beside its own, and a CERT would mail
// stale rows. With -force, the files this scan would write, by name,
// are removed, and nothing else. Errors are the user's: exit status 2.
func (s *scan) prepareDir() error {
	if s.dir == "-" {
		return usagef("-out -: the scanner writes several files (the reports, the JSON lines, the statistics): give a directory")
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return usagef("-out %s: %v", s.dir, errors.Unwrap(err))
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return usagef("-out %s: %v", s.dir, err)
	}
	if len(entries) == 0 {
		return s.checkWritable()
	}
	if !s.opts.force {
		return usagef("-out %s is not empty: a reused directory would mix two scans' files; give a new one, or -force to replace this scan's files in it", s.dir)
	}
	var names []string
	for _, t := range reportTypes {
		names = append(names, report.FileName(s.date, t, s.opts.id))
	}
	base := s.baseName()
	names = append(names, base+".jsonl", base+"-stats.json", base+"-stats.txt")
	for _, n := range names {
		for _, p := range []string{filepath.Join(s.dir, n), filepath.Join(s.dir, "."+n+".part")} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return usageError{fmt.Errorf("-out %s -force: cannot replace %s: %w", s.dir, n, errors.Unwrap(err))}
			}
		}
	}
	for _, sub := range []string{"by-asn", "by-country"} {
		// The split files of this date and ID: DATE-TYPE-ID-KEY.csv.
		for _, t := range reportTypes {
			prefix := strings.TrimSuffix(report.FileName(s.date, t, s.opts.id+"-x"), "x.csv")
			matches, _ := filepath.Glob(filepath.Join(s.dir, sub, prefix+"*.csv"))
			for _, m := range matches {
				if err := os.Remove(m); err != nil {
					return usageError{fmt.Errorf("-out %s -force: cannot replace %s: %w", s.dir,
						filepath.Join(sub, filepath.Base(m)), errors.Unwrap(err))}
				}
			}
		}
	}
	return s.checkWritable()
}

// reportTypes are the report types a scan may write.
var reportTypes = []report.Type{report.ScanNTPMonitor, report.Scan6NTPMonitor, report.ScanNTP, report.Scan6NTP,
	report.ScanNTPMRU, report.Scan6NTPMRU, report.ScanNTPAccessible, report.Scan6NTPAccessible}

// checkWritable makes and removes a file in the output directory, so
// that a directory the scan cannot write to is refused before anything
// is sent.
func (s *scan) checkWritable() error {
	f, err := os.CreateTemp(s.dir, ".ntpctl-write-test-*")
	if err != nil {
		return usagef("-out %s: cannot write there: %v", s.dir, errors.Unwrap(err))
	}
	name := f.Name()
	err = errors.Join(f.Close(), os.Remove(name))
	if err != nil {
		return usagef("-out %s: %v", s.dir, err)
	}
	return nil
}

// checkTargets refuses targets that are only loopback without
// -allow-loopback, says when only -allow-private would leave targets,
// and takes the blocked space out of the targets, so it
// is never iterated.
func (s *scan) checkTargets(bl *ntpctl.Blocklist) error {
	loop := ntpctl.Blocklist{NoBuiltin: true}
	for _, r := range s.set.Ranges() {
		if !bl.AllowLoopback && loop.Reason(r.First) == "loopback" && loop.Reason(r.Last) == "loopback" {
			return usagef("%s is loopback: scanning it needs -allow-loopback (or run the lab: no arguments)", r)
		}
	}
	before := s.set.Len()
	if before.Sign() == 0 {
		return usagef("no targets: the files given hold none")
	}
	s.blockedSet = bl.Removed(&s.set)
	s.bl = bl
	all := s.set
	s.set = bl.Apply(&all)
	after := s.set.Len()
	if after.Sign() == 0 {
		if !bl.AllowPrivate {
			private := *bl
			private.AllowPrivate = true
			if kept := private.Apply(&all); kept.Len().Sign() > 0 {
				return usagef("every target is blocked: %s, which need -allow-private (only for your own networks)",
					bigPlural(kept.Len(), "is a private-use address", "of them are private-use addresses"))
			}
		}
		return usagef("every target is blocked (IANA special-purpose ranges, loopback, -blocklist or -allowlist)")
	}
	if blocked := new(big.Int).Sub(before, after); blocked.Sign() > 0 {
		s.blocked = blocked.Uint64()
		if !blocked.IsUint64() {
			s.blocked = ^uint64(0)
		}
		verb := "are"
		if blocked.IsInt64() && blocked.Int64() == 1 {
			verb = "is"
		}
		fmt.Fprintf(s.stderr, "scanner: %s of %s %s blocked (IANA special-purpose ranges, loopback, -blocklist or -allowlist) and not scanned\n",
			blocked, bigPlural(before, "target address", "target addresses"), verb)
	}
	return nil
}

// readFile opens name ("-" is stdin) and hands it to read, naming the
// file in an error.
func readFile(name string, read func(io.Reader) error) error {
	if name == "-" {
		return read(os.Stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := read(f); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// buildEnricher chains the enrichment the flags ask for, cached and
// bounded; nil when none was asked for.
func buildEnricher(o *options) (enrich.Enricher, []io.Closer, error) {
	var chain enrich.Chain
	var closers []io.Closer
	limit := enrich.LimitOptions{MaxConcurrent: o.enrichWorkers, Timeout: o.enrichTimeout}
	for _, name := range o.static {
		st, err := enrich.LoadStatic(name)
		if err != nil {
			return nil, closers, usageError{err}
		}
		chain = append(chain, st)
	}
	for _, name := range o.mmdb {
		db, err := enrich.OpenMMDB(name, enrich.LayoutAuto)
		if err != nil {
			return nil, closers, usageError{fmt.Errorf("%s: %w", name, err)}
		}
		closers = append(closers, db)
		chain = append(chain, db)
	}
	if o.cymru {
		server := o.cymruServer
		if server == "" {
			server = o.rdnsServer
		}
		chain = append(chain, enrich.Limit(&enrich.Cymru{Server: server}, limit))
	}
	if o.rdns {
		chain = append(chain, enrich.Limit(&enrich.ReverseDNS{Server: o.rdnsServer}, limit))
	}
	if len(chain) == 0 {
		return nil, closers, nil
	}
	return enrich.NewCache(chain, enrich.CacheOptions{}), closers, nil
}

func (s *scan) close() {
	for _, c := range s.closers {
		_ = c.Close()
	}
	s.closers = nil
}

// targets returns the shard's targets in permuted order: the same
// sequence, in the same order, for every probe that takes the scan's
// targets (the fed ones take theirs from a feed).
func (s *scan) targets() iter.Seq[netip.AddrPort] { return s.seq }

// exactShardCount is the largest target space whose shards are counted
// exactly before the scan (a fraction of a second); larger ones are
// estimated.
const exactShardCount = 1 << 24

// shardSize returns the number of targets in shard i of count of a space
// of n, and whether it is exact. A shard takes every count-th position of
// the permutation's cycle, which is longer than n, so shards differ
// slightly from n/count: they are counted when that is cheap.
func shardSize(n, seed uint64, i, count int) (uint64, bool) {
	if count == 1 {
		return n, true
	}
	if n <= exactShardCount {
		if pm, err := ntpctl.NewPermutation(n, seed); err == nil {
			if idx, err := pm.Shard(i, count); err == nil {
				k := uint64(0)
				for range idx {
					k++
				}
				return k, true
			}
		}
	}
	size := n / uint64(count)
	if uint64(i) < n%uint64(count) {
		size++
	}
	return size, false
}

// maxBlockedRecords bounds the blocked targets -json-all writes per
// probe: a blocked /8 would be 16 million lines.
const maxBlockedRecords = 1 << 20

// lookup enriches one address; a failure is counted, its first one
// shown, and the result goes on without it.
func (s *scan) lookup(ctx context.Context, a netip.Addr) enrich.Result {
	if s.enricher == nil || ctx.Err() != nil {
		return enrich.Result{}
	}
	e, err := enrich.Lookup(ctx, s.enricher, a)
	if err = enrich.IgnoreNotFound(err); err != nil && ctx.Err() == nil {
		s.enrichErrs.Add(1)
		s.enrichFirst.Do(func() { s.prog.note("enrichment: " + err.Error()) })
	}
	return e
}

// run scans, enriches and writes. It reports whether an interrupt cut
// the scan short.
//
// Each probe runs its own pipeline (probeRun.run): those that take the
// scan's targets over the same targets in the same order, the fed ones
// over what the probe feeding them found (newProbes); they share the
// JSON lines and the enrichment. When a probe's prober fails, the others
// stop sending too and collect what is in flight, so that the reports
// cover the same targets; when a write fails, everything stops at once,
// nothing more can be written.
func (s *scan) run(ctx context.Context, interrupts <-chan struct{}) (interrupted bool, err error) {
	out, err := newOutputs(s)
	if err != nil {
		// Nothing was sent: the output directory is what the user gave.
		return false, usageError{fmt.Errorf("-out %s: %w", s.dir, err)}
	}
	scanCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	enrichCtx, stopEnriching := context.WithCancel(context.Background())
	defer stopEnriching()
	abort := func() {
		for _, p := range s.probes {
			p.abort()
		}
	}
	if s.head == nil {
		about, rate := "", "without a rate limit"
		if !s.exact {
			about = "about "
		}
		if s.opts.rate > 0 {
			rate = fmt.Sprintf("at up to %d requests/s", s.opts.rate)
		}
		fmt.Fprintf(s.stderr, "scanner: scanning %s%s (seed %d, shard %d/%d) %s; reports in %s\n",
			about, plural(int(s.size), "target"), s.seed, s.opts.shard, s.opts.shards, rate, s.dir)
	}
	s.prog = newProgress(s)
	defer s.prog.stop()

	type ended struct{ runErr, writeErr error }
	done := make(chan ended, len(s.probes))
	for _, p := range s.probes {
		go func() {
			runErr, writeErr := p.run(scanCtx, enrichCtx, s.seq, func() {
				stopSending()
				abort()
				stopEnriching()
			})
			if runErr != nil {
				stopSending() // the other probes stop too: the reports cover the same targets
				var sf *sendFailure
				if errors.As(runErr, &sf) {
					abort() // nothing more will go out: no waiting for timeouts
				}
			}
			done <- ended{runErr, writeErr}
		}()
	}
	var runErrs, writeErrs []error
	for left := len(s.probes); left > 0; {
		select {
		case <-interrupts:
			if !interrupted {
				interrupted = true
				stopSending()
				s.prog.note("interrupted: collecting the replies in flight (Ctrl-C again to stop at once)")
				continue
			}
			interrupts = nil
			s.prog.note("interrupted again: finishing now")
			abort()
			stopEnriching()
		case e := <-done:
			left--
			if e.runErr != nil {
				runErrs = append(runErrs, e.runErr)
			}
			if e.writeErr != nil {
				writeErrs = append(writeErrs, e.writeErr)
			}
		}
	}
	s.prog.stop()
	if len(writeErrs) > 0 {
		out.abandon(writeErrs[0])
		// The first error: the others follow from it (the probes
		// share the JSON lines, and one failure stops them all).
		return interrupted, fmt.Errorf("writing the reports: %w (the files in %s hold the results up to the last complete flush)",
			writeErrs[0], s.dir)
	}
	runErr := errors.Join(runErrs...)
	if !interrupted && runErr == nil {
		// Every target was taken: the shard's size is known.
		s.size, s.exact = s.taken(), true
	}
	if s.opts.jsonAll && s.blocked > 0 {
		// -json-all: the blocked ones too, as the prober would have
		// reported them (it never saw them: they were taken out first).
		for _, p := range s.probes {
			if p.input() != nil {
				continue // a fed probe would have been given only targets that answered
			}
			n, err := p.writeBlocked(&s.blockedSet, maxBlockedRecords)
			if err != nil {
				out.abandon(err)
				return interrupted, fmt.Errorf("writing the reports: %w", err)
			}
			if uint64(n) < s.blocked {
				fmt.Fprintf(s.stderr, "scanner: -json-all: the first %d of %d blocked targets are in the JSON lines\n", n, s.blocked)
			}
		}
	}
	if s.beforeFinish != nil {
		s.beforeFinish()
	}
	if err := out.finish(interrupted); err != nil {
		return interrupted, fmt.Errorf("writing the reports: %w", err)
	}
	s.summary(out, interrupted)
	return interrupted, runErr
}

// taken returns the targets the probers took from the sequence.
func (s *scan) taken() uint64 {
	var n uint64
	for _, p := range s.probes {
		n = max(n, p.proberStats().Targets)
	}
	return n
}
