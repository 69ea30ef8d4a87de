package mode6_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/mode6"
)

func seedDatagrams(f *testing.F, add func(b []byte)) {
	for _, b := range vectors(f) {
		add(b)
	}
	for _, name := range []string{"ntpsec-rv-v4", "ntpsec-rv-multifrag", "ntpsec-rv-peer", "classic-rv-peer", "ntpsec-rv-badassoc-raw"} {
		for _, p := range capture(f, name) {
			add(p.Payload)
		}
	}
}

// FuzzPacket: decode → encode → decode gives the same header and data, and
// the encoding is the datagram up to its data.
func FuzzPacket(f *testing.F) {
	seedDatagrams(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		var p mode6.Packet
		err := p.DecodeFromBytes(b)
		var se mode6.ServerError
		if err != nil && !errors.As(err, &se) {
			if p.Data != nil {
				t.Fatal("data kept on error")
			}
			return
		}
		if len(p.Data) != int(p.Count) || len(p.Data)+len(p.Trailer)+12 != len(b) {
			t.Fatalf("lengths: data %d trailer %d datagram %d", len(p.Data), len(p.Trailer), len(b))
		}
		out, encErr := p.MarshalBinary()
		if encErr != nil {
			t.Fatal(encErr)
		}
		if !bytes.Equal(out[:12+len(p.Data)], b[:12+len(p.Data)]) || len(out)%4 != 0 {
			t.Fatal("encoding differs")
		}
		var q mode6.Packet
		err2 := q.DecodeFromBytes(out)
		if (err == nil) != (err2 == nil) || q.Header != p.Header || !bytes.Equal(q.Data, p.Data) {
			t.Fatalf("second decode differs: %v / %v", err, err2)
		}
	})
}

// FuzzReassembler cuts a reply of fuzzer-chosen variables into fragments
// with the ReplyBuilder, then delivers a fuzzer-chosen permutation with
// duplicates, truncations and strays. Whatever the order, the result is
// the whole text when every fragment arrived intact, and otherwise a
// sentinel error; counts and buffers stay within their caps.
func FuzzReassembler(f *testing.F) {
	f.Add("version=ntpd,stratum=2", uint16(40), []byte{0, 1, 2, 3})
	f.Add("a=1", uint16(1), []byte{0x80, 0xc0, 0x41, 0x01})
	f.Add(strings.Repeat("x=yyyyyyyyyyyyyyyyyyyy,", 30), uint16(3), []byte{5, 4, 3, 2, 1, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, seedText string, n uint16, ops []byte) {
		vs, _ := mode6.ParseVars([]byte(seedText))
		var all mode6.Vars
		for i := range int(n % 200) {
			if len(vs) > 0 {
				all = append(all, vs[i%len(vs)])
			}
		}
		var rb mode6.ReplyBuilder
		rb.Reset(mode6.Header{Version: 2, Response: true, Op: mode6.OpReadVar, Seq: 77})
		rb.PutVars(all)
		frags := rb.AppendPackets(nil, nil)
		want := append(mode6.AppendVars(nil, all), '\r', '\n')
		if len(all) == 0 {
			want = []byte{}
		}
		var r mode6.Reassembler
		r.Reset(77, mode6.OpReadVar)
		delivered := make([]bool, len(frags))
		adds, octets, mismatched := 0, 0, 0
		for _, op := range ops {
			i := int(op&0x3f) % len(frags)
			var b []byte
			switch op >> 6 {
			case 0, 1:
				b = frags[i]
				delivered[i] = true
			case 2:
				b = frags[i][:int(op)%len(frags[i])]
				// Cutting only padding leaves the fragment whole.
				delivered[i] = delivered[i] || len(b) >= 12+int(frags[i][10])<<8+int(frags[i][11])
			case 3:
				b = append([]byte(nil), frags[i]...)
				b[3]++ // another sequence number: not in Packets or Bytes
				mismatched++
				if err := r.Add(b); !errors.Is(err, mode6.ErrMismatch) {
					t.Fatalf("another sequence number: %v", err)
				}
				continue
			}
			adds++
			octets += len(b)
			if err := r.Add(b); err != nil && !isSentinel(err) {
				t.Fatalf("Add: %v", err)
			}
		}
		if len(ops) == 0 || ops[len(ops)-1]&1 == 0 {
			for i, b := range frags {
				if !delivered[i] {
					adds++
					octets += len(b)
					_ = r.Add(b)
					delivered[i] = true
				}
			}
		}
		intact := true
		for _, d := range delivered {
			intact = intact && d
		}
		rep := r.Reply()
		if vs, st := mode6.ParseVars(rep.Data); !slices.Equal(vs, rep.Vars) || st != rep.Parse {
			t.Fatalf("Reply's Vars %+v, ParseVars of its Data %+v", rep.Vars, vs)
		}
		if rep.Packets != adds || rep.Mismatched != mismatched || rep.Bytes != octets || rep.Fragments > mode6.MaxFragments || len(rep.Data) > mode6.MaxReplyLen {
			t.Fatalf("counts %+v", rep.ReassemblyStats)
		}
		tooMany := len(frags) > mode6.MaxFragments
		switch {
		case intact && !tooMany:
			if rep.Err != nil || !bytes.Equal(rep.Data, want) {
				t.Fatalf("all fragments delivered: %v, %d octets of %d", rep.Err, len(rep.Data), len(want))
			}
		case rep.Err == nil:
			t.Fatal("incomplete reply without an error")
		default:
			if !isSentinel(rep.Err) || !bytes.HasPrefix(want, rep.Data) {
				t.Fatalf("partial reply %v", rep.Err)
			}
		}
	})
}

// FuzzParseVars: ParseVars never panics, its names and values carry no
// separators it would split on again, and writing what it parsed and
// parsing that gives the same list.
func FuzzParseVars(f *testing.F) {
	seedDatagrams(f, func(b []byte) {
		if len(b) > 12 {
			f.Add(b[12:])
		}
	})
	f.Add([]byte(`a="x, y=z", b, c=, d=1 2filtoffset=3,` + "\r\n\x00\xff" + `e="unterminated`))
	f.Fuzz(func(t *testing.T, data []byte) {
		vs, _ := mode6.ParseVars(data)
		for _, v := range vs {
			if v.Name == "" || strings.ContainsAny(v.Name, ",=\r\n") {
				t.Fatalf("bad name %q", v.Name)
			}
			if !v.Quoted && strings.ContainsAny(v.Value, ",\r\n") {
				t.Fatalf("bad value %q", v.Value)
			}
		}
		text := mode6.AppendVars(nil, vs)
		back, st := mode6.ParseVars(text)
		if !st.Clean() && st != (mode6.ParseStats{Unterminated: st.Unterminated}) {
			t.Fatalf("re-parse needed repairs: %+v of %q", st, text)
		}
		if len(back) != len(vs) {
			t.Fatalf("re-parse: %d vars, want %d (%q)", len(back), len(vs), text)
		}
		for i := range vs {
			if back[i] != vs[i] {
				t.Fatalf("re-parse: %+v, want %+v", back[i], vs[i])
			}
		}
	})
}

// FuzzParseAppend: a list of well-formed variables survives
// AppendVars → ParseVars unchanged.
func FuzzParseAppend(f *testing.F) {
	f.Add("version", "ntpd 4.2.8", true, "stratum", "16", false)
	f.Add("a", "", false, "b", "x=y, z", true)
	f.Fuzz(func(t *testing.T, n1, v1 string, q1 bool, n2, v2 string, q2 bool) {
		mk := func(n, v string, q bool) (mode6.Var, bool) {
			if n == "" || strings.ContainsAny(n, ",=\r\n\" \t") || strings.ContainsFunc(n+v, func(r rune) bool { return r < ' ' || r > '~' }) {
				return mode6.Var{}, false
			}
			if q {
				return mode6.Var{Name: n, Value: v, Quoted: true}, !strings.Contains(v, `"`)
			}
			v = strings.Trim(v, " \t")
			if strings.ContainsAny(v, `,"=`) || strings.HasPrefix(v, `"`) {
				return mode6.Var{}, false
			}
			return mode6.Var{Name: n, Value: v}, true
		}
		a, ok1 := mk(n1, v1, q1)
		b, ok2 := mk(n2, v2, q2)
		if !ok1 || !ok2 {
			return
		}
		vs := mode6.Vars{a, b, a}
		got, st := mode6.ParseVars(mode6.AppendVars(nil, vs))
		if !st.Clean() || len(got) != 3 || got[0] != a || got[1] != b || got[2] != a {
			t.Fatalf("%+v -> %+v (%+v)", vs, got, st)
		}
	})
}

// FuzzTimestamp: printing and parsing round-trip, and so do time
// conversions within a nanosecond.
func FuzzTimestamp(f *testing.F) {
	f.Add(uint64(0xdfb39d2d_8598591b), "0xdfb39d2d.8598591b")
	f.Add(uint64(0), "eeb2d8bb.4c50ec8d")
	f.Fuzz(func(t *testing.T, raw uint64, s string) {
		ts := mode6.Timestamp(raw)
		back, err := mode6.ParseTimestamp(ts.String())
		if err != nil || back != ts {
			t.Fatalf("%v -> %v (%v)", ts, back, err)
		}
		if ts != 0 {
			tm := ts.Time()
			again := mode6.TimestampOf(tm)
			if d := int64(again) - int64(ts); d > 5 || d < -5 {
				t.Fatalf("%v -> %v -> %v", ts, tm, again)
			}
			if !ts.TimeNear(tm.Add(time.Hour)).Equal(tm) {
				t.Fatal("TimeNear picked another era")
			}
		}
		if p, err := mode6.ParseTimestamp(s); err == nil {
			if q, _ := mode6.ParseTimestamp(p.String()); q != p {
				t.Fatal("parse of print differs")
			}
		}
	})
}

// FuzzSystemVars: typing never panics; every error is a field error.
func FuzzSystemVars(f *testing.F) {
	seedDatagrams(f, func(b []byte) {
		if len(b) > 12 {
			f.Add(b[12:])
		}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := mode6.ParseSystemVars(data)
		if err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *mode6.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("not a field error: %v", e)
				}
			}
		}
		_ = s.Banner.Implementation()
	})
}

func isSentinel(err error) bool {
	var se mode6.ServerError
	if errors.As(err, &se) {
		return true
	}
	for _, s := range []error{mode6.ErrShort, mode6.ErrMode, mode6.ErrNotResponse, mode6.ErrVersion,
		mode6.ErrLength, mode6.ErrTruncated, mode6.ErrPadding, mode6.ErrMismatch, mode6.ErrDuplicate,
		mode6.ErrOverlap, mode6.ErrEmptyFragment, mode6.ErrSequence, mode6.ErrCapacity,
		mode6.ErrTooManyFragments, mode6.ErrIncomplete} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzReassemblyProvenance: every octet a Reassembler returns came from
// a fragment it accepted, at that fragment's place: however the datagrams
// overlap, repeat, contradict or carry junk, reassembly invents nothing
// and moves nothing. The input is a few datagrams split at 0xff 0xfe
// markers, given twice in turn so that later ones meet held fragments;
// the first decodable one binds the request.
func FuzzReassemblyProvenance(f *testing.F) {
	seedDatagrams(f, func(b []byte) { f.Add(b) })
	var rb mode6.ReplyBuilder
	rb.Reset(mode6.Header{Response: true, Op: mode6.OpReadVar, Seq: 3, Version: 2})
	rb.PutVar(mode6.Var{Name: "version", Value: strings.Repeat("x", 900), Quoted: true})
	f.Add(bytes.Join(rb.AppendPackets(nil, nil), []byte{0xff, 0xfe}))
	f.Fuzz(func(t *testing.T, in []byte) {
		var r mode6.Reassembler
		type kept struct {
			off, end int
			data     []byte
		}
		var frags []kept
		parts := bytes.Split(in, []byte{0xff, 0xfe})
		if len(parts) > 64 {
			parts = parts[:64]
		}
		for _, d := range append(parts, parts...) {
			if r.Add(d) != nil {
				continue
			}
			var p mode6.Packet
			if err := p.DecodeFromBytes(d); err != nil {
				t.Fatalf("a kept fragment does not decode: %v", err)
			}
			frags = append(frags, kept{int(p.Offset), int(p.Offset) + int(p.Count), p.Data})
		}
		data := r.Data()
		for i := range data {
			ok := false
			for _, k := range frags {
				if i >= k.off && i < k.end && k.data[i-k.off] == data[i] {
					ok = true
					break
				}
			}
			if !ok {
				t.Fatalf("octet %d (%#x) of the reply came from no accepted fragment", i, data[i])
			}
		}
		if rep := r.Reply(); !bytes.Equal(rep.Data, data) {
			t.Fatal("Reply's data differs from Data")
		}
	})
}
