//go:build nats

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ntpctl/ntpctl/report"
)

// mergeRun makes one scan directory (-out) of a run's shards, once every
// shard is in: each report the shards' rows under one header, the JSON
// lines one after the other, the statistics added up, the target space
// the whole scan's.
func (d *dist) mergeRun(ctx context.Context) error {
	o := d.o
	if o.runID == "" || o.out == "" {
		return usagef("-merge needs -run ID and -out DIR")
	}
	if d.obs == nil {
		obs, err := d.js.ObjectStore(ctx, bucket)
		if err != nil {
			return fmt.Errorf("object store %s: %w", bucket, err)
		}
		d.obs = obs
	}
	var spec shardSpec
	if err := d.getJSON(ctx, specName(o.runID), &spec); err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return usagef("-run %s: no such run", o.runID)
		}
		return fmt.Errorf("run %s: %w", o.runID, err)
	}
	if err := checkSpec(&spec, o.runID); err != nil {
		return err
	}
	var ms []manifest
	var missing []int
	for i := range spec.Shards {
		var m manifest
		err := d.getJSON(ctx, manifestName(spec.Run, i), &m)
		switch {
		case errors.Is(err, jetstream.ErrObjectNotFound):
			missing = append(missing, i)
			continue
		case err != nil:
			return fmt.Errorf("shard %d: %w", i, err)
		}
		if m.Run != spec.Run || m.Shard != i || !runIDPattern.MatchString(m.Attempt) {
			return fmt.Errorf("shard %d: its manifest names run %q shard %d", i, m.Run, m.Shard)
		}
		ms = append(ms, m)
	}
	if len(missing) > 0 {
		return fmt.Errorf("run %s: %d of %d shards are not in yet (%s); the run is merged once every shard is", spec.Run,
			len(missing), spec.Shards, shardList(missing))
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return usageError{err}
	}
	// Every file name of every shard.
	var names []string
	seen := map[string]bool{}
	for _, m := range ms {
		for _, f := range m.Files {
			if f.Name != filepath.Base(f.Name) || strings.HasPrefix(f.Name, ".") || f.Name == "" {
				return fmt.Errorf("shard %d: file name %q", m.Shard, f.Name)
			}
			if !seen[f.Name] {
				seen[f.Name] = true
				names = append(names, f.Name)
			}
		}
	}
	slices.Sort(names)
	stats := mergeStats(&spec, ms)
	base := spec.Date.Format("2006-01-02") + "-ntpctl-" + fileIDOf(ms)
	// Every name checked before anything is written.
	var merged []string
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, "-stats.json"), strings.HasSuffix(name, "-stats.txt"):
			continue // written from the merged statistics
		case strings.HasSuffix(name, ".csv"):
			if _, err := reportType(name); err != nil {
				return fmt.Errorf("shard file %q: %w", name, err)
			}
		case strings.HasSuffix(name, ".jsonl"):
		default:
			return fmt.Errorf("shard file %q: not one a scan writes", name)
		}
		merged = append(merged, name)
	}
	for _, name := range append(slices.Clone(merged), base+"-stats.json", base+"-stats.txt") {
		if _, err := os.Stat(filepath.Join(o.out, name)); err == nil && !o.force {
			return usagef("-out %s: %s exists (-force replaces the files the merge writes)", o.out, name)
		}
	}
	sums := map[string]*report.Stats{} // by probe
	for _, name := range probeNames {
		sums[name] = &report.Stats{}
	}
	for _, name := range merged {
		path := filepath.Join(o.out, name)
		csv := strings.HasSuffix(name, ".csv")
		if err := d.mergeFile(ctx, &spec, ms, name, path, csv); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if csv {
			t, err := reportType(name)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := countRows(sums[probeOfType(t)], t, path); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	for name, slot := range probeStats(&stats) {
		if p := *slot; p != nil {
			statuses := p.Report.Statuses
			p.Report = sums[name].Summary()
			p.Report.Statuses = statuses
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(stats); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, base+"-stats.json"), report.EscapeJSON(buf.Bytes()), 0o644); err != nil {
		return err
	}
	buf.Reset()
	writeStatsText(&buf, &stats)
	if err := os.WriteFile(filepath.Join(o.out, base+"-stats.txt"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(d.stdout, "run %s: %d shards merged into %s\n", spec.Run, spec.Shards, o.out)
	if o.db != "" && importRun != nil {
		msg, err := importRun(ctx, o.db, o.constituencies, o.out)
		if err != nil {
			return fmt.Errorf("-db: %w", err)
		}
		fmt.Fprintln(d.stdout, msg)
	}
	return nil
}

// fileIDOf is the ID part of the shards' statistics file names.
func fileIDOf(ms []manifest) string {
	for _, f := range ms[0].Files {
		if id, ok := strings.CutSuffix(f.Name, "-stats.json"); ok {
			if _, rest, ok := strings.Cut(id, "-ntpctl-"); ok {
				return rest
			}
		}
	}
	return "ntpctl"
}

// maxHeader bounds a report's header line.
const maxHeader = 64 << 10

// mergeFile writes one file of the run from the shards that have it, in
// shard order, streamed: a report's rows under its first header (every
// shard's the same), the JSON lines one after the other. Each part is
// checked against its manifest's hash.
func (d *dist) mergeFile(ctx context.Context, spec *shardSpec, ms []manifest, name, path string, csv bool) error {
	tmp := path + ".merging"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	w := bufio.NewWriterSize(out, 1<<20)
	var header []byte
	for _, m := range ms {
		i := slices.IndexFunc(m.Files, func(f manifestFile) bool { return f.Name == name })
		if i < 0 {
			continue // a shard without it (no IPv6 targets, say)
		}
		want := m.Files[i]
		r, err := d.obs.Get(ctx, attemptFile(spec.Run, m.Shard, m.Attempt, name))
		if err != nil {
			out.Close()
			return fmt.Errorf("shard %d: %w", m.Shard, err)
		}
		h := sha256.New()
		br := bufio.NewReaderSize(io.TeeReader(r, h), 1<<16)
		if csv {
			line, err := br.ReadSlice('\n')
			if err != nil {
				r.Close()
				out.Close()
				return fmt.Errorf("shard %d: no header line of at most %d bytes: %w", m.Shard, maxHeader, err)
			}
			switch {
			case header == nil:
				header = append([]byte(nil), line...)
				_, err = w.Write(line)
			case !bytes.Equal(line, header):
				err = fmt.Errorf("shard %d has another header", m.Shard)
			}
			if err != nil {
				r.Close()
				out.Close()
				return err
			}
		}
		n, err := io.Copy(w, br)
		r.Close()
		if err != nil {
			out.Close()
			return fmt.Errorf("shard %d: %w", m.Shard, err)
		}
		if hex.EncodeToString(h.Sum(nil)) != want.SHA256 {
			out.Close()
			return fmt.Errorf("shard %d: content does not match the manifest (%d bytes)", m.Shard, n)
		}
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// countRows counts a merged report's rows into its probe's statistics.
func countRows(st *report.Stats, t report.Type, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	switch {
	case t.IsMonitor():
		return countEach(r, st, (*report.Stats).AddMonitor)
	case t.IsMRU():
		return countEach(r, st, (*report.Stats).AddMRU)
	case t.IsAccessible():
		return countEach(r, st, (*report.Stats).AddAccessible)
	}
	return countEach(r, st, (*report.Stats).AddVersion)
}

func countEach[T report.Row](r io.Reader, st *report.Stats, add func(*report.Stats, *T)) error {
	for row, err := range report.NewReader[T](r, report.ReaderOptions{}).All() {
		if err != nil {
			return err
		}
		add(st, &row)
	}
	return nil
}

// mergeStats adds up the shards' statistics into the run's.
func mergeStats(spec *shardSpec, ms []manifest) report.JSONScanStats {
	st := report.JSONScanStats{Seed: spec.Seed, Shard: "0/1", Space: ms[0].Space, Blocked: ms[0].Stats.Blocked}
	for i := range ms {
		s := &ms[i].Stats
		if st.Started.IsZero() || s.Started.Before(st.Started) {
			st.Started = s.Started
		}
		if s.Finished.After(st.Finished) {
			st.Finished = s.Finished
		}
		st.Targets += s.Targets
		st.TargetsEstimated = st.TargetsEstimated || s.TargetsEstimated
		st.Interrupted = st.Interrupted || s.Interrupted
		st.Sent += s.Sent
		st.SendRate += s.SendRate
		st.Enrichment.Errors += s.Enrichment.Errors
		if st.Scanner == "" {
			st.Scanner = s.Scanner
		}
		if s.Failed != "" && st.Failed == "" {
			st.Failed = fmt.Sprintf("shard %d: %s", ms[i].Shard, s.Failed)
		}
		st.Discover = st.Discover || s.Discover
		srcs := probeStats(s)
		for name, dst := range probeStats(&st) {
			src := *srcs[name]
			if src == nil {
				continue
			}
			if *dst == nil {
				*dst = &report.JSONProbeStats{}
			}
			p := *dst
			p.Prober.Add(&src.Prober)
			p.Replied += src.Replied
			p.Report.Statuses = addCounts(p.Report.Statuses, src.Report.Statuses)
		}
	}
	for i := range ms {
		if !slices.Equal(ms[i].Space, st.Space) {
			st.Space = nil // the shards disagree on what the scan covers: nothing is taken as covered
		}
	}
	if st.Interrupted || st.Failed != "" || st.Discover {
		st.Space = nil // not covered completely
	}
	// The shards ran partly one after another: the run's rates are over
	// its whole time, not the shards' added up.
	if span := st.Finished.Sub(st.Started).Seconds(); span > 0 {
		st.SendRate = float64(st.Sent) / span
		for _, slot := range probeStats(&st) {
			if p := *slot; p != nil {
				p.Prober.SendRate = float64(p.Prober.Sent) / span
			}
		}
	}
	for _, slot := range probeStats(&st) {
		if p := *slot; p != nil {
			p.Prober.CurrentSendRate = 0
		}
	}
	return st
}

// addCounts adds b's counts to a's by key, largest first, then by key.
func addCounts(a, b []report.Count) []report.Count {
	m := map[string]int{}
	for _, c := range slices.Concat(a, b) {
		m[c.Key] += c.Count
	}
	out := make([]report.Count, 0, len(m))
	for k, n := range m {
		out = append(out, report.Count{Key: k, Count: n})
	}
	slices.SortFunc(out, func(x, y report.Count) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return cmp.Compare(x.Key, y.Key)
	})
	return out
}

// shardList writes shard numbers short: "0, 3, 7" or the first ten and
// how many more.
func shardList(s []int) string {
	var parts []string
	for i, n := range s {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(s)-10))
			break
		}
		parts = append(parts, fmt.Sprint(n))
	}
	return strings.Join(parts, ", ")
}
