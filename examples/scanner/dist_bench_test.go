//go:build nats

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl/internal/lab"
)

// The benchmarks of scanning on many machines (go test -tags nats -bench
// . -benchtime 1x ./examples/scanner): what JetStream costs per shard,
// and whether three workers on this machine keep up with one at the
// same total rate.

// BenchmarkEngineOverhead: one shard of 2^16 targets (a /16 of loopback
// with 2,048 simulated servers in it, NTPCTL_BENCH_LAB_HOSTS to change:
// 3% of the addresses, where an Internet scan finds well under 1%
// answering) at 20,000 requests/s, taken
// through the engine as a worker takes it: the spec and inputs put, the
// message published, fetched, the shard scanned, its files and manifest
// put, the message acknowledged. overhead-% is the engine's time (all
// but the scan) over the scan's; the goal is below 1. Most of it is the
// upload of the shard's files (files-MB/shard), which grows with the
// servers that answer: with 16,384 servers (25%) the files are 76 MB.
func BenchmarkEngineOverhead(b *testing.B) {
	ns := startNATS(b)
	hosts := 2048
	if v, err := strconv.Atoi(os.Getenv("NTPCTL_BENCH_LAB_HOSTS")); err == nil {
		hosts = v
	}
	l, err := lab.Start(context.Background(), lab.Config{Hosts: hosts, Seed: 6, Prefix: netip.MustParsePrefix("127.81.0.0/16"), NoIPv6: true})
	require.NoError(b, err)
	defer l.Close()
	targets := filepath.Join(b.TempDir(), "targets.txt")
	require.NoError(b, os.WriteFile(targets, []byte("127.81.0.0/16\n"), 0o644))
	ctx := context.Background()
	nc, err := nats.Connect(ns.url())
	require.NoError(b, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(b, err)
	o, err := parseFlags([]string{"-worker", ns.url(), "-allow-loopback", "-progress-every", "1s", "127.0.0.1"}, io.Discard)
	require.NoError(b, err)
	d := &dist{o: o, nc: nc, js: js, stdout: io.Discard, stderr: io.Discard}
	cons, err := d.setup(ctx, time.Minute)
	require.NoError(b, err)
	content, err := os.ReadFile(targets)
	require.NoError(b, err)
	var engine, scan time.Duration
	var size int64
	round := 0
	for b.Loop() {
		round++
		run := fmt.Sprintf("bench-%d", round)
		d.scanTime = 0
		start := time.Now()
		spec := shardSpec{Run: run, Shards: 1, Seed: 7, Probes: "both", Rate: 20000, Date: time.Now().UTC(),
			Args: []string{"-allow-loopback=true", "-port=" + strconv.Itoa(int(l.Port())), "-retries=0", "-timeout=500ms", "-quiet=200ms"}}
		spec.Targets, err = d.putInput(ctx, content)
		require.NoError(b, err)
		sb, _ := json.Marshal(spec)
		_, err = d.obs.PutBytes(ctx, specName(run), sb)
		require.NoError(b, err)
		_, err = js.Publish(ctx, shardSubjectOf(run, 0), sb, jetstream.WithMsgID(run+"/0"))
		require.NoError(b, err)
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
		require.NoError(b, err)
		n := 0
		for msg := range batch.Messages() {
			d.handle(ctx, msg, "bench", nil)
			n++
		}
		require.Equal(b, 1, n)
		took := time.Since(start)
		var m manifest
		require.NoError(b, d.getJSON(ctx, manifestName(run, 0), &m), "the shard is in")
		for _, f := range m.Files {
			size += f.Size
		}
		engine += took - d.scanTime
		scan += d.scanTime
	}
	b.ReportMetric(100*engine.Seconds()/scan.Seconds(), "overhead-%")
	b.ReportMetric(engine.Seconds()*1000/float64(b.N), "engine-ms/shard")
	b.ReportMetric(scan.Seconds()/float64(b.N), "scan-s/shard")
	b.ReportMetric(float64(size)/float64(b.N)/1e6, "files-MB/shard")
}

// BenchmarkWorkers: the same scan (16,384 simulated servers, 12 shards,
// 6,000 requests/s in all) by one worker process and by three, each
// taking a third of the rate, on this machine. x-one-worker is three
// workers' throughput over one's, measured in the same rounds; the goal
// is at least 1 (the engine adds no bottleneck).
func BenchmarkWorkers(b *testing.B) {
	bin := scannerWithNATS(b)
	l, err := lab.Start(context.Background(), lab.Config{Hosts: 16384, Seed: 8, Prefix: netip.MustParsePrefix("127.82.0.0/16"), NoIPv6: true})
	require.NoError(b, err)
	defer l.Close()
	var list []byte
	for _, h := range l.Hosts() {
		list = append(list, h.Addr.Addr().String()+"\n"...)
	}
	targets := filepath.Join(b.TempDir(), "targets.txt")
	require.NoError(b, os.WriteFile(targets, list, 0o644))
	flags := []string{"-allow-loopback", "-port", strconv.Itoa(int(l.Port())), "-retries", "0", "-timeout", "500ms", "-quiet", "200ms",
		"-progress", "none", "-i", targets, "-shards", "12", "-seed", "13", "-rate", "6000"}
	var took [2]time.Duration
	round := 0
	for b.Loop() {
		for k, workers := range []int{1, 3} {
			round++
			ns := startNATS(b)
			var ws []*proc
			for range workers {
				ws = append(ws, startProc(b, bin, "-worker", ns.url(), "-allow-loopback"))
			}
			start := time.Now()
			sub := startProc(b, bin, append(slices.Clone(flags), "-submit", ns.url(), "-run", fmt.Sprintf("w%d", round),
				"-workers", strconv.Itoa(workers), "-out", b.TempDir())...)
			require.NoError(b, sub.wait(b, 5*time.Minute))
			took[k] += time.Since(start)
			for _, w := range ws {
				_ = w.cmd.Process.Kill()
			}
		}
	}
	n := float64(len(l.Hosts()) * b.N)
	b.ReportMetric(n/took[0].Seconds(), "targets/s-1")
	b.ReportMetric(n/took[1].Seconds(), "targets/s-3")
	b.ReportMetric(took[0].Seconds()/took[1].Seconds(), "x-one-worker")
}
