//go:build nats

package main

// With -tags nats the scanner runs a scan on many machines through NATS
// JetStream, an existing engine, instead of a scheduler of its own:
//
//   - -submit URL puts the scan's inputs (targets, block and allow lists)
//     into the object store by content hash, its spec under the run's
//     ID, and one message per shard into the work-queue stream; then it
//     follows the workers' progress and, with -out, merges the run.
//   - -worker URL pulls one shard at a time, scans it with the same
//     code as a scan on one machine (-seed, -shard i/n), keeps the
//     message in progress while it scans, puts the shard's files into
//     the object store, and acknowledges. A worker that dies stops
//     reporting; after -ack-wait its shard goes to another. With -run
//     and JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) it scans that
//     one shard and exits.
//   - -merge URL -run ID -out DIR makes one scan directory of the shards,
//     once every shard is in: what reportd import (or -db) reads.
//
// A shard scanned twice (a worker too slow, not dead) is stored twice
// under different attempts; its manifest names one, which the merge
// reads: it is merged once.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
)

func init() { distributed = runDistributed }

// The engine's names.
const (
	shardStream   = "NTPCTL_SHARDS"  // the work-queue stream of shards
	shardSubject  = "ntpctl.shards." // + run ID + "." + shard
	workerDurable = "ntpctl-workers" // the workers' shared pull consumer
	bucket        = "ntpctl"         // the object store
	progressSubj  = "ntpctl.progress."
	// maxDeliver: a shard failing this often is left for an operator.
	// The consumer redelivers without a limit, so that the delivery after
	// the last try (its worker died) marks the shard failed.
	maxDeliver = 5
)

// shardSpec is a submitted scan, as its spec object and each shard's
// message hold it. Every value in it is checked again by the worker: a
// message is input.
type shardSpec struct {
	Run    string    `json:"run"`
	Shard  int       `json:"shard"`
	Shards int       `json:"shards"`
	Seed   uint64    `json:"seed"`
	Probes string    `json:"probes"`
	Rate   int       `json:"rate"` // per worker: -rate shared out by -workers
	Date   time.Time `json:"date"` // the files' date, the same on every shard
	// Targets, Blocklists and Allowlists name objects by the SHA-256 of
	// their content.
	Targets    string   `json:"targets"`
	Blocklists []string `json:"blocklists,omitempty"`
	Allowlists []string `json:"allowlists,omitempty"`
	// Args are the other scanning flags, as the submitter was given them.
	Args []string `json:"args,omitempty"`
}

// manifest is a scanned shard: its files, under one attempt.
type manifest struct {
	Run      string               `json:"run"`
	Shard    int                  `json:"shard"`
	Attempt  string               `json:"attempt"`
	Worker   string               `json:"worker"`
	Files    []manifestFile       `json:"files"`
	Space    []string             `json:"space"` // the whole scan's target space
	Stats    report.JSONScanStats `json:"stats"`
	Finished time.Time            `json:"finished"`
}

type manifestFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// permanentError is a shard's error that no other try would mend.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// shardFailure marks a shard that failed on every delivery.
type shardFailure struct {
	Shard  int    `json:"shard"`
	Worker string `json:"worker"`
	Tries  int    `json:"tries"`
	Error  string `json:"error"`
}

func failedName(run string, i int) string { return fmt.Sprintf("runs/%s/shards/%d/failed", run, i) }

// progressMsg is a worker's report on its shard, every -progress-every.
type progressMsg struct {
	Shard    int     `json:"shard"`
	Worker   string  `json:"worker"`
	Done     uint64  `json:"done"`
	Total    uint64  `json:"total"`
	Replied  uint64  `json:"replied"`
	SendErrs uint64  `json:"send_errors"`
	Rate     float64 `json:"rate"`
}

// passFlags are the scanning flags a submitter hands its workers: what
// decides what is sent and how results are written. File flags other
// than the target, block and allow lists are not among them (a worker
// has its own files), nor -out, -shard or -seed (set per shard).
var passFlags = []string{"port", "retries", "timeout", "quiet", "concurrency", "senders", "allow-loopback", "allow-private",
	"id", "neutralize-formulas", "discover"}

// workerFlags are a worker's own flags that apply to every shard it
// scans: its enrichment, its addresses and its own deny list (besides
// the scan's). Its -rate, when given, caps the scan's per-worker rate.
var workerFlags = []string{"blocklist", "mmdb", "static", "rdns", "rdns-server", "cymru", "cymru-server", "enrich-workers",
	"enrich-timeout", "source-ip", "interface", "mru-clients"}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func specName(run string) string              { return "runs/" + run + "/spec" }
func manifestName(run string, i int) string   { return fmt.Sprintf("runs/%s/shards/%d/manifest", run, i) }
func shardSubjectOf(run string, i int) string { return shardSubject + run + "." + strconv.Itoa(i) }

func runDistributed(ctx context.Context, o *options, stdout, stderr io.Writer, interrupts <-chan struct{}) int {
	n := 0
	for _, u := range []string{o.submit, o.worker, o.merge} {
		if u != "" {
			n++
		}
	}
	if n > 1 {
		fmt.Fprintln(stderr, "scanner: one of -submit, -worker and -merge")
		return exitUsage
	}
	if o.runID != "" && !runIDPattern.MatchString(o.runID) {
		fmt.Fprintf(stderr, "scanner: -run %q: want 1 to 64 letters, digits, _ or -\n", o.runID)
		return exitUsage
	}
	url := o.submit + o.worker + o.merge
	nc, err := nats.Connect(url, nats.Name("ntpctl-scanner"), nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.Timeout(5*time.Second))
	if err != nil {
		fmt.Fprintf(stderr, "scanner: %s: %v\n", url, err)
		return exitError
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(stderr, "scanner:", err)
		return exitError
	}
	d := &dist{o: o, nc: nc, js: js, stdout: stdout, stderr: stderr}
	switch {
	case o.submit != "":
		err = d.submit(ctx, interrupts)
	case o.worker != "":
		err = d.work(ctx, interrupts)
	default:
		err = d.mergeRun(ctx)
	}
	if err != nil {
		fmt.Fprintln(stderr, "scanner:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		if errors.Is(err, context.Canceled) {
			return exitInterrupted
		}
		return exitError
	}
	return exitOK
}

type dist struct {
	o              *options
	nc             *nats.Conn
	js             jetstream.JetStream
	obs            jetstream.ObjectStore
	stdout, stderr io.Writer
	// scanTime adds up the time spent scanning, the rest of a shard's
	// being the engine's (BenchmarkEngineOverhead).
	scanTime time.Duration
}

// setup makes (or finds) the stream, the consumer and the object store.
func (d *dist) setup(ctx context.Context, ackWait time.Duration) (jetstream.Consumer, error) {
	var err error
	d.obs, err = d.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: bucket, Storage: jetstream.FileStorage,
		Description: "ntpctl: scan inputs, specs and shard results"})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", bucket, err)
	}
	st, err := d.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: shardStream, Subjects: []string{shardSubject + ">"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute,
		Description: "ntpctl: shards of submitted scans, one message each"})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", shardStream, err)
	}
	cfg := jetstream.ConsumerConfig{Durable: workerDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait,
		MaxDeliver: -1, MaxAckPending: -1, Description: "ntpctl: the scanners in -worker mode"}
	if ackWait == 0 {
		// A worker takes the consumer as the first submitter made it
		// (with its -ack-wait), waiting for one if there is none yet.
		for {
			c, err := st.Consumer(ctx, workerDurable)
			if err == nil {
				return c, nil
			}
			if !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil, fmt.Errorf("consumer %s: %w", workerDurable, err)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	// One consumer serves every run: its ack wait is the first
	// submitter's, and a later one does not change it under the shards
	// being scanned.
	c, err := st.Consumer(ctx, workerDurable)
	if err == nil {
		ci := c.CachedInfo().Config
		if ci.AckWait != ackWait {
			fmt.Fprintf(d.stderr, "scanner: the workers' consumer keeps its ack wait of %s; -ack-wait %s is not applied\n", ci.AckWait, ackWait)
		}
		if ci.MaxDeliver != -1 {
			ci.MaxDeliver = -1
			if c, err = st.UpdateConsumer(ctx, ci); err != nil {
				return nil, fmt.Errorf("consumer %s: %w", workerDurable, err)
			}
		}
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("consumer %s: %w", workerDurable, err)
	}
	c, err = st.CreateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", workerDurable, err)
	}
	return c, nil
}

// putInput stores a file's content under its hash.
func (d *dist) putInput(ctx context.Context, b []byte) (string, error) {
	sum := sha256.Sum256(b)
	name := "inputs/" + hex.EncodeToString(sum[:])
	if _, err := d.obs.GetInfo(ctx, name); err == nil {
		return name, nil
	}
	if _, err := d.obs.PutBytes(ctx, name, b); err != nil {
		return "", fmt.Errorf("object store: %w", err)
	}
	return name, nil
}

// getInput fetches an input and checks it against its name.
func (d *dist) getInput(ctx context.Context, name, dir string) (string, error) {
	hash, ok := strings.CutPrefix(name, "inputs/")
	if !ok || len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return "", permanentError{fmt.Errorf("input %q: not an input's name", name)}
	}
	b, err := d.obs.GetBytes(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", permanentError{fmt.Errorf("input %s: %w", name, err)}
	}
	if err != nil {
		return "", fmt.Errorf("input %s: %w", name, err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hash {
		return "", permanentError{fmt.Errorf("input %s: content does not match its hash", name)}
	}
	path := filepath.Join(dir, hash[:16]+".txt")
	return path, os.WriteFile(path, b, 0o600)
}

// maxJSON bounds a spec, manifest or failure object.
const maxJSON = 4 << 20

func (d *dist) getJSON(ctx context.Context, name string, v any) error {
	info, err := d.obs.GetInfo(ctx, name)
	if err != nil {
		return err
	}
	if info.Size > maxJSON {
		return fmt.Errorf("%s: %d bytes, more than %d", name, info.Size, maxJSON)
	}
	b, err := d.obs.GetBytes(ctx, name)
	if err != nil {
		return err
	}
	if len(b) > maxJSON {
		return fmt.Errorf("%s: more than %d bytes", name, maxJSON)
	}
	return json.Unmarshal(b, v)
}

// checkSpec checks a spec read from the object store for run.
func checkSpec(spec *shardSpec, run string) error {
	if spec.Run != run || spec.Shards < 1 || spec.Shards > 1<<16 {
		return fmt.Errorf("the spec of run %s names run %q with %d shards", run, spec.Run, spec.Shards)
	}
	return nil
}

// submit puts the scan into the engine and follows it.
func (d *dist) submit(ctx context.Context, interrupts <-chan struct{}) error {
	o := d.o
	if o.lab {
		return usagef("-submit: give targets (addresses, prefixes, ranges or -i FILE); the lab runs on one machine")
	}
	for _, name := range []string{"shard", "split", "max-targets", "dryrun", "mmdb", "static", "rdns", "cymru", "source-ip", "interface", "bandwidth", "db", "json-all"} {
		if o.set[name] {
			return usagef("-%s is not for -submit (each worker uses its own enrichment and addresses, given to -worker; -merge writes the one scan)", name)
		}
	}
	if o.workers < 1 {
		return usagef("-workers %d: want at least 1", o.workers)
	}
	shards := o.nShards
	if shards == 0 {
		shards = 4 * o.workers
	}
	if shards < 1 || shards > 1<<16 {
		return usagef("-shards %d: want 1 to 65536", shards)
	}
	seed := o.seed
	for seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		seed = uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
	}
	run := o.runID
	if run == "" {
		var b [4]byte
		rand.Read(b[:])
		run = time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
	}
	if _, err := d.setup(ctx, o.ackWait); err != nil {
		return err
	}
	// The inputs, by content: the targets as one list.
	var targets bytes.Buffer
	for _, t := range o.targets {
		targets.WriteString(t + "\n")
	}
	for _, name := range o.targetFiles {
		b, err := readAllFile(name)
		if err != nil {
			return usageError{err}
		}
		targets.Write(b)
		targets.WriteString("\n")
	}
	// The workers parse the targets again; a list they would refuse is
	// refused here, before anything is queued.
	var set ntpctl.TargetSet
	if _, err := set.ReadFrom(bytes.NewReader(targets.Bytes())); err != nil {
		return usageError{err}
	}
	spec := shardSpec{Run: run, Shards: shards, Seed: seed, Probes: o.probes, Rate: o.rate / o.workers,
		Date: time.Now().UTC().Truncate(time.Second)}
	if o.rate > 0 && spec.Rate == 0 {
		spec.Rate = 1
	}
	var err error
	if spec.Targets, err = d.putInput(ctx, targets.Bytes()); err != nil {
		return err
	}
	for _, l := range []struct {
		files []string
		out   *[]string
	}{{o.blockFiles, &spec.Blocklists}, {o.allowFiles, &spec.Allowlists}} {
		for _, name := range l.files {
			b, err := readAllFile(name)
			if err != nil {
				return usageError{err}
			}
			h, err := d.putInput(ctx, b)
			if err != nil {
				return err
			}
			*l.out = append(*l.out, h)
		}
	}
	spec.Args = passArgs(o)

	// A run already submitted is resumed, if it is the same scan.
	var prev shardSpec
	switch err := d.getJSON(ctx, specName(run), &prev); {
	case err == nil && checkSpec(&prev, run) != nil:
		return checkSpec(&prev, run)
	case err == nil:
		// The date and the workers' rate stay the first submission's.
		cmp := spec
		cmp.Date, cmp.Rate = prev.Date, prev.Rate
		if !o.set["seed"] {
			cmp.Seed = prev.Seed // a random one the first time
		}
		if !o.set["shards"] {
			cmp.Shards = prev.Shards
		}
		if !specEqual(prev, cmp) {
			return usagef("-run %s was submitted with other targets, flags or shards", run)
		}
		spec = prev
		fmt.Fprintf(d.stderr, "scanner: run %s: resuming (seed %d, %d shards)\n", run, spec.Seed, spec.Shards)
	case errors.Is(err, jetstream.ErrObjectNotFound):
		b, _ := json.Marshal(spec)
		if _, err := d.obs.PutBytes(ctx, specName(run), b); err != nil {
			return fmt.Errorf("object store: %w", err)
		}
		fmt.Fprintf(d.stderr, "scanner: run %s: %d shards, seed %d, %d requests/s per worker\n", run, spec.Shards, spec.Seed, spec.Rate)
	default:
		return fmt.Errorf("object store: %w", err)
	}
	stream, err := d.js.Stream(ctx, shardStream)
	if err != nil {
		return err
	}
	queued := 0
	if o.indexedJob {
		fmt.Fprintf(d.stderr, "scanner: run %s: for the Indexed Job: RUN_ID=%s, completions %d (examples/scanner/k8s/job.yaml)\n", run, run, spec.Shards)
	}
	for i := range spec.Shards {
		if o.indexedJob {
			break // the Job's pods take their shards by index
		}
		if _, err := d.obs.GetInfo(ctx, manifestName(run, i)); err == nil {
			continue // scanned
		}
		msgID := fmt.Sprintf("%s/%d", run, i)
		if _, err := d.obs.GetInfo(ctx, failedName(run, i)); err == nil {
			// Failed on every try before: queued again, deliberately
			// (a new message ID, past the stream's duplicate window).
			if err := d.obs.Delete(ctx, failedName(run, i)); err != nil {
				return fmt.Errorf("object store: %w", err)
			}
			msgID += "/" + strconv.FormatInt(time.Now().UnixNano(), 36)
		} else if _, err := stream.GetLastMsgForSubject(ctx, shardSubjectOf(run, i)); err == nil {
			continue // waiting, or being scanned
		}
		m := spec
		m.Shard = i
		b, _ := json.Marshal(m)
		if _, err := d.js.Publish(ctx, shardSubjectOf(run, i), b, jetstream.WithMsgID(msgID)); err != nil {
			return fmt.Errorf("publish shard %d: %w", i, err)
		}
		queued++
	}
	if queued > 0 {
		fmt.Fprintf(d.stderr, "scanner: run %s: %d shards queued for the workers\n", run, queued)
	}
	d.o.runID = run
	if err := d.follow(ctx, &spec, interrupts); err != nil {
		return err
	}
	if o.out == "" {
		fmt.Fprintf(d.stdout, "run %s complete: merge it with scanner -merge %s -run %s -out DIR\n", run, o.submit, run)
		return nil
	}
	return d.mergeRun(ctx)
}

// follow shows the run's progress until every shard is in.
func (d *dist) follow(ctx context.Context, spec *shardSpec, interrupts <-chan struct{}) error {
	var mu sync.Mutex
	latest := map[int]progressMsg{}
	sub, err := d.nc.Subscribe(progressSubj+spec.Run, func(m *nats.Msg) {
		var p progressMsg
		if json.Unmarshal(m.Data, &p) == nil && p.Shard >= 0 && p.Shard < spec.Shards {
			mu.Lock()
			latest[p.Shard] = p
			mu.Unlock()
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	tick := time.NewTicker(d.o.progressPeriod)
	defer tick.Stop()
	start := time.Now()
	lastLine := ""
	bar := false
	if f, ok := d.stderr.(*os.File); ok && d.o.progress != "lines" && d.o.progress != "none" {
		bar = term.IsTerminal(int(f.Fd()))
	}
	for {
		done := 0
		for i := range spec.Shards {
			if _, err := d.obs.GetInfo(ctx, manifestName(spec.Run, i)); err == nil {
				done++
				continue
			}
			var f shardFailure
			if err := d.getJSON(ctx, failedName(spec.Run, i), &f); err == nil {
				if bar {
					fmt.Fprintln(d.stderr)
				}
				return fmt.Errorf("run %s: shard %d failed %d times (worker %s: %s); submit it again with the same -run to retry it",
					spec.Run, i, f.Tries, report.TerminalSafe(f.Worker), report.TerminalSafe(f.Error))
			}
		}
		mu.Lock()
		var replied, targets, total uint64
		var rate float64
		workers := map[string]bool{}
		for _, p := range latest {
			targets += p.Done
			total += p.Total
			replied += p.Replied
			rate += p.Rate
			if p.Done < p.Total {
				workers[p.Worker] = true
			}
		}
		known := len(latest)
		mu.Unlock()
		if known > 0 && known < spec.Shards {
			total = total * uint64(spec.Shards) / uint64(known) // the shards not begun, by the others' size
		}
		cells := done * barWidth / spec.Shards
		line := fmt.Sprintf("run %s [%s%s] %d/%d shards, %d/%d results, %d replied, %.0f req/s from %d workers [%s]",
			spec.Run, strings.Repeat("#", cells), strings.Repeat("-", barWidth-cells), done, spec.Shards, targets, total, replied,
			rate, len(workers), time.Since(start).Round(time.Second))
		switch {
		case bar:
			fmt.Fprintf(d.stderr, "\r%s\x1b[K", line)
			if done == spec.Shards {
				fmt.Fprintln(d.stderr)
			}
		case line != lastLine && d.o.progress != "none":
			fmt.Fprintf(d.stderr, "scanner: %d/%d shards done: %s\n", done, spec.Shards, line)
		}
		lastLine = line
		if done == spec.Shards {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-interrupts:
			fmt.Fprintf(d.stderr, "scanner: run %s goes on without this submitter; follow it again with the same -submit and -run\n", spec.Run)
			return context.Canceled
		case <-tick.C:
		}
	}
}

// localArgs are a worker's own flags for the shards it scans.
func localArgs(o *options) []string {
	var args []string
	for _, name := range workerFlags {
		if !o.set[name] {
			continue
		}
		if l, ok := o.fs.Lookup(name).Value.(*list); ok {
			for _, v := range *l {
				args = append(args, "-"+name+"="+v)
			}
			continue
		}
		args = append(args, "-"+name+"="+o.fs.Lookup(name).Value.String())
	}
	return args
}

// passArgs are the flags of o a worker is given, as given.
func passArgs(o *options) []string {
	var args []string
	for _, name := range passFlags {
		if o.set[name] {
			args = append(args, "-"+name+"="+o.fs.Lookup(name).Value.String())
		}
	}
	return args
}

func specEqual(a, b shardSpec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func readAllFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

// work scans shards until interrupted (or idle for -idle-exit).
func (d *dist) work(ctx context.Context, interrupts <-chan struct{}) error {
	host, _ := os.Hostname()
	worker := fmt.Sprintf("%s/%d", host, os.Getpid())
	if idx := os.Getenv("JOB_COMPLETION_INDEX"); idx != "" && d.o.runID != "" {
		// A Kubernetes Indexed Job: this pod's shard of the run, once.
		obs, err := d.js.ObjectStore(ctx, bucket)
		if err != nil {
			return fmt.Errorf("object store %s: %w", bucket, err)
		}
		d.obs = obs
		i, err := strconv.Atoi(idx)
		if err != nil {
			return usagef("JOB_COMPLETION_INDEX %q: not a number", idx)
		}
		var spec shardSpec
		if err := d.getJSON(ctx, specName(d.o.runID), &spec); err != nil {
			return fmt.Errorf("run %s: %w", d.o.runID, err)
		}
		if err := checkSpec(&spec, d.o.runID); err != nil {
			return err
		}
		if i < 0 || i >= spec.Shards {
			return usagef("JOB_COMPLETION_INDEX %d: the run has %d shards (completions must equal -shards)", i, spec.Shards)
		}
		spec.Shard = i
		if _, err := d.obs.GetInfo(ctx, manifestName(spec.Run, i)); err == nil {
			fmt.Fprintf(d.stderr, "scanner: run %s shard %d is in already\n", spec.Run, i)
			return nil
		}
		return d.scanShard(ctx, &spec, worker, func() {}, interrupts)
	}
	if d.o.runID != "" {
		return usagef("-worker -run is for a Kubernetes Indexed Job (JOB_COMPLETION_INDEX set); a queue worker takes every run's shards")
	}
	cons, err := d.setup(ctx, 0)
	if err != nil {
		return err
	}
	// The first interrupt (Ctrl-C, SIGTERM from Kubernetes) stops the
	// shard being scanned, which goes back to the queue, and the worker.
	var stopping atomic.Bool
	scanInterrupts := make(chan struct{}, 3)
	go func() {
		for range interrupts {
			stopping.Store(true)
			scanInterrupts <- struct{}{}
		}
	}()
	idleSince := time.Now()
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if stopping.Load() {
			fmt.Fprintf(d.stderr, "scanner: worker %s: interrupted; stopping\n", worker)
			return context.Canceled
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(time.Second) // the server restarting: the client reconnects
			continue
		}
		got := false
		for msg := range batch.Messages() {
			got = true
			d.handle(ctx, msg, worker, scanInterrupts)
		}
		if got {
			idleSince = time.Now()
		} else if d.o.idleExit > 0 && time.Since(idleSince) > d.o.idleExit {
			fmt.Fprintf(d.stderr, "scanner: worker %s: no shard for %s; exiting\n", worker, d.o.idleExit)
			return nil
		}
	}
}

// handle scans the shard of one message, and acknowledges it once the
// shard's files are in; a shard that failed goes back to the queue.
func (d *dist) handle(ctx context.Context, msg jetstream.Msg, worker string, interrupts <-chan struct{}) {
	var spec shardSpec
	if err := json.Unmarshal(msg.Data(), &spec); err != nil || !runIDPattern.MatchString(spec.Run) || spec.Shards < 1 ||
		spec.Shard < 0 || spec.Shard >= spec.Shards || msg.Subject() != shardSubjectOf(spec.Run, spec.Shard) {
		fmt.Fprintf(d.stderr, "scanner: worker %s: dropping a malformed shard message on %s\n", worker, report.TerminalSafe(msg.Subject()))
		_ = msg.Term()
		return
	}
	meta, _ := msg.Metadata()
	if meta != nil && meta.NumDelivered > maxDeliver {
		// Delivered again after its last try's worker went silent (died
		// on every try): not scanned again, marked failed.
		d.fail(ctx, msg, &spec, worker, int(meta.NumDelivered)-1, errors.New("no worker finished it: each one stopped reporting"))
		return
	}
	if _, err := d.obs.GetInfo(ctx, manifestName(spec.Run, spec.Shard)); err == nil {
		_ = msg.DoubleAck(ctx) // in already: delivered again after an ack that was lost
		return
	}
	// Keep the message ours while the shard is scanned.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	every := 5 * time.Second
	if info, err := d.js.Consumer(ctx, shardStream, workerDurable); err == nil {
		every = min(every, max(info.CachedInfo().Config.AckWait/3, 100*time.Millisecond))
	}
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	})
	err := d.scanShard(ctx, &spec, worker, func() { _ = msg.InProgress() }, interrupts)
	close(stop)
	wg.Wait()
	if errors.Is(err, errInterrupted) {
		_ = msg.Nak() // for another worker, at once
		return
	}
	if err != nil {
		fmt.Fprintf(d.stderr, "scanner: worker %s: run %s shard %d: %v\n", worker, spec.Run, spec.Shard, err)
		var pe permanentError
		if tries := deliveries(meta); errors.As(err, &pe) || tries >= maxDeliver {
			// The last try, or a shard that no try can scan (its inputs
			// or flags are wrong).
			d.fail(ctx, msg, &spec, worker, tries, err)
			return
		}
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		// The shard is in; a redelivery finds its manifest and acks.
		fmt.Fprintf(d.stderr, "scanner: worker %s: ack of run %s shard %d: %v\n", worker, spec.Run, spec.Shard, err)
	}
}

// errInterrupted: the worker was told to stop in the middle of a shard.
var errInterrupted = errors.New("interrupted")

func deliveries(meta *jetstream.MsgMetadata) int {
	if meta == nil {
		return 1
	}
	return int(meta.NumDelivered)
}

// fail marks a shard failed for the submitter, which stops; submitted
// again, the run queues it again. The message is done with.
func (d *dist) fail(ctx context.Context, msg jetstream.Msg, spec *shardSpec, worker string, tries int, cause error) {
	fmt.Fprintf(d.stderr, "scanner: run %s shard %d failed (%d tries); left for an operator\n", spec.Run, spec.Shard, tries)
	b, _ := json.Marshal(shardFailure{Shard: spec.Shard, Worker: worker, Tries: tries, Error: cause.Error()})
	if _, err := d.obs.PutBytes(ctx, failedName(spec.Run, spec.Shard), b); err != nil {
		_ = msg.NakWithDelay(5 * time.Second) // the next delivery marks it
		return
	}
	_ = msg.Term()
}

// scanShard scans one shard into a temporary directory and puts its
// files and manifest into the object store.
func (d *dist) scanShard(ctx context.Context, spec *shardSpec, worker string, alive func(), interrupts <-chan struct{}) error {
	dir, err := os.MkdirTemp("", "ntpctl-shard-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "in")
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(in, 0o700); err != nil {
		return err
	}
	args := append([]string(nil), spec.Args...)
	for _, a := range args {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !ok || !slices.Contains(passFlags, name) {
			return permanentError{fmt.Errorf("the shard's flag %q is not one a worker takes (as -name=value)", a)}
		}
		// Loopback and the private ranges only where the worker itself
		// allows them: a message must not aim it at its own networks.
		if (name == "allow-loopback" && !d.o.allowLoopback || name == "allow-private" && !d.o.allowPrivate) && value != "false" {
			return permanentError{fmt.Errorf("the shard asks for -%s, which this worker was not started with", name)}
		}
	}
	shardProbes := &options{probes: spec.Probes}
	_ = shardProbes.parseProbes() // a bad -probes fails the shard's own parse below
	for _, a := range localArgs(d.o) {
		if a == "-mru-clients=true" && !shardProbes.probeSet[mruKind.name] {
			continue // the worker keeps MRU clients where a shard asks for MRU lists
		}
		args = append(args, a)
	}
	targets, err := d.getInput(ctx, spec.Targets, in)
	if err != nil {
		return err
	}
	args = append(args, "-i", targets)
	for _, l := range []struct {
		flag  string
		names []string
	}{{"-blocklist", spec.Blocklists}, {"-allowlist", spec.Allowlists}} {
		for _, name := range l.names {
			p, err := d.getInput(ctx, name, in)
			if err != nil {
				return err
			}
			args = append(args, l.flag, p)
		}
	}
	rate := spec.Rate
	if d.o.set["rate"] && d.o.rate > 0 && (rate <= 0 || rate > d.o.rate) {
		rate = d.o.rate
	}
	args = append(args, "-seed", strconv.FormatUint(spec.Seed, 10), "-shard", fmt.Sprintf("%d/%d", spec.Shard, spec.Shards),
		"-probes", spec.Probes, "-rate", strconv.Itoa(rate), "-out", out, "-progress", "none",
		"-progress-every", d.o.progressPeriod.String())
	o, err := parseFlags(args, io.Discard)
	if err != nil {
		return permanentError{fmt.Errorf("the shard's flags: %w", err)}
	}
	if o.senders > 64 || o.concurrency > 1<<18 {
		return permanentError{fmt.Errorf("the shard asks for %d senders and %d in flight: more than a worker takes (64, 262144)", o.senders, o.concurrency)}
	}
	o.date = spec.Date
	var space []string
	o.onSpace = func(s []string) { space = s }
	subject := progressSubj + spec.Run
	o.onProgress = func(done, total, replied, sendErrs uint64, rate float64) {
		b, _ := json.Marshal(progressMsg{Shard: spec.Shard, Worker: worker, Done: done, Total: total, Replied: replied, SendErrs: sendErrs, Rate: rate})
		_ = d.nc.Publish(subject, b)
		alive()
	}
	fmt.Fprintf(d.stderr, "scanner: worker %s: run %s shard %d/%d\n", worker, spec.Run, spec.Shard, spec.Shards)
	var log bytes.Buffer
	start := time.Now()
	code := scanWith(ctx, o, io.Discard, &log, interrupts)
	d.scanTime += time.Since(start)
	if code == exitInterrupted {
		return errInterrupted
	}
	if code != exitOK {
		return fmt.Errorf("scan ended with status %d: %s", code, report.TerminalSafe(strings.TrimSpace(log.String())))
	}
	var attempt [8]byte
	rand.Read(attempt[:])
	m := manifest{Run: spec.Run, Shard: spec.Shard, Attempt: hex.EncodeToString(attempt[:]), Worker: worker, Space: space,
		Finished: time.Now().UTC()}
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(out, e.Name())
		if strings.HasSuffix(e.Name(), "-stats.json") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &m.Stats); err != nil {
				return fmt.Errorf("%s: %w", e.Name(), err)
			}
		}
		// Streamed, in the object store's chunks: a shard's files can be
		// large (the JSON lines hold every monitor list).
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		h := sha256.New()
		info, err := d.obs.Put(ctx, jetstream.ObjectMeta{Name: attemptFile(spec.Run, spec.Shard, m.Attempt, e.Name())}, io.TeeReader(f, h))
		f.Close()
		if err != nil {
			return fmt.Errorf("object store: %w", err)
		}
		sum := h.Sum(nil)
		m.Files = append(m.Files, manifestFile{Name: e.Name(), Size: int64(info.Size), SHA256: hex.EncodeToString(sum)})
		alive()
	}
	b, _ := json.Marshal(m)
	// The manifest last: a shard is in once it names its files. The
	// first attempt in stays (a slower worker's is dropped), so that a
	// merge of the run gives the same files every time.
	if _, err := d.obs.GetInfo(ctx, manifestName(spec.Run, spec.Shard)); err == nil {
		for _, f := range m.Files {
			_ = d.obs.Delete(ctx, attemptFile(spec.Run, spec.Shard, m.Attempt, f.Name))
		}
		return nil
	}
	if _, err := d.obs.PutBytes(ctx, manifestName(spec.Run, spec.Shard), b); err != nil {
		return fmt.Errorf("object store: %w", err)
	}
	return nil
}

func attemptFile(run string, shard int, attempt, name string) string {
	return fmt.Sprintf("runs/%s/shards/%d/%s/%s", run, shard, attempt, name)
}
