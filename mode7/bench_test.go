package mode7_test

import (
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/mode7"
)

// BenchmarkDecodePacket decodes one full 440-octet MON_GETLIST_1 packet
// and its six entries.
func BenchmarkDecodePacket(b *testing.B) {
	full := vectors(b)["R7-1"]
	b.SetBytes(int64(len(full)))
	b.ReportAllocs()
	var sink uint32
	for b.Loop() {
		var p mode7.Packet
		if err := p.DecodeFromBytes(full); err != nil {
			b.Fatal(err)
		}
		for e := range p.Entries() {
			sink += e.Count
		}
	}
	_ = sink
}

// BenchmarkFullReply compares reassembling and decoding a full 600-entry,
// 100-packet monlist reply (44,000 octets of UDP payload) into ordered
// monitor entries with plain copies of the same octets: one memmove of the
// contiguous 44,000 octets, and one copy per datagram. The "x-copy" metric
// is the decode's ns/op over the contiguous copy's, timed in the same run.
func BenchmarkFullReply(b *testing.B) {
	pkts := encodeReply(b, mode7.NewRequest(42), clients(600))
	total := 0
	for _, p := range pkts {
		total += len(p)
	}
	flat := make([]byte, 0, total)
	for _, p := range pkts {
		flat = append(flat, p...)
	}
	dst := make([]byte, total)

	// The copy's cost per operation, measured here too so that the ratio
	// compares two figures from the same run: the best of five timings of
	// 10,000 copies, after a warm-up.
	copyNs := 0.0
	for round := range 6 {
		start := time.Now()
		for range 10000 {
			copy(dst, flat)
		}
		ns := float64(time.Since(start).Nanoseconds()) / 10000
		if round > 0 && (copyNs == 0 || ns < copyNs) {
			copyNs = ns
		}
	}

	b.Run("copy", func(b *testing.B) {
		b.SetBytes(int64(total))
		b.ReportAllocs()
		for b.Loop() {
			copy(dst, flat)
		}
	})
	b.Run("copy-per-datagram", func(b *testing.B) {
		b.SetBytes(int64(total))
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for _, p := range pkts {
				n += copy(dst[n:], p)
			}
		}
	})
	// Two floors of an eager decode, for the closing ratio: writing the
	// 600 decoded entries alone (a copy of 600 MonitorEntry values, 48,000
	// octets with two pointers each), and decoding each datagram's items
	// into them with no reassembly bookkeeping.
	want := make([]mode7.MonitorEntry, 0, 600)
	for _, p := range pkts {
		var pk mode7.Packet
		if err := pk.DecodeFromBytes(p); err != nil {
			b.Fatal(err)
		}
		for e := range pk.Entries() {
			want = append(want, e)
		}
	}
	out := make([]mode7.MonitorEntry, len(want))
	b.Run("copy-entries", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			copy(out, want)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/copyNs, "x-copy")
	})
	b.Run("decode-only", func(b *testing.B) {
		b.SetBytes(int64(total))
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for _, p := range pkts {
				var pk mode7.Packet
				_ = pk.DecodeFromBytes(p)
				for i := range int(pk.NItems) {
					_ = out[n].UnmarshalBinary(pk.Item(i))
					n++
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/copyNs, "x-copy")
	})
	b.Run("reassemble+decode", func(b *testing.B) {
		b.SetBytes(int64(total))
		b.ReportAllocs()
		req := mode7.NewRequest(42)
		var r mode7.Reassembler
		var entries []mode7.MonitorEntry
		for b.Loop() {
			r.ResetFor(req)
			for _, p := range pkts {
				if err := r.Add(p); err != nil {
					b.Fatal(err)
				}
			}
			entries = r.Entries()
		}
		if len(entries) != 600 {
			b.Fatalf("%d entries", len(entries))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/copyNs, "x-copy")
		b.ReportMetric(float64(b.N)*600/b.Elapsed().Seconds(), "entries/s")
	})
}

// BenchmarkAppendMonitorReply encodes a full 600-entry reply into reused
// buffers, as the simulated server does.
func BenchmarkAppendMonitorReply(b *testing.B) {
	entries := clients(600)
	req := mode7.NewRequest(42).Header()
	pkts, _ := mode7.AppendMonitorReply(nil, req, entries)
	b.SetBytes(44000)
	b.ReportAllocs()
	for b.Loop() {
		pkts, _ = mode7.AppendMonitorReply(pkts[:0], req, entries)
	}
}

// BenchmarkAppendRequest builds the 48-octet monlist probe.
func BenchmarkAppendRequest(b *testing.B) {
	req := mode7.NewRequest(42)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = req.AppendBinary(buf[:0])
	}
}
