package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl/internal/lab"
	"github.com/ntpctl/ntpctl/report"
)

// The tests of scanning on many machines run the NATS server (the
// nats-server module, JetStream on, file storage in the test's
// directory) on 127.0.0.1, the scanner built with -tags nats as workers
// in processes of their own, and the lab's simulated servers on
// loopback.

// natsServer is a JetStream server on loopback.
type natsServer struct {
	t    testing.TB
	dir  string
	port int
	srv  *server.Server
}

func startNATS(t testing.TB) *natsServer {
	n := &natsServer{t: t, dir: t.TempDir(), port: -1}
	n.start()
	t.Cleanup(func() { n.srv.Shutdown(); n.srv.WaitForShutdown() })
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.dir, NoSigs: true,
		ServerName: "ntpctl-test"})
	require.NoError(n.t, err)
	go srv.Start()
	require.True(n.t, srv.ReadyForConnections(10*time.Second), "NATS server not ready")
	n.srv = srv
	n.port = srv.Addr().(*net.TCPAddr).Port
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// objectStore opens (or makes) the scanner's object store on n, as a
// client of the test's own.
func (n *natsServer) objectStore(t *testing.T) jetstream.ObjectStore {
	t.Helper()
	nc, err := nats.Connect(n.url())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	obs, err := js.CreateOrUpdateObjectStore(context.Background(), jetstream.ObjectStoreConfig{Bucket: "ntpctl", Storage: jetstream.FileStorage,
		Description: "ntpctl: scan inputs, specs and shard results"})
	require.NoError(t, err)
	return obs
}

var (
	natsBinOnce sync.Once
	natsBin     string
	natsBinErr  error
)

// scannerWithNATS builds the scanner with -tags nats, once per test
// binary.
func scannerWithNATS(t testing.TB) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the scanner with -tags nats:", err)
	}
	natsBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ntpctl-scanner-nats-")
		if err != nil {
			natsBinErr = err
			return
		}
		natsBin = filepath.Join(dir, "scanner")
		out, err := exec.Command(gocmd, "build", "-tags", "nats", "-o", natsBin, ".").CombinedOutput()
		if err != nil {
			natsBinErr = fmt.Errorf("go build -tags nats: %v\n%s", err, out)
		}
	})
	require.NoError(t, natsBinErr)
	return natsBin
}

// proc is a scanner process whose stderr is kept, line by line.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	out   bytes.Buffer
	done  chan struct{}
	err   error
}

func startProc(t testing.TB, bin string, args ...string) *proc {
	t.Helper()
	return startCmd(t, &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})})
}

// startCmd starts p's command, keeping its output.
func startCmd(t testing.TB, p *proc) *proc {
	t.Helper()
	bin, args := p.cmd.Path, p.cmd.Args[1:]
	p.cmd.Stdout = &p.out
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s %s:\n%s", filepath.Base(bin), strings.Join(args, " "), strings.Join(p.stderr(), "\n"))
		}
	})
	return p
}

func (p *proc) stderr() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lines)
}

// waitLine waits for a line of stderr with sub in it.
func (p *proc) waitLine(t *testing.T, sub string, limit time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		for _, l := range p.stderr() {
			if strings.Contains(l, sub) {
				return true
			}
		}
		if !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-p.done:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *proc) wait(t testing.TB, limit time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(limit):
		t.Fatalf("%s did not end within %s", strings.Join(p.cmd.Args, " "), limit)
		return nil
	}
}

// labTargets starts a lab and writes its addresses to a file: the
// targets, and the flags that scan them quickly.
func labTargets(t *testing.T, hosts int) (targets string, flags []string, hostile map[string]bool) {
	l, err := lab.Start(context.Background(), lab.Config{Hosts: hosts, Seed: 4, Prefix: netip.MustParsePrefix("127.77.0.0/16")})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	var b strings.Builder
	hostile = map[string]bool{}
	for _, h := range l.Hosts() {
		b.WriteString(h.Addr.Addr().String() + "\n")
		if h.Kind == lab.Hostile {
			hostile[h.Addr.Addr().String()] = true
		}
	}
	targets = filepath.Join(t.TempDir(), "targets.txt")
	require.NoError(t, os.WriteFile(targets, []byte(b.String()), 0o644))
	return targets, []string{"-allow-loopback", "-port", fmt.Sprint(l.Port()), "-retries", "0", "-timeout", "500ms",
		"-quiet", "200ms", "-id", "dist", "-progress", "lines"}, hostile
}

// scanRows reads a scan directory's reports: for each report type, its
// rows without the timestamp column (when each reply came), sorted. The
// rows of the hostile hosts are cut to their address: what they send
// (garbage, storms, duplicates) is not the same from scan to scan.
func scanRows(t *testing.T, dir string, hostile map[string]bool) map[report.Type][]string {
	t.Helper()
	out := map[report.Type][]string{}
	names, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	require.NoError(t, err)
	for _, name := range names {
		typ, err := reportType(filepath.Base(name))
		require.NoError(t, err)
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		require.NotEmpty(t, lines)
		require.True(t, strings.HasPrefix(lines[0], `"timestamp"`), lines[0])
		var rows []string
		for _, l := range lines[1:] {
			_, rest, ok := strings.Cut(l, ",")
			require.True(t, ok, l)
			if f := strings.SplitN(rest, ",", 3); len(f) == 3 && hostile[strings.Trim(f[1], `"`)] {
				rest = f[0] + "," + f[1] + ",…"
			}
			rows = append(rows, rest)
		}
		slices.Sort(rows)
		out[typ] = rows
	}
	return out
}

func readStats(t *testing.T, dir string) report.JSONScanStats {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*-stats.json"))
	require.NoError(t, err)
	require.Len(t, names, 1)
	b, err := os.ReadFile(names[0])
	require.NoError(t, err)
	var st report.JSONScanStats
	require.NoError(t, json.Unmarshal(b, &st))
	return st
}

// TestDistributed: three workers, each a process, scan a lab split into
// 12 shards through JetStream; one of them is killed (SIGKILL) in the
// middle of a shard, which another worker then scans. The merged run
// equals the same scan, same seed, on one machine, row for row (when
// each reply came aside), and its statistics add up.
func TestDistributed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the scanner with -tags nats")
	}
	bin := scannerWithNATS(t)
	ns := startNATS(t)
	targets, flags, hostile := labTargets(t, 96)

	single := t.TempDir()
	one := startProc(t, bin, append(slices.Clone(flags), "-seed", "9", "-i", targets, "-out", single, "-rate", "300")...)
	require.NoError(t, one.wait(t, 60*time.Second))

	// The workers: A is the one killed, as it scans its first shard. The
	// rate is low enough that a shard takes about a second.
	var workers []*proc
	for range 3 {
		workers = append(workers, startProc(t, bin, "-worker", ns.url(), "-allow-loopback", "-progress-every", "200ms"))
	}
	merged := t.TempDir()
	sub := startProc(t, bin, append(slices.Clone(flags), "-submit", ns.url(), "-run", "lab-1", "-shards", "12", "-workers", "3",
		"-seed", "9", "-rate", "30", "-ack-wait", "2s", "-progress-every", "200ms", "-i", targets, "-out", merged)...)
	require.True(t, workers[0].waitLine(t, "run lab-1 shard", 30*time.Second), "worker A took no shard")
	require.NoError(t, workers[0].cmd.Process.Signal(syscall.SIGKILL))
	require.NoError(t, sub.wait(t, 120*time.Second), "the submitter")

	assert.Equal(t, scanRows(t, single, hostile), scanRows(t, merged, hostile), "the merged run equals the one-machine run")
	one1, all := readStats(t, single), readStats(t, merged)
	assert.Equal(t, one1.Targets, all.Targets)
	assert.Equal(t, one1.Space, all.Space, "the whole space covered")
	assert.Equal(t, "0/1", all.Shard)
	assert.Equal(t, one1.Monitor.Report.Rows, all.Monitor.Report.Rows)
	assert.Equal(t, one1.Version.Report.Rows, all.Version.Report.Rows)
	assert.Equal(t, one1.Version.Report.Versions, all.Version.Report.Versions)
	assert.Equal(t, one1.Monitor.Prober.Finished, all.Monitor.Prober.Finished, "each target once")
	assert.Equal(t, one1.Version.Report.Statuses, all.Version.Report.Statuses)

	// Who scanned what: A's shard was scanned again by B or C.
	scanned := shardsScanned(workers[1:], "lab-1")
	assert.Len(t, scanned, 12, "B and C scanned every shard, A's too: %v", scanned)
	assert.True(t, slices.ContainsFunc(sub.stderr(), func(l string) bool { return strings.Contains(l, "12/12 shards done") }))
	assert.Contains(t, sub.out.String(), "12 shards merged")

	// A second merge of the same run writes the same files.
	again := t.TempDir()
	m := startProc(t, bin, "-merge", ns.url(), "-run", "lab-1", "-out", again)
	require.NoError(t, m.wait(t, 30*time.Second))
	assert.Equal(t, scanRows(t, merged, nil), scanRows(t, again, nil))
}

// distSetup starts a NATS server, the lab and n workers.
func distSetup(t *testing.T, n int) (bin string, ns *natsServer, targets string, flags []string, hostile map[string]bool, workers []*proc) {
	if testing.Short() {
		t.Skip("builds the scanner with -tags nats")
	}
	bin = scannerWithNATS(t)
	ns = startNATS(t)
	targets, flags, hostile = labTargets(t, 64)
	for range n {
		workers = append(workers, startProc(t, bin, "-worker", ns.url(), "-allow-loopback", "-progress-every", "200ms"))
	}
	return bin, ns, targets, flags, hostile, workers
}

// shardsScanned counts, per shard, the workers' starts on it.
func shardsScanned(workers []*proc, run string) map[string]int {
	scanned := map[string]int{}
	for _, w := range workers {
		for _, l := range w.stderr() {
			// "scanner: worker host/pid: run RUN shard i/n", as a
			// shard's scan begins.
			if _, rest, ok := strings.Cut(l, "run "+run+" shard "); ok && strings.Contains(l, ": worker ") {
				if i, n, ok := strings.Cut(rest, "/"); ok && strings.Trim(i+n, "0123456789") == "" {
					scanned[rest]++
				}
			}
		}
	}
	return scanned
}

// TestDistributedServerRestart: the NATS server stops in the middle of
// a run and comes back on the same port with its file storage; the run
// completes, with every shard merged once.
func TestDistributedServerRestart(t *testing.T) {
	bin, ns, targets, flags, hostile, workers := distSetup(t, 2)
	merged := t.TempDir()
	sub := startProc(t, bin, append(slices.Clone(flags), "-submit", ns.url(), "-run", "restart", "-shards", "8", "-workers", "2",
		"-seed", "3", "-rate", "20", "-ack-wait", "2s", "-progress-every", "100ms", "-i", targets, "-out", merged)...)
	require.True(t, sub.waitLine(t, "2/8 shards done", 60*time.Second), "two shards in before the restart")
	ns.srv.Shutdown()
	ns.srv.WaitForShutdown()
	time.Sleep(time.Second)
	ns.start()
	require.NoError(t, sub.wait(t, 120*time.Second), "the submitter")
	assert.Len(t, shardsScanned(workers, "restart"), 8)
	rows := scanRows(t, merged, hostile)
	single := t.TempDir()
	one := startProc(t, bin, append(slices.Clone(flags), "-seed", "3", "-i", targets, "-out", single, "-rate", "300")...)
	require.NoError(t, one.wait(t, 60*time.Second))
	assert.Equal(t, scanRows(t, single, hostile), rows, "the merged run equals the one-machine run")
	assert.Equal(t, readStats(t, single).Targets, readStats(t, merged).Targets)
}

// TestDistributedResume: a submitter interrupted (Ctrl-C) after queuing
// the shards leaves the run to the workers; submitted again with the
// same -run, it resumes (queues nothing twice), follows and merges. No
// shard is scanned twice.
func TestDistributedResume(t *testing.T) {
	bin, ns, targets, flags, _, workers := distSetup(t, 2)
	args := append(slices.Clone(flags), "-submit", ns.url(), "-run", "resume", "-shards", "6", "-workers", "2",
		"-seed", "5", "-rate", "20", "-ack-wait", "5s", "-progress-every", "100ms", "-i", targets, "-out", t.TempDir())
	sub := startProc(t, bin, args...)
	require.True(t, sub.waitLine(t, "6 shards queued", 30*time.Second))
	require.NoError(t, sub.cmd.Process.Signal(os.Interrupt))
	err := sub.wait(t, 30*time.Second)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitInterrupted, ee.ExitCode())
	assert.True(t, sub.waitLine(t, "goes on without this submitter", time.Second))

	again := startProc(t, bin, args...)
	require.NoError(t, again.wait(t, 120*time.Second))
	assert.True(t, again.waitLine(t, "resuming", time.Second))
	assert.False(t, again.waitLine(t, "queued", 0), "nothing queued again")
	assert.Contains(t, again.out.String(), "6 shards merged")
	scanned := shardsScanned(workers, "resume")
	assert.Len(t, scanned, 6)
	for s, n := range scanned {
		assert.Equal(t, 1, n, "shard %s scanned %d times", s, n)
	}

	// Another scan under the same -run is refused.
	other := startProc(t, bin, append(slices.Clone(args), "-probes", "version")...)
	err = other.wait(t, 30*time.Second)
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitUsage, ee.ExitCode())
	assert.True(t, other.waitLine(t, "submitted with other targets", time.Second))
}

// TestDistributedIndexedJob: the way of k8s/job.yaml, without a cluster:
// a run submitted with -indexed-job queues nothing, and four worker
// processes, each with -run and its JOB_COMPLETION_INDEX as Kubernetes
// sets it, scan one shard each and exit; the submitter merges.
func TestDistributedIndexedJob(t *testing.T) {
	bin, ns, targets, flags, hostile, _ := distSetup(t, 0)
	// Every probe, with discovery: the shards' MRU and Accessible NTP
	// reports merge like the others.
	flags = append(slices.Clone(flags), "-probes", "all", "-discover")
	merged := t.TempDir()
	sub := startProc(t, bin, append(slices.Clone(flags), "-submit", ns.url(), "-indexed-job", "-run", "job-1", "-shards", "4",
		"-workers", "4", "-seed", "11", "-rate", "200", "-progress-every", "100ms", "-i", targets, "-out", merged)...)
	require.True(t, sub.waitLine(t, "completions 4", 30*time.Second))
	var pods []*proc
	for i := range 4 {
		p := &proc{cmd: exec.Command(bin, "-worker", ns.url(), "-allow-loopback", "-run", "job-1"), done: make(chan struct{})}
		p.cmd.Env = append(os.Environ(), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i))
		pods = append(pods, startCmd(t, p))
	}
	for _, p := range pods {
		require.NoError(t, p.wait(t, 60*time.Second), "a pod")
	}
	require.NoError(t, sub.wait(t, 60*time.Second))
	scanned := shardsScanned(pods, "job-1")
	assert.Len(t, scanned, 4)
	single := t.TempDir()
	one := startProc(t, bin, append(slices.Clone(flags), "-seed", "11", "-i", targets, "-out", single, "-rate", "300")...)
	require.NoError(t, one.wait(t, 60*time.Second))
	singleRows, mergedRows := scanRows(t, single, hostile), scanRows(t, merged, hostile)
	for _, rows := range []map[report.Type][]string{singleRows, mergedRows} {
		for typ, rs := range rows {
			if !typ.IsMRU() {
				continue
			}
			for i, r := range rs {
				// An MRU list lists its asker too, with a count that grows
				// from scan to scan: the octets differ by a digit or two.
				rs[i] = r[:strings.LastIndexByte(r, ',')]
			}
		}
	}
	assert.Equal(t, singleRows, mergedRows)
	assert.NotEmpty(t, mergedRows[report.ScanNTPMRU])
	assert.NotEmpty(t, mergedRows[report.ScanNTPAccessible])
	one1, all := readStats(t, single), readStats(t, merged)
	assert.True(t, all.Discover)
	require.NotNil(t, all.MRU)
	require.NotNil(t, all.Accessible)
	assert.Equal(t, one1.MRU.Report.Rows, all.MRU.Report.Rows)
	assert.Equal(t, one1.Accessible.Report.Rows, all.Accessible.Report.Rows)
	assert.Equal(t, one1.Accessible.Replied, all.Accessible.Replied)
	assert.Equal(t, one1.Monitor.Prober.Targets, all.Monitor.Prober.Targets, "monlist to the discovered servers only")

	// A pod run again (a retried index) finds its shard in and exits.
	p := &proc{cmd: exec.Command(bin, "-worker", ns.url(), "-allow-loopback", "-run", "job-1"), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "JOB_COMPLETION_INDEX=2")
	require.NoError(t, startCmd(t, p).wait(t, 30*time.Second))
	assert.True(t, p.waitLine(t, "shard 2 is in already", time.Second))
	p = &proc{cmd: exec.Command(bin, "-worker", ns.url(), "-allow-loopback", "-run", "job-1"), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "JOB_COMPLETION_INDEX=4")
	assert.Error(t, startCmd(t, p).wait(t, 30*time.Second), "an index beyond the run's shards")
}

// TestMergeHostile: what the object store holds is input too. A merge
// refuses a run with a shard missing, a manifest naming a file outside
// -out, or a part that does not match its manifest's hash, and writes
// nothing outside -out.
func TestMergeHostile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the scanner with -tags nats")
	}
	bin := scannerWithNATS(t)
	ns := startNATS(t)
	ctx := context.Background()
	obs := ns.objectStore(t)
	put := func(name string, v any) {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		_, err = obs.PutBytes(ctx, name, b)
		require.NoError(t, err)
	}
	csv := []byte("\"timestamp\",\"ip\"\n\"2026-12-02 00:00:00\",\"127.0.0.1\"\n")
	sum := sha256.Sum256(csv)
	merge := func(run string) (string, error) {
		out := filepath.Join(t.TempDir(), "out")
		p := startProc(t, bin, "-merge", ns.url(), "-run", run, "-out", out)
		err := p.wait(t, 30*time.Second)
		return strings.Join(p.stderr(), "\n"), err
	}
	for _, c := range []struct {
		run, file, sum, want string
	}{
		{"missing", "2026-12-02-scan_ntp-x.csv", hex.EncodeToString(sum[:]), "1 of 2 shards are not in yet (1)"},
		{"traversal", "../../escaped.csv", hex.EncodeToString(sum[:]), `file name "../../escaped.csv"`},
		{"tampered", "2026-12-02-scan_ntp-x.csv", strings.Repeat("0", 64), "does not match the manifest"},
	} {
		put("runs/"+c.run+"/spec", map[string]any{"run": c.run, "shards": 2, "seed": 1, "probes": "version"})
		shards := 2
		if c.run == "missing" {
			shards = 1
		}
		for i := range shards {
			put(fmt.Sprintf("runs/%s/shards/%d/manifest", c.run, i), map[string]any{"run": c.run, "shard": i, "attempt": "a1",
				"files": []map[string]any{{"name": c.file, "size": len(csv), "sha256": c.sum}}})
			_, err := obs.PutBytes(ctx, fmt.Sprintf("runs/%s/shards/%d/a1/%s", c.run, i, c.file), csv)
			require.NoError(t, err)
		}
		stderr, err := merge(c.run)
		assert.Error(t, err, c.run)
		assert.Contains(t, stderr, c.want, c.run)
	}
	_, err := os.Stat(filepath.Join(filepath.Dir(t.TempDir()), "escaped.csv"))
	assert.True(t, os.IsNotExist(err))
}

// TestDistributedShardFails: a shard no worker can scan (here its
// targets in the object store changed under their hash) is marked
// failed at once and the submitter stops with the worker's error; put
// right and submitted again under the same -run, it is queued again and
// the run completes.
func TestDistributedShardFails(t *testing.T) {
	bin, ns, targets, flags, _, _ := distSetup(t, 0)
	args := append(slices.Clone(flags), "-submit", ns.url(), "-run", "fails", "-shards", "1", "-seed", "2", "-rate", "300",
		"-progress-every", "100ms", "-i", targets, "-out", t.TempDir())
	sub := startProc(t, bin, args...)
	require.True(t, sub.waitLine(t, "1 shards queued", 30*time.Second))
	ctx := context.Background()
	obs := ns.objectStore(t)
	list, err := obs.List(ctx)
	require.NoError(t, err)
	input := ""
	for _, o := range list {
		if strings.HasPrefix(o.Name, "inputs/") {
			input = o.Name
		}
	}
	require.NotEmpty(t, input)
	good, err := obs.GetBytes(ctx, input)
	require.NoError(t, err)
	_, err = obs.PutBytes(ctx, input, []byte("127.0.0.1\n"))
	require.NoError(t, err)

	w := startProc(t, bin, "-worker", ns.url(), "-allow-loopback")
	err = sub.wait(t, 60*time.Second)
	assert.Error(t, err)
	assert.True(t, sub.waitLine(t, "shard 0 failed 1 times", 0), "the worker's error reaches the submitter")
	assert.True(t, sub.waitLine(t, "does not match its hash", 0))

	_, err = obs.PutBytes(ctx, input, good)
	require.NoError(t, err)
	again := startProc(t, bin, args...)
	require.NoError(t, again.wait(t, 60*time.Second))
	assert.True(t, again.waitLine(t, "1 shards queued", 0), "queued again")
	assert.Contains(t, again.out.String(), "1 shards merged")
	assert.Len(t, shardsScanned([]*proc{w}, "fails"), 1)
}

// TestDistributedWorkerRefuses: a shard asking a worker for loopback
// (-allow-loopback, here the lab's), which the worker was not started
// with, is refused and marked failed: a message cannot aim workers at
// their own networks.
func TestDistributedWorkerRefuses(t *testing.T) {
	bin, ns, targets, flags, _, _ := distSetup(t, 0)
	sub := startProc(t, bin, append(slices.Clone(flags), "-submit", ns.url(), "-run", "refused", "-shards", "1", "-seed", "2",
		"-progress-every", "100ms", "-i", targets)...)
	startProc(t, bin, "-worker", ns.url())
	assert.Error(t, sub.wait(t, 60*time.Second))
	assert.True(t, sub.waitLine(t, "asks for -allow-loopback, which this worker was not started with", 0))
	// -run is for Indexed Jobs only.
	w := startProc(t, bin, "-worker", ns.url(), "-run", "refused")
	var ee *exec.ExitError
	require.ErrorAs(t, w.wait(t, 30*time.Second), &ee)
	assert.Equal(t, exitUsage, ee.ExitCode())
}
