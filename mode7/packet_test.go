package mode7_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func collect(t *testing.T, p *mode7.Packet) []mode7.MonitorEntry {
	t.Helper()
	var out []mode7.MonitorEntry
	for e, err := range p.Entries() {
		require.NoError(t, err)
		out = append(out, e)
	}
	return out
}

func TestPacketR7_1(t *testing.T) {
	var p mode7.Packet
	require.NoError(t, p.DecodeFromBytes(vectors(t)["R7-1"]))
	assert.Equal(t, mode7.Header{Response: true, More: true, Version: 2, Impl: 3, Code: 42, NItems: 6, ItemSize: 72}, p.Header)
	entries := collect(t, &p)
	require.Len(t, entries, 6)
	srcs := []string{"148.109.119.233", "19.182.169.74", "187.93.129.234", "252.191.213.97", "190.16.120.168", "222.91.110.103"}
	for i, e := range entries {
		assert.Equal(t, mode7.MonitorEntry{
			Addr: addr(srcs[i]), LocalAddr: addr("192.168.122.103"), Port: 123, Mode: 3, Version: 4,
			Count: 1, AvgInt: 59, LastInt: 59, Restrict: 0x1d0, Flags: 1,
		}, e, "entry %d", i)
		got, err := p.EntryAt(i)
		require.NoError(t, err)
		assert.Equal(t, e, got)
	}
	_, err := p.EntryAt(6)
	assert.ErrorIs(t, err, mode7.ErrLength)
	_, err = p.EntryAt(-1)
	assert.ErrorIs(t, err, mode7.ErrLength)
}

// TestPacketZgrab2Fixtures decodes the ntpd 4.2.6p5 replies recorded by
// zgrab2 (R7-2..R7-6), including the stale unused1 octets of R7-5/R7-6.
func TestPacketZgrab2Fixtures(t *testing.T) {
	v := vectors(t)
	scanner, server := addr("172.17.0.5"), addr("172.17.0.4")
	tests := []struct {
		name string
		code mode7.ReqCode
		size uint16
		want mode7.MonitorEntry
	}{
		{"R7-2", 42, 72, mode7.MonitorEntry{Addr: scanner, LocalAddr: server, Port: 38107, Mode: 3, Version: 3, Count: 3, AvgInt: 1, Flags: 1}},
		{"R7-3", 42, 72, mode7.MonitorEntry{Addr: scanner, LocalAddr: server, Port: 38107, Mode: 3, Version: 3, Count: 3, AvgInt: 2, LastInt: 2, Flags: 1}},
		{"R7-4", 20, 48, mode7.MonitorEntry{Addr: scanner, Port: 43309, Mode: 3, Version: 3, Count: 2, AvgInt: 1}},
		{"R7-5", 20, 48, mode7.MonitorEntry{Addr: scanner, Port: 42269, Mode: 3, Version: 3, Count: 4, AvgInt: 2}},
		{"R7-6", 20, 48, mode7.MonitorEntry{Addr: scanner, Port: 42269, Mode: 3, Version: 3, Count: 4, AvgInt: 2, LastInt: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p mode7.Packet
			require.NoError(t, p.DecodeFromBytes(v[tc.name]))
			assert.Equal(t, mode7.Header{Response: true, Version: 3, Impl: 3, Code: tc.code, NItems: 1, ItemSize: tc.size}, p.Header)
			assert.Equal(t, []mode7.MonitorEntry{tc.want}, collect(t, &p))
		})
	}
}

func TestPacketPeerListSum(t *testing.T) {
	var p mode7.Packet
	require.NoError(t, p.DecodeFromBytes(vectors(t)["R7-7"]))
	assert.Equal(t, mode7.Header{Response: true, Version: 2, Seq: 2, Impl: 3, Code: mode7.ReqPeerListSum, NItems: 2, ItemSize: 72}, p.Header)
	assert.Len(t, p.Data, 144)
	assert.Len(t, p.Item(1), 72)
	assert.Nil(t, p.Item(2))
}

func TestPacketErrorReply(t *testing.T) {
	for name, b := range map[string][]byte{
		"R7-8 REQ_TRAPS with Ethernet padding": vectors(t)["R7-8"],
		"ntpd 4.2.8p18 monlist, enable mode7":  replies(t, "classic-monlist-nodata")[0],
		"encoded by AppendErrorReply (VN2 i3)": mode7.AppendErrorReply(nil, mode7.Header{Version: 2, Impl: 3, Code: 42}, mode7.InfoErrNoData),
	} {
		t.Run(name, func(t *testing.T) {
			var p mode7.Packet
			err := p.DecodeFromBytes(b)
			var ie mode7.InfoErr
			require.True(t, errors.As(err, &ie), "got %v", err)
			assert.Equal(t, mode7.InfoErrNoData, ie)
			assert.True(t, errors.Is(err, mode7.InfoErrNoData))
			assert.True(t, p.Response)
			assert.False(t, p.More)
			assert.Equal(t, uint16(0), p.NItems)
			assert.Empty(t, p.Data)
		})
	}
	assert.Equal(t, replies(t, "classic-monlist-nodata")[0],
		mode7.AppendErrorReply(nil, mode7.Header{Version: 2, Impl: 3, Code: 42}, mode7.InfoErrNoData))
}

func TestPacketMalformed(t *testing.T) {
	full := vectors(t)["R7-1"] // 6 × 72 items, 440 octets
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), full...)) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, mode7.ErrShort},
		{"7 octets", full[:7], mode7.ErrShort},
		{"mode 6", mod(func(b []byte) []byte { b[0] = 0xd6; return b }), mode7.ErrMode},
		{"mode 3 client packet", unhex(t, "e30004fa000000000000000000000000"), mode7.ErrMode},
		{"request, no R bit", vectors(t)["Q7-1"], mode7.ErrNotResponse},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0xc7; return b }), mode7.ErrVersion},
		{"version 5", mod(func(b []byte) []byte { b[0] = 0xef; return b }), mode7.ErrVersion},
		{"MBZ set", mod(func(b []byte) []byte { b[6] |= 0x10; return b }), mode7.ErrReserved},
		{"auth bit set", mod(func(b []byte) []byte { b[1] |= 0x80; return b }), mode7.ErrReserved},
		{"truncated items", full[:439], mode7.ErrLength},
		{"one item fewer than counted", full[:440-72], mode7.ErrLength},
		{"7 items of 72 > 500 octets, datagram long enough",
			mod(func(b []byte) []byte { b[5] = 7; return append(b, make([]byte, 80)...) }), mode7.ErrLength},
		{"4095 items", mod(func(b []byte) []byte { b[4], b[5] = 0x0f, 0xff; return b }), mode7.ErrLength},
		{"items of size 0", mod(func(b []byte) []byte { b[6], b[7] = 0, 0; return b }), mode7.ErrItemSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p mode7.Packet
			err := p.DecodeFromBytes(tc.b)
			assert.ErrorIs(t, err, tc.want)
			assert.Nil(t, p.Data)
		})
	}
}

func TestPacketTrailingBytesIgnored(t *testing.T) {
	b := append(append([]byte(nil), vectors(t)["R7-2"]...), 0xde, 0xad, 0xbe, 0xef)
	var p mode7.Packet
	require.NoError(t, p.DecodeFromBytes(b))
	assert.Len(t, p.Data, 72)
	out, err := p.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, vectors(t)["R7-2"], out)
}

func TestPacketEntriesUnknownItemSize(t *testing.T) {
	p := mode7.Packet{Header: mode7.Header{Response: true, Version: 2, NItems: 1, ItemSize: 8}, Data: make([]byte, 8)}
	n := 0
	for _, err := range p.Entries() {
		assert.ErrorIs(t, err, mode7.ErrItemSize)
		n++
	}
	assert.Equal(t, 1, n)
	_, err := p.EntryAt(0)
	assert.ErrorIs(t, err, mode7.ErrItemSize)
}

func TestPacketEntriesEarlyBreak(t *testing.T) {
	var p mode7.Packet
	require.NoError(t, p.DecodeFromBytes(vectors(t)["R7-1"]))
	n := 0
	for range p.Entries() {
		n++
		if n == 2 {
			break
		}
	}
	assert.Equal(t, 2, n)
}

func TestPacketAppendBinaryChecks(t *testing.T) {
	p := mode7.Packet{Header: mode7.Header{Response: true, Version: 2, NItems: 2, ItemSize: 72}, Data: make([]byte, 72)}
	_, err := p.AppendBinary(nil)
	assert.ErrorIs(t, err, mode7.ErrLength)
	p = mode7.Packet{Header: mode7.Header{Response: true, Version: 2, NItems: 7, ItemSize: 72}, Data: make([]byte, 504)}
	_, err = p.AppendBinary(nil)
	assert.ErrorIs(t, err, mode7.ErrLength)
	p = mode7.Packet{Header: mode7.Header{Version: 9}}
	_, err = p.AppendBinary(nil)
	assert.ErrorIs(t, err, mode7.ErrFieldRange)
}

func TestPacketRoundTripVectors(t *testing.T) {
	for name, b := range vectors(t) {
		var p mode7.Packet
		err := p.DecodeFromBytes(b)
		if name[0] == 'Q' {
			assert.ErrorIs(t, err, mode7.ErrNotResponse, name)
			continue
		}
		if name == "R7-8" {
			continue // error reply, covered above
		}
		require.NoError(t, err, name)
		out, err := p.MarshalBinary()
		require.NoError(t, err, name)
		assert.Equal(t, b, out, name)
	}
}
