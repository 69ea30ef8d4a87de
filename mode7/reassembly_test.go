package mode7_test

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clients returns n distinct IPv4 monitor entries, newest first, shaped
// like the 4.2.6p2 capture's.
func clients(n int) []mode7.MonitorEntry {
	out := make([]mode7.MonitorEntry, n)
	for i := range out {
		out[i] = mode7.MonitorEntry{
			Addr:      netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
			LocalAddr: netip.AddrFrom4([4]byte{192, 0, 2, 1}),
			Port:      uint16(1024 + i), Mode: 3, Version: 4, Count: uint32(i + 1),
			AvgInt: uint32(i), LastInt: uint32(2 * i), Restrict: 0x1d0, Flags: 1,
		}
	}
	return out
}

func encodeReply(t testing.TB, req mode7.Request, entries []mode7.MonitorEntry) [][]byte {
	t.Helper()
	pkts, err := mode7.AppendMonitorReply(nil, req.Header(), entries)
	require.NoError(t, err)
	return pkts
}

func TestReassembleCapture40(t *testing.T) {
	pkts := replies(t, "legacy-monlist-40")
	require.Len(t, pkts, 7)
	var r mode7.Reassembler
	r.ResetFor(mode7.NewRequest(mode7.ReqMonGetList1))
	for i, p := range pkts {
		require.NoError(t, r.Add(p))
		assert.Equal(t, i == 6, r.Done())
	}
	rep := r.Reply()
	require.NoError(t, rep.Err)
	assert.True(t, rep.Complete)
	assert.Equal(t, 7, rep.Packets)
	assert.Equal(t, 6*440+296, rep.Bytes)
	assert.Equal(t, 7, rep.Accepted)
	assert.Equal(t, 6, rep.LastSeq)
	assert.Empty(t, rep.Missing)
	assert.Equal(t, 72, rep.ItemSize)
	assert.Equal(t, uint8(2), rep.Version)
	require.Len(t, rep.Entries, 40)
	// Newest first, as ntpd walked its MRU list: 127.0.1.37 down to
	// 127.0.1.1, then the three clients of the earlier small capture.
	assert.Equal(t, addr("127.0.1.37"), rep.Entries[0].Addr)
	assert.Equal(t, addr("127.0.1.1"), rep.Entries[36].Addr)
	assert.Equal(t, []netip.Addr{addr("127.0.0.4"), addr("127.0.0.3"), addr("127.0.0.2")},
		[]netip.Addr{rep.Entries[37].Addr, rep.Entries[38].Addr, rep.Entries[39].Addr})
	for i, e := range rep.Entries {
		assert.Equal(t, addr("127.0.0.1"), e.LocalAddr, "entry %d", i)
		assert.Equal(t, uint32(1), e.Count)
		assert.Equal(t, uint8(3), e.Mode)
		assert.Equal(t, uint8(4), e.Version)
		if i > 0 && i < 37 {
			assert.Equal(t, rep.Entries[i-1].Addr.Prev(), e.Addr, "entry %d follows MRU order", i)
		}
	}
}

func TestReassembleCaptureSmallAndNoData(t *testing.T) {
	var r mode7.Reassembler
	require.NoError(t, r.Add(replies(t, "legacy-monlist-small")[0]))
	rep := r.Reply()
	require.NoError(t, rep.Err)
	require.Len(t, rep.Entries, 3)
	assert.Equal(t, []netip.Addr{addr("127.0.0.4"), addr("127.0.0.3"), addr("127.0.0.2")},
		[]netip.Addr{rep.Entries[0].Addr, rep.Entries[1].Addr, rep.Entries[2].Addr})
	assert.Equal(t, uint16(42874), rep.Entries[0].Port)
	assert.Equal(t, 224, rep.Bytes)

	r.Reset(mode7.ImplXNTPD, mode7.ReqMonGetList1)
	err := r.Add(replies(t, "classic-monlist-nodata")[0])
	assert.ErrorIs(t, err, mode7.InfoErrNoData)
	assert.True(t, r.Done())
	rep = r.Reply()
	var ie mode7.InfoErr
	require.True(t, errors.As(rep.Err, &ie))
	assert.Equal(t, mode7.InfoErrNoData, ie)
	assert.False(t, rep.Complete)
	assert.Equal(t, 1, rep.Packets)
	assert.Equal(t, 8, rep.Bytes, "8 octets for a 192-octet request")
	assert.Empty(t, rep.Entries)
}

func TestReassembleOrders(t *testing.T) {
	want := clients(600)
	pkts := encodeReply(t, mode7.NewRequest(mode7.ReqMonGetList1), want)
	require.Len(t, pkts, 100)
	orders := map[string][]int{}
	var in, rev, evensOdds []int
	for i := range pkts {
		in = append(in, i)
		rev = append(rev, len(pkts)-1-i)
	}
	for i := 0; i < len(pkts); i += 2 {
		evensOdds = append(evensOdds, i)
	}
	for i := 1; i < len(pkts); i += 2 {
		evensOdds = append(evensOdds, i)
	}
	orders["in order"], orders["reversed"], orders["evens then odds"] = in, rev, evensOdds
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			var r mode7.Reassembler
			r.ResetFor(mode7.NewRequest(mode7.ReqMonGetList1))
			for i, idx := range order {
				require.NoError(t, r.Add(pkts[idx]))
				assert.Equal(t, i == len(order)-1, r.Complete(), "after %d packets", i+1)
			}
			rep := r.Reply()
			require.NoError(t, rep.Err)
			assert.Equal(t, want, rep.Entries)
			assert.Equal(t, 44000, rep.Bytes)
			assert.Equal(t, 100, rep.Packets)
		})
	}
}

func TestReassembleDuplicates(t *testing.T) {
	pkts := encodeReply(t, mode7.NewRequest(mode7.ReqMonGetList1), clients(20)) // 4 packets
	var r mode7.Reassembler
	r.ResetFor(mode7.NewRequest(mode7.ReqMonGetList1))
	require.NoError(t, r.Add(pkts[0]))
	assert.ErrorIs(t, r.Add(pkts[0]), mode7.ErrDuplicate)
	require.NoError(t, r.Add(pkts[3]))
	assert.ErrorIs(t, r.Add(pkts[3]), mode7.ErrDuplicate, "a second copy of the last packet")
	require.NoError(t, r.Add(pkts[1]))
	require.NoError(t, r.Add(pkts[2]))
	assert.ErrorIs(t, r.Add(pkts[2]), mode7.ErrDuplicate, "after completion")
	rep := r.Reply()
	require.NoError(t, rep.Err)
	assert.Equal(t, clients(20), rep.Entries)
	assert.Equal(t, 3, rep.Duplicates)
	assert.Equal(t, 7, rep.Packets)
	assert.Equal(t, 4, rep.Accepted)
	assert.Equal(t, 5*440+2*(8+2*72), rep.Bytes, "duplicates count as received octets")
}

func TestReassembleMissing(t *testing.T) {
	pkts := encodeReply(t, mode7.NewRequest(mode7.ReqMonGetList1), clients(40)) // 7 packets
	var r mode7.Reassembler
	for i, p := range pkts {
		if i == 2 || i == 4 {
			continue
		}
		require.NoError(t, r.Add(p))
	}
	assert.False(t, r.Done())
	rep := r.Reply()
	assert.ErrorIs(t, rep.Err, mode7.ErrIncomplete)
	assert.Contains(t, rep.Err.Error(), "missing sequence numbers 2 4")
	assert.Equal(t, []uint8{2, 4}, rep.Missing)
	assert.False(t, rep.Complete)
	assert.Len(t, rep.Entries, 40-12, "the partial list keeps what arrived")
	assert.Equal(t, clients(40)[:12], rep.Entries[:12])
	assert.Equal(t, clients(40)[18:24], rep.Entries[12:18])

	// Without the last packet.
	r.Reset(mode7.ImplXNTPD, mode7.ReqMonGetList1)
	for _, p := range pkts[:3] {
		require.NoError(t, r.Add(p))
	}
	assert.Equal(t, -1, r.LastSeq())
	assert.ErrorIs(t, r.Err(), mode7.ErrIncomplete)
	assert.Contains(t, r.Err().Error(), "last packet not received")

	// Nothing at all.
	r.Reset(mode7.ImplXNTPD, mode7.ReqMonGetList1)
	assert.ErrorIs(t, r.Err(), mode7.ErrIncomplete)
	rep = r.Reply()
	assert.Zero(t, rep.Packets)
	assert.Empty(t, rep.Entries)
}

func TestReassembleMismatch(t *testing.T) {
	var r mode7.Reassembler
	r.Reset(mode7.ImplXNTPD, mode7.ReqMonGetList1)
	code20 := encodeReply(t, mode7.Request{Code: mode7.ReqMonGetList, Impl: 3}, clients(1))[0]
	impl2 := encodeReply(t, mode7.Request{Code: mode7.ReqMonGetList1, Impl: 2}, clients(1))[0]
	assert.ErrorIs(t, r.Add(code20), mode7.ErrMismatch)
	assert.ErrorIs(t, r.Add(impl2), mode7.ErrMismatch)
	// An error reply for another request is foreign too, and does not end this one.
	assert.ErrorIs(t, r.Add(mode7.AppendErrorReply(nil, mode7.Header{Version: 2, Impl: 3, Code: 20}, mode7.InfoErrNoData)), mode7.ErrMismatch)
	assert.False(t, r.Done())
	require.NoError(t, r.Add(encodeReply(t, mode7.NewRequest(42), clients(2))[0]))
	rep := r.Reply()
	require.NoError(t, rep.Err)
	assert.Equal(t, 3, rep.Mismatched)
	assert.Equal(t, 1, rep.Packets, "another request's replies are not this reply's packets")
	assert.Len(t, rep.Entries, 2)
}

func TestReassembleErrorMidTrain(t *testing.T) {
	pkts := encodeReply(t, mode7.NewRequest(mode7.ReqMonGetList1), clients(20))
	var r mode7.Reassembler
	require.NoError(t, r.Add(pkts[0]))
	err := r.Add(mode7.AppendErrorReply(nil, mode7.Header{Version: 2, Impl: 3, Code: 42}, mode7.InfoErrAuth))
	assert.ErrorIs(t, err, mode7.InfoErrAuth)
	assert.True(t, r.Done())
	assert.ErrorIs(t, r.Add(pkts[1]), mode7.ErrSequence, "nothing after an error reply")
	rep := r.Reply()
	assert.ErrorIs(t, rep.Err, mode7.InfoErrAuth)
	assert.Equal(t, 1, rep.Conflicting)
	assert.Len(t, rep.Entries, 6)
}

func TestReassembleNeverEnding(t *testing.T) {
	h := mode7.Header{Response: true, More: true, Version: 2, Impl: 3, Code: 42, NItems: 1, ItemSize: 72}
	item, err := clients(1)[0].MarshalBinary()
	require.NoError(t, err)
	var r mode7.Reassembler
	for s := range 128 {
		h.Seq = uint8(s)
		b, err := h.AppendBinary(nil)
		require.NoError(t, err)
		require.NoError(t, r.Add(append(b, item...)))
	}
	assert.True(t, r.Done())
	assert.False(t, r.Complete())
	assert.ErrorIs(t, r.Err(), mode7.ErrNoEnd)
	// The storm goes on: sequence numbers wrap and every packet is counted.
	for s := range 1000 {
		h.Seq = uint8(s % 128)
		b, _ := h.AppendBinary(nil)
		assert.Error(t, r.Add(append(b, item...)))
	}
	st := r.Stats()
	assert.Equal(t, 1128, st.Packets)
	assert.Equal(t, 128, st.Accepted)
	assert.Equal(t, 1000, st.Duplicates)
	assert.Equal(t, 128, r.NumEntries(), "memory stays bounded")
}

func TestReassembleSequenceConflicts(t *testing.T) {
	mk := func(seq uint8, more bool) []byte {
		h := mode7.Header{Response: true, More: more, Version: 2, Seq: seq, Impl: 3, Code: 42, NItems: 1, ItemSize: 72}
		b, err := h.AppendBinary(nil)
		require.NoError(t, err)
		item, _ := clients(int(seq) + 1)[seq].MarshalBinary()
		return append(b, item...)
	}
	var r mode7.Reassembler
	require.NoError(t, r.Add(mk(0, true)))
	require.NoError(t, r.Add(mk(2, false)))
	assert.ErrorIs(t, r.Add(mk(1, false)), mode7.ErrSequence, "a second last packet")
	assert.ErrorIs(t, r.Add(mk(3, true)), mode7.ErrSequence, "past the last packet")
	require.NoError(t, r.Add(mk(1, true)))
	assert.True(t, r.Complete())

	// A stray packet above the real last one (left over from an earlier
	// reply, or forged) is evicted when the last packet arrives.
	r.Reset(3, 42)
	require.NoError(t, r.Add(mk(5, true)))
	require.NoError(t, r.Add(mk(1, true)))
	require.NoError(t, r.Add(mk(3, false)), "last packet below a kept one")
	assert.Equal(t, 1, r.Stats().Conflicting, "the stray is counted")
	assert.Equal(t, 2, r.Stats().Accepted)
	assert.Equal(t, 2, r.NumEntries())
	require.NoError(t, r.Add(mk(0, true)))
	require.NoError(t, r.Add(mk(2, true)))
	assert.True(t, r.Complete())
	got := r.Entries()
	require.Len(t, got, 4)
	for i, e := range got {
		assert.Equal(t, clients(4)[i].Addr, e.Addr)
	}
	assert.ErrorIs(t, r.Add(mk(5, true)), mode7.ErrSequence, "nothing after the reply is done")
}

func TestReassembleDoneIsFinal(t *testing.T) {
	pkts := encodeReply(t, mode7.NewRequest(42), clients(8))
	var r mode7.Reassembler
	for _, p := range pkts {
		require.NoError(t, r.Add(p))
	}
	require.True(t, r.Done())
	nodata := mode7.AppendErrorReply(nil, mode7.NewRequest(42).Header(), mode7.InfoErrNoData)
	assert.ErrorIs(t, r.Add(nodata), mode7.ErrSequence)
	assert.ErrorIs(t, r.Add(pkts[0]), mode7.ErrDuplicate)
	rep := r.Reply()
	require.NoError(t, rep.Err, "a late error reply does not undo a complete one")
	assert.True(t, rep.Complete)
	assert.Equal(t, 1, rep.Conflicting)
	assert.Equal(t, 1, rep.Duplicates)
}

func TestReassembleEntryCap(t *testing.T) {
	// 128 packets of 25 twenty-octet items would be 3,200 entries.
	var pkts [][]byte
	item, err := clients(1)[0].AppendItem(nil, mode7.ItemSizeOldMonitorV4)
	require.NoError(t, err)
	for s := range 128 {
		h := mode7.Header{Response: true, More: s < 127, Version: 2, Seq: uint8(s), Impl: 3, Code: 42, NItems: 25, ItemSize: 20}
		b, _ := h.AppendBinary(nil)
		for range 25 {
			b = append(b, item...)
		}
		pkts = append(pkts, b)
	}
	var r mode7.Reassembler
	for _, p := range pkts {
		_ = r.Add(p)
	}
	assert.Equal(t, mode7.DefaultMaxEntries/25*25, r.NumEntries(), "whole packets up to the cap")
	rep := r.Reply()
	assert.ErrorIs(t, rep.Err, mode7.ErrCapacity)
	assert.ErrorIs(t, rep.Err, mode7.ErrIncomplete)
	assert.Equal(t, 128-mode7.DefaultMaxEntries/25, rep.OverCap)

	r2 := mode7.Reassembler{MaxEntries: 30}
	for _, p := range pkts[:3] {
		_ = r2.Add(p)
	}
	assert.Equal(t, 25, r2.NumEntries())
}

func TestReassembleItemSizes(t *testing.T) {
	var r mode7.Reassembler
	r.Reset(mode7.ImplXNTPD, mode7.ReqMonGetList1)
	bad := mode7.Header{Response: true, More: true, Version: 2, Impl: 3, Code: 42, NItems: 1, ItemSize: 73}
	b, _ := bad.AppendBinary(nil)
	assert.ErrorIs(t, r.Add(append(b, make([]byte, 73)...)), mode7.ErrItemSize)

	pkts72 := encodeReply(t, mode7.NewRequest(42), clients(7))
	require.NoError(t, r.Add(pkts72[0]))
	// A packet of the same reply with another (valid) item size.
	h := mode7.Header{Response: true, Version: 2, Seq: 1, Impl: 3, Code: 42, NItems: 1, ItemSize: 32}
	b, _ = h.AppendBinary(nil)
	assert.ErrorIs(t, r.Add(append(b, make([]byte, 32)...)), mode7.ErrItemSize)
	st := r.Stats()
	assert.Equal(t, 2, st.Malformed)

	// Garbage only: the error says why.
	r.Reset(mode7.ImplXNTPD, mode7.ReqMonGetList1)
	assert.ErrorIs(t, r.Add([]byte{1, 2, 3}), mode7.ErrShort)
	err := r.Err()
	assert.ErrorIs(t, err, mode7.ErrIncomplete)
	assert.ErrorIs(t, err, mode7.ErrShort)
}

func TestReassembleByteCap(t *testing.T) {
	pkts := encodeReply(t, mode7.NewRequest(42), clients(30)) // 5 × 440
	r := mode7.Reassembler{MaxBytes: 3 * 432}
	for i, p := range pkts {
		err := r.Add(p)
		if i < 3 {
			require.NoError(t, err)
		} else {
			assert.ErrorIs(t, err, mode7.ErrCapacity)
		}
	}
	rep := r.Reply()
	assert.Equal(t, 2, rep.OverCap)
	assert.Len(t, rep.Entries, 18)
	assert.Equal(t, 5*440, rep.Bytes)
	assert.ErrorIs(t, rep.Err, mode7.ErrIncomplete)
	assert.ErrorIs(t, rep.Err, mode7.ErrCapacity)

	// After a packet is lost to the cap, smaller later ones are not kept
	// either, so the cap never leaves holes.
	r = mode7.Reassembler{MaxBytes: 500}
	require.NoError(t, r.Add(pkts[0]))
	assert.ErrorIs(t, r.Add(pkts[1]), mode7.ErrCapacity)
	last := encodeReply(t, mode7.NewRequest(42), clients(31))[5] // seq 5, one entry
	assert.ErrorIs(t, r.Add(last), mode7.ErrCapacity)
	assert.ErrorIs(t, r.Err(), mode7.ErrCapacity)
}

func TestReassembleImpl2AndCode20(t *testing.T) {
	entries := append(clients(30), mode7.MonitorEntry{Addr: addr("2001:db8::1"), LocalAddr: addr("2001:db8::2"), Port: 9, Mode: 3, Version: 4})
	for _, req := range []mode7.Request{
		{Code: 42, Impl: 2}, {Code: 20, Impl: 3}, {Code: 20, Impl: 2}, {Code: 42, Impl: 3},
	} {
		var r mode7.Reassembler
		r.ResetFor(req)
		for _, p := range encodeReply(t, req, entries) {
			require.NoError(t, r.Add(p))
		}
		rep := r.Reply()
		require.NoError(t, rep.Err, "%+v", req)
		size := mode7.MonitorItemSize(req.Code, req.Impl)
		assert.Equal(t, size, rep.ItemSize)
		if req.Impl == 2 {
			assert.Len(t, rep.Entries, 30, "implementation 2 leaves IPv6 entries out")
		} else {
			require.Len(t, rep.Entries, 31)
			assert.Equal(t, addr("2001:db8::1"), rep.Entries[30].Addr)
		}
		for i, e := range rep.Entries {
			assert.Equal(t, entries[i].Addr, e.Addr)
			assert.Equal(t, entries[i].Count, e.Count)
		}
	}
}

func TestReassemblerNonMonitor(t *testing.T) {
	var r mode7.Reassembler
	r.Reset(mode7.ImplXNTPD, mode7.ReqPeerListSum)
	require.NoError(t, r.Add(vectors(t)["R7-7"]))
	_, err := r.AppendEntries(nil)
	assert.ErrorIs(t, err, mode7.ErrMismatch)
	assert.Len(t, r.AppendData(nil), 144)
	assert.Equal(t, []uint8{0, 1}, r.AppendMissing(nil))
	rep := r.Reply()
	assert.Nil(t, rep.Entries)
	assert.ErrorIs(t, rep.Err, mode7.ErrIncomplete)
}

func TestReassemblerReuse(t *testing.T) {
	a := encodeReply(t, mode7.NewRequest(42), clients(13))
	b := encodeReply(t, mode7.NewRequest(42), clients(600)[100:107])
	var r mode7.Reassembler
	for _, p := range a {
		require.NoError(t, r.Add(p))
	}
	r.Reset(3, 42)
	assert.Zero(t, r.Stats())
	for _, p := range slices.Backward(b) {
		require.NoError(t, r.Add(p))
	}
	got, err := r.AppendEntries(nil)
	require.NoError(t, err)
	assert.Equal(t, clients(600)[100:107], got)
}
