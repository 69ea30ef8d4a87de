package bench

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/facebook/time/ntp/control"
	"github.com/ntpctl/ntpctl/internal/hexcap"
	"github.com/ntpctl/ntpctl/mode6"
)

// readVarCaptures are real READVAR replies from mode6/testdata: their data
// is 345 (ntpsec) and 374 (ntpd) octets.
var readVarCaptures = []struct{ name, file string }{
	{"ntpsec-1.2.2", "ntpsec-rv-v4"},
	{"ntpsec-1.2.2-v6", "ntpsec-rv-v6"},
	{"ntpd-4.2.8p18", "classic-rv-v4"},
}

// readVarData reassembles the reply of a capture in mode6/testdata.
func readVarData(tb testing.TB, file string) []byte {
	tb.Helper()
	pkts, err := hexcap.Load(filepath.Join("..", "mode6", "testdata", file+".hex.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	var r mode6.Reassembler
	for _, p := range pkts {
		if p.Dst.Port() == 123 {
			var h mode6.Header
			if err := h.UnmarshalBinary(p.Payload); err != nil {
				tb.Fatal(err)
			}
			r.Reset(h.Seq, h.Op)
			continue
		}
		if err := r.Add(p.Payload); err != nil {
			tb.Fatal(err)
		}
	}
	if !r.Complete() {
		tb.Fatalf("%s: incomplete reply", file)
	}
	return r.Reply().Data
}

// speedup times ref and f in pairs of back-to-back rounds of n calls
// each (which goes first alternates), and returns the median over the
// pairs of ref's time over f's: how many times faster f is. A pair's two
// rounds see the same load on a shared machine, and the median ignores
// the pairs a burst of it split.
func speedup(n int, ref, f func()) float64 {
	round := func(g func()) float64 {
		start := time.Now()
		for range n {
			g()
		}
		return float64(time.Since(start))
	}
	round(ref) // warm-up
	round(f)
	ratios := make([]float64, 41)
	for i := range ratios {
		var r, g float64
		if i%2 == 0 {
			r, g = round(ref), round(f)
		} else {
			g, r = round(f), round(ref)
		}
		ratios[i] = r / g
	}
	slices.Sort(ratios)
	return ratios[len(ratios)/2]
}

// BenchmarkReadVar compares mode6.ParseVars and mode6.ParseSystemVars with
// facebook/time's control.NormalizeData (a map of trimmed strings) on the
// same real READVAR replies. Each ntpctl sub-benchmark reports
// "x-facebook": how many times faster than NormalizeData it is, from the
// two timed in alternating rounds in the same run (see speedup); its ns/op is the
// usual benchmark average, which a loaded machine inflates.
func BenchmarkReadVar(b *testing.B) {
	for _, c := range readVarCaptures {
		data := readVarData(b, c.file)
		want, err := control.NormalizeData(data)
		if err != nil {
			b.Fatal(err)
		}
		if vs, _ := mode6.ParseVars(data); len(vs) != len(want) {
			b.Fatalf("%s: ParseVars %d variables, NormalizeData %d", c.name, len(vs), len(want))
		}
		var sink int
		fb := func() {
			m, _ := control.NormalizeData(data)
			sink += len(m)
		}
		ratio := func(b *testing.B, f func()) {
			n := 300
			if b.N == 1 { // -benchtime 1x: a smoke run
				n = 3
			}
			b.ReportMetric(speedup(n, fb, f), "x-facebook")
		}
		b.Run(c.name+"/facebook-NormalizeData", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				fb()
			}
		})
		b.Run(c.name+"/ParseVars", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			parse := func() {
				vs, _ := mode6.ParseVars(data)
				sink += len(vs)
			}
			for b.Loop() {
				parse()
			}
			ratio(b, parse)
		})
		b.Run(c.name+"/ParseSystemVars", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			if _, err := mode6.ParseSystemVars(data); err != nil {
				b.Fatal(err)
			}
			parse := func() {
				s, _ := mode6.ParseSystemVars(data)
				sink += int(s.Stratum)
			}
			for b.Loop() {
				parse()
			}
			ratio(b, parse)
		})
		_ = sink
	}
}
