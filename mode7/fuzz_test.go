package mode7_test

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/ntpctl/ntpctl/mode7"
)

// seedReplies adds every captured and derived reply datagram to f.
func seedReplies(f *testing.F, add func(b []byte)) {
	for _, b := range vectors(f) {
		add(b)
	}
	for _, name := range []string{"legacy-monlist-small", "legacy-monlist-40", "classic-monlist-nodata"} {
		for _, p := range capture(f, name) {
			add(p.Payload)
		}
	}
}

// FuzzHeader: every 8 octets whose mode is 7 decode to a header that
// encodes back to the same octets.
func FuzzHeader(f *testing.F) {
	seedReplies(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		var h mode7.Header
		if err := h.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, mode7.ErrShort) && !errors.Is(err, mode7.ErrMode) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		out, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatalf("decoded header does not encode: %v (%+v)", err, h)
		}
		if !bytes.Equal(out, b[:mode7.HeaderLen]) {
			t.Fatalf("round trip %x -> %+v -> %x", b[:8], h, out)
		}
	})
}

// FuzzPacket: decode → encode → decode gives the same packet, the encoding
// is the datagram without its padding, and the entries decode.
func FuzzPacket(f *testing.F) {
	seedReplies(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		var p mode7.Packet
		err := p.DecodeFromBytes(b)
		var ie mode7.InfoErr
		if err != nil && !errors.As(err, &ie) {
			if p.Data != nil {
				t.Fatal("data kept on error")
			}
			return
		}
		if len(p.Data) != int(p.NItems)*int(p.ItemSize) || len(p.Data) > mode7.MaxDataLen {
			t.Fatalf("data length %d for %d×%d", len(p.Data), p.NItems, p.ItemSize)
		}
		out, encErr := p.MarshalBinary()
		if encErr != nil {
			t.Fatalf("re-encode: %v", encErr)
		}
		if !bytes.Equal(out, b[:len(out)]) {
			t.Fatalf("encoding differs from the datagram")
		}
		var q mode7.Packet
		err2 := q.DecodeFromBytes(out)
		if (err == nil) != (err2 == nil) || q.Header != p.Header || !bytes.Equal(q.Data, p.Data) {
			t.Fatalf("second decode differs: %v / %v", err, err2)
		}
		n := 0
		for e, err := range p.Entries() {
			if err != nil {
				if !errors.Is(err, mode7.ErrItemSize) || mode7.IsMonitorItemSize(int(p.ItemSize)) {
					t.Fatalf("entries: %v", err)
				}
				break
			}
			if !e.Addr.IsValid() {
				t.Fatal("entry without an address")
			}
			n++
		}
		if mode7.IsMonitorItemSize(int(p.ItemSize)) && n != int(p.NItems) {
			t.Fatalf("%d entries of %d", n, p.NItems)
		}
	})
}

// FuzzEntry: in every layout, decode → encode → decode gives the same
// entry, and the encoding only differs from the input in stale fields.
func FuzzEntry(f *testing.F) {
	for _, b := range vectors(f) {
		if len(b) >= 80 {
			f.Add(b[8:80])
		}
	}
	f.Add(unhex(f, "00000040 00000003 000001d0 00000064 deadbeef cafebabe 00000001 9c41 03 04 01000000 55555555"+
		"20010db8000000000000000000000001 20010db8000000000000000000000002"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, size := range allSizes {
			if len(b) < size {
				continue
			}
			var e mode7.MonitorEntry
			if err := e.UnmarshalBinary(b[:size]); err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			out, err := e.AppendItem(nil, size)
			if err != nil {
				t.Fatalf("size %d: re-encode %+v: %v", size, e, err)
			}
			var e2 mode7.MonitorEntry
			if err := e2.UnmarshalBinary(out); err != nil || e2 != e {
				t.Fatalf("size %d: round trip %+v -> %+v (%v)", size, e, e2, err)
			}
			again, _ := e2.AppendItem(nil, size)
			if !bytes.Equal(out, again) {
				t.Fatalf("size %d: encoding is not stable", size)
			}
		}
	})
}

// FuzzEntryEncode builds entries of any shape (either family, zones,
// invalid addresses) and encodes them in every layout: never a panic,
// either a sentinel error or an item of the right size that decodes to the
// fields the layout carries.
func FuzzEntryEncode(f *testing.F) {
	f.Add([]byte{4, 192, 0, 2, 1}, []byte{6, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(123), uint32(7))
	f.Add([]byte{6, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{4, 192, 0, 2, 1}, uint16(1), uint32(0))
	f.Add([]byte{}, []byte{4, 1, 2, 3, 4}, uint16(0), uint32(1))
	f.Fuzz(func(t *testing.T, a, l []byte, port uint16, n uint32) {
		mk := func(b []byte) netip.Addr {
			if len(b) == 0 {
				return netip.Addr{}
			}
			ad, _ := netip.AddrFromSlice(b[1:])
			if b[0]%3 == 2 && ad.Is6() {
				ad = ad.WithZone("eth0")
			}
			return ad
		}
		e := mode7.MonitorEntry{Addr: mk(a), LocalAddr: mk(l), Port: port, Count: n, AvgInt: n, LastInt: n + 1,
			FirstInt: n + 2, Restrict: n + 3, Flags: n + 4, Mode: byte(n), Version: byte(n >> 8)}
		for _, size := range allSizes {
			b, err := e.AppendItem(nil, size)
			if err != nil {
				if !errors.Is(err, mode7.ErrFieldRange) {
					t.Fatalf("size %d: %v", size, err)
				}
				continue
			}
			if len(b) != size {
				t.Fatalf("size %d: encoded %d octets", size, len(b))
			}
			var d mode7.MonitorEntry
			if err := d.UnmarshalBinary(b); err != nil || d.Addr != e.Addr || d.Port != port || d.Count != n {
				t.Fatalf("size %d: %+v -> %+v (%v)", size, e, d, err)
			}
		}
	})
}

// fuzzReply is a valid reply for FuzzReassembler, with what the
// reassembler must give for it: each entry as its layout carries it, cut
// where ntpd stops. Made once per list length and request, so that an
// execution costs the reassembly, not the encoding.
type fuzzReply struct {
	entries []mode7.MonitorEntry
	pkts    [][]byte
	want    []mode7.MonitorEntry
}

var fuzzReplies = struct {
	sync.Mutex
	m   map[[2]int]*fuzzReply
	all []mode7.MonitorEntry
}{m: map[[2]int]*fuzzReply{}}

func fuzzReplyFor(t *testing.T, n int, variant uint8, req mode7.Request) *fuzzReply {
	fuzzReplies.Lock()
	defer fuzzReplies.Unlock()
	key := [2]int{n, int(variant)}
	if fr := fuzzReplies.m[key]; fr != nil {
		return fr
	}
	if fuzzReplies.all == nil {
		fuzzReplies.all = clients(1200)
	}
	if len(fuzzReplies.m) >= 256 {
		clear(fuzzReplies.m) // bounded: at most 256 replies of at most 44 kB
	}
	fr := &fuzzReply{entries: fuzzReplies.all[:n]}
	var err error
	if fr.pkts, err = mode7.AppendMonitorReply(nil, req.Header(), fr.entries); err != nil {
		t.Fatal(err)
	}
	size := mode7.MonitorItemSize(req.Code, req.Impl)
	var b []byte
	for _, e := range fr.entries[:min(n, mode7.MaxPackets*(mode7.MaxDataLen/size))] {
		b, _ = e.AppendItem(b[:0], size)
		var d mode7.MonitorEntry
		_ = d.UnmarshalBinary(b)
		fr.want = append(fr.want, d)
	}
	fuzzReplies.m[key] = fr
	return fr
}

// FuzzReassembler feeds a permutation, with duplicates, drops, truncations
// and stray packets, of a valid reply, all chosen by the fuzzer. Whatever
// the order, the result is the in-order list when every packet arrived
// intact, and otherwise a partial list with a sentinel error; it never
// panics and never keeps more than the caps allow.
func FuzzReassembler(f *testing.F) {
	f.Add(uint16(40), uint8(3), []byte{0, 1, 2, 3, 4, 5, 6})
	f.Add(uint16(600), uint8(3), []byte{99, 0, 0x81, 50, 0xc1, 7})
	f.Add(uint16(7), uint8(2), []byte{1, 0, 1, 0xff})
	f.Add(uint16(1000), uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, n uint16, variant uint8, ops []byte) {
		req := mode7.NewRequest(mode7.ReqMonGetList1)
		switch variant % 4 {
		case 1:
			req.Code = mode7.ReqMonGetList
		case 2:
			req.Impl = mode7.ImplXNTPDOld
		}
		fr := fuzzReplyFor(t, int(n%1200), variant%4, req)
		entries, pkts, want := fr.entries, fr.pkts, fr.want
		// Raise the entry cap above the longest legal train (its own tests
		// cover it), so the property holds for every list length.
		r := mode7.Reassembler{MaxEntries: mode7.MaxPackets * 25}
		if variant%4 != 3 {
			r.ResetFor(req)
		}
		delivered := make([]bool, len(pkts))
		intact := true
		adds, octets, mismatched := 0, 0, 0
		for _, op := range ops {
			i := int(op&0x3f) * len(pkts) / 64
			var b []byte
			switch op >> 6 {
			case 0, 1: // deliver (or duplicate) packet i
				b = pkts[i]
				delivered[i] = true
			case 2: // a truncated copy of packet i
				b = pkts[i][:int(op)%len(pkts[i])]
			case 3: // a packet of another request
				if variant%4 == 3 {
					// The zero-value reassembler adopts the first packet's
					// request, so a stray one first would be "the" reply.
					continue
				}
				b = mode7.AppendErrorReply(nil, mode7.Header{Version: 2, Impl: 3, Code: mode7.ReqPeerList}, mode7.InfoErrNoData)
				mismatched++ // not in Packets or Bytes
				if err := r.Add(b); !errors.Is(err, mode7.ErrMismatch) {
					t.Fatalf("another request's reply: %v", err)
				}
				continue
			}
			adds++
			octets += len(b)
			if err := r.Add(b); err != nil && !isSentinel(err) {
				t.Fatalf("Add: unexpected error %v", err)
			}
		}
		// Deliver whatever is left in order, unless the ops asked to stop.
		if len(ops) == 0 || ops[len(ops)-1]&1 == 0 {
			for i, b := range pkts {
				if !delivered[i] {
					adds++
					octets += len(b)
					_ = r.Add(b)
					delivered[i] = true
				}
			}
		}
		for _, d := range delivered {
			intact = intact && d
		}
		rep := r.Reply()
		if rep.Packets != adds || rep.Bytes != octets || rep.Mismatched != mismatched {
			t.Fatalf("counted %d packets %d octets %d mismatched, gave %d, %d, %d", rep.Packets, rep.Bytes,
				rep.Mismatched, adds, octets, mismatched)
		}
		if rep.Accepted > mode7.MaxPackets || len(rep.Entries)*rep.ItemSize > mode7.DefaultMaxBytes {
			t.Fatalf("caps exceeded: %d packets, %d entries", rep.Accepted, len(rep.Entries))
		}
		switch {
		case len(entries) == 0:
			if !errors.Is(rep.Err, mode7.InfoErrNoData) && !errors.Is(rep.Err, mode7.ErrIncomplete) {
				t.Fatalf("empty list: %v", rep.Err)
			}
		case intact:
			if rep.Err != nil || !rep.Complete {
				t.Fatalf("all packets delivered, got %v", rep.Err)
			}
			if !slices.Equal(rep.Entries, want) {
				t.Fatalf("entries differ: %d vs %d", len(rep.Entries), len(want))
			}
		default:
			if rep.Complete || !errors.Is(rep.Err, mode7.ErrIncomplete) {
				t.Fatalf("incomplete reply reported as %v", rep.Err)
			}
			// What arrived is an ordered sub-sequence of the list.
			j := 0
			for _, e := range rep.Entries {
				for j < len(want) && want[j] != e {
					j++
				}
				if j == len(want) {
					t.Fatal("partial list out of order or invented")
				}
			}
		}
	})
}

// FuzzReassemblerRaw feeds arbitrary datagrams (the input split at 0xff
// 0xfe markers): no panic, every datagram counted, caps respected.
func FuzzReassemblerRaw(f *testing.F) {
	seedReplies(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, in []byte) {
		var r mode7.Reassembler
		n, octets := 0, 0
		for d := range bytes.SplitSeq(in, []byte{0xff, 0xfe}) {
			n++
			octets += len(d)
			if err := r.Add(d); err != nil && !isSentinel(err) {
				t.Fatalf("unexpected error %v", err)
			}
		}
		rep := r.Reply()
		if rep.Packets+rep.Mismatched != n || rep.Bytes > octets {
			t.Fatal("not every datagram counted")
		}
		if rep.Accepted > mode7.MaxPackets || rep.Accepted+rep.Duplicates+rep.Malformed+rep.Mismatched+rep.Conflicting+rep.OverCap > n {
			t.Fatalf("inconsistent counts %+v", rep.ReassemblyStats)
		}
		if rep.Err == nil && !rep.Complete {
			t.Fatal("no error for an incomplete reply")
		}
		if rep.Err != nil && !isSentinel(rep.Err) {
			t.Fatalf("reply error %v", rep.Err)
		}
	})
}

func isSentinel(err error) bool {
	var ie mode7.InfoErr
	if errors.As(err, &ie) {
		return true
	}
	for _, s := range []error{mode7.ErrShort, mode7.ErrMode, mode7.ErrNotResponse, mode7.ErrVersion,
		mode7.ErrReserved, mode7.ErrLength, mode7.ErrItemSize, mode7.ErrMismatch, mode7.ErrDuplicate,
		mode7.ErrSequence, mode7.ErrCapacity, mode7.ErrIncomplete, mode7.ErrNoEnd} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
