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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/internal/lab"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
)

// scan is one run of the scanner: its targets, prober settings,
// enrichment and output.
type scan struct {
	opts           *options
	stdout, stderr io.Writer
	lab            *lab.Lab // nil for a real scan

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

	monitor *ntpctl.Prober[mode7.Reply]
	version *ntpctl.Prober[mode6.Reply]

	enrichErrs  atomic.Uint64
	enrichFirst sync.Once
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
	bl := &ntpctl.Blocklist{AllowLoopback: o.allowLoopback}
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
	s.cfg = ntpctl.Config{Rate: o.probeRate(), Retries: o.retries, Timeout: o.timeout, Quiet: o.quiet,
		Concurrency: o.concurrency, Senders: o.senders, Blocklist: bl, Port: s.port}
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

// newLabScan starts the lab and prepares a scan of it.
func newLabScan(ctx context.Context, o *options, stdout, stderr io.Writer) (*scan, error) {
	l, err := lab.Start(ctx, lab.Config{Hosts: o.labHosts, Seed: o.labSeed})
	if err != nil {
		return nil, err
	}
	s := &scan{opts: o, stdout: stdout, stderr: stderr, lab: l, port: l.Port(), started: time.Now()}
	s.closers = append(s.closers, l)
	for _, t := range l.Targets() {
		s.set.Add(ntpctl.Range{First: t.Addr(), Last: t.Addr()})
	}
	bl := &ntpctl.Blocklist{AllowLoopback: true}
	// The lab answers at once: short waits keep the run to a few seconds,
	// unless the flags ask for others.
	timeout, quiet, retries := time.Second, 300*time.Millisecond, 0
	if o.set["timeout"] {
		timeout = o.timeout
	}
	if o.set["quiet"] {
		quiet = o.quiet
	}
	if o.set["retries"] {
		retries = o.retries
	}
	s.cfg = ntpctl.Config{Rate: o.probeRate(), Retries: retries, Timeout: timeout,
		Quiet: quiet, MaxDuration: 2 * time.Second,
		Concurrency: o.concurrency, Senders: o.senders, Blocklist: bl, Port: s.port}
	static, err := enrich.ParseStatic(strings.NewReader(l.StaticCSV()))
	if err != nil {
		s.close()
		return nil, fmt.Errorf("the lab's enrichment table: %w", err)
	}
	s.enricher = static
	if o.out == "" {
		dir, err := os.MkdirTemp("", "ntpctl-lab-")
		if err != nil {
			s.close()
			return nil, err
		}
		s.dir = dir
	}
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
	s.date = s.started.UTC()
	if s.dir == "" {
		s.dir = o.out
		if s.dir == "" {
			s.dir = "ntpctl-scan-" + s.started.UTC().Format("20060102-150405")
		}
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	if o.monitor() {
		if s.monitor, err = ntpctl.NewProber(s.cfg, ntpctl.MonList()); err != nil {
			return err
		}
	}
	if o.version() {
		if s.version, err = ntpctl.NewProber(s.cfg, ntpctl.ReadVar()); err != nil {
			return err
		}
	}
	return nil
}

// checkTargets refuses targets that are only loopback without
// -allow-loopback, and takes the blocked space out of the targets, so it
// is never iterated.
func (s *scan) checkTargets(bl *ntpctl.Blocklist) error {
	loop := ntpctl.Blocklist{NoBuiltin: true}
	for _, r := range s.set.Ranges() {
		if !bl.AllowLoopback && loop.Reason(r.First) == "loopback" && loop.Reason(r.Last) == "loopback" {
			return usagef("%s is loopback: scanning it needs -allow-loopback (or run the lab: no arguments)", r)
		}
	}
	before := s.set.Len()
	s.set = bl.Apply(&s.set)
	after := s.set.Len()
	if after.Sign() == 0 {
		return usagef("every target is blocked (IANA special-purpose ranges, loopback, -blocklist or -allowlist)")
	}
	if blocked := new(big.Int).Sub(before, after); blocked.Sign() > 0 {
		fmt.Fprintf(s.stderr, "scanner: %s of %s target addresses are blocked (IANA special-purpose ranges, loopback, -blocklist or -allowlist) and are not scanned\n",
			blocked, before)
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
// sequence, in the same order, for both probes.
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

// item is one result on its way to the files.
type item struct {
	mon *ntpctl.Result[mode7.Reply]
	ver *ntpctl.Result[mode6.Reply]
	e   enrich.Result
}

func (it *item) target() netip.AddrPort {
	if it.mon != nil {
		return it.mon.Target
	}
	return it.ver.Target
}

func (it *item) answered() bool {
	if it.mon != nil {
		return it.mon.Packets > 0
	}
	return it.ver.Packets > 0
}

// run scans, enriches and writes. It reports whether an interrupt cut
// the scan short.
//
// The pipeline: each probe's Run emits into raw (from its own goroutine,
// so a full channel holds the prober back), the enrichment workers move
// the results from raw to enriched, and one writer takes them from
// enriched. raw is closed when both probers have returned, enriched when
// the workers have drained raw, and the writer returns when enriched is
// closed, or at its first error: then the probers are aborted, the
// enrichment cancelled and enriched drained, so nothing blocks.
func (s *scan) run(ctx context.Context, interrupts <-chan struct{}) (interrupted bool, err error) {
	out, err := newOutputs(s)
	if err != nil {
		return false, err
	}
	scanCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	enrichCtx, stopEnriching := context.WithCancel(context.Background())
	defer stopEnriching()
	abort := func() {
		if s.monitor != nil {
			s.monitor.Abort()
		}
		if s.version != nil {
			s.version.Abort()
		}
	}

	if s.lab == nil {
		about, rate := "", "without a rate limit"
		if !s.exact {
			about = "about "
		}
		if s.opts.rate > 0 {
			rate = fmt.Sprintf("at up to %d requests/s", s.opts.rate)
		}
		fmt.Fprintf(s.stderr, "scanner: scanning %s%d targets (seed %d, shard %d/%d) %s; reports in %s\n",
			about, s.size, s.seed, s.opts.shard, s.opts.shards, rate, s.dir)
	}
	prog := newProgress(s)
	defer prog.stop()

	raw := make(chan item, 1024)
	enriched := make(chan item, 1024)
	var probers sync.WaitGroup
	var runErrs []error
	var errMu sync.Mutex
	runErr := func(err error) {
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ntpctl.ErrAborted) {
			errMu.Lock()
			runErrs = append(runErrs, err)
			errMu.Unlock()
			// One probe failed: the other stops sending too and
			// collects what is in flight, so the scan ends with
			// both reports covering the same targets.
			stopSending()
		}
	}
	if s.monitor != nil {
		probers.Add(1)
		go func() {
			defer probers.Done()
			runErr(s.monitor.Run(scanCtx, s.targets(), func(r ntpctl.Result[mode7.Reply]) error {
				raw <- item{mon: &r}
				return nil
			}))
		}()
	}
	if s.version != nil {
		probers.Add(1)
		go func() {
			defer probers.Done()
			runErr(s.version.Run(scanCtx, s.targets(), func(r ntpctl.Result[mode6.Reply]) error {
				raw <- item{ver: &r}
				return nil
			}))
		}()
	}
	go func() { probers.Wait(); close(raw) }()

	// Enrichment: only targets that answered are looked up.
	var workers sync.WaitGroup
	for range max(1, s.opts.enrichWorkers) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for it := range raw {
				if s.enricher != nil && it.answered() && enrichCtx.Err() == nil {
					var err error
					it.e, err = enrich.Lookup(enrichCtx, s.enricher, it.target().Addr())
					if err = enrich.IgnoreNotFound(err); err != nil && enrichCtx.Err() == nil {
						s.enrichErrs.Add(1)
						s.enrichFirst.Do(func() { prog.note("enrichment: " + err.Error()) })
					}
				}
				enriched <- it
			}
		}()
	}
	go func() { workers.Wait(); close(enriched) }()

	writeDone := make(chan error, 1)
	go func() { writeDone <- out.consume(enriched) }()

	for {
		select {
		case <-interrupts:
			if !interrupted {
				interrupted = true
				stopSending()
				prog.note("interrupted: collecting the replies in flight (Ctrl-C again to stop at once)")
				continue
			}
			interrupts = nil
			prog.note("interrupted again: finishing now")
			abort()
			stopEnriching()
			continue
		case err := <-writeDone:
			if err != nil {
				// Unblock the pipeline and stop: nothing more can be
				// written.
				stopSending()
				abort()
				stopEnriching()
				for range enriched {
				}
				prog.stop()
				out.abandon()
				return interrupted, fmt.Errorf("writing the reports: %w (the files in %s hold the results up to the last complete flush)", err, s.dir)
			}
			prog.stop()
			errMu.Lock()
			runErr := errors.Join(runErrs...)
			errMu.Unlock()
			if !interrupted && runErr == nil {
				// Every target was taken: the shard's size is known.
				s.size, s.exact = s.taken(), true
			}
			out.interrupted = interrupted
			if err := out.finish(); err != nil {
				return interrupted, fmt.Errorf("writing the reports: %w", err)
			}
			s.summary(out, interrupted)
			return interrupted, runErr
		}
	}
}

// taken returns the targets the probers took from the sequence.
func (s *scan) taken() uint64 {
	var n uint64
	if s.monitor != nil {
		n = max(n, s.monitor.Stats().Targets)
	}
	if s.version != nil {
		n = max(n, s.version.Stats().Targets)
	}
	return n
}
