package mode6_test

import (
	"errors"
	"testing"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPacketVectors(t *testing.T) {
	v := vectors(t)
	var p mode6.Packet
	require.NoError(t, p.DecodeFromBytes(v["R6-1"]))
	assert.Equal(t, uint16(345), p.Count)
	assert.Len(t, p.Data, 345)
	assert.Equal(t, []byte{0, 0, 0}, p.Trailer)
	assert.Equal(t, "leap=3, stratum=16, ", string(p.Data[:20]))

	// Stale padding is never part of the data.
	require.NoError(t, p.DecodeFromBytes(v["R6-6"]))
	assert.Equal(t, `stratum=16, version="ntpd ntpsec-1.2.2"`+"\r\n", string(p.Data))
	assert.Equal(t, "0.0", string(p.Trailer))

	require.NoError(t, p.DecodeFromBytes(v["R6-5.2"]))
	assert.Equal(t, "0xe", string(p.Trailer))
	assert.Equal(t, uint16(468), p.Offset)

	// R6-4 is stored without its padding: decoding is lenient.
	require.NoError(t, p.DecodeFromBytes(v["R6-4"]))
	assert.Len(t, p.Data, 105)
	assert.Empty(t, p.Trailer)
}

func TestPacketErrorReplies(t *testing.T) {
	v := vectors(t)
	_, badassoc := exchange(t, "ntpsec-rv-badassoc-raw")
	_, unknownvar := exchange(t, "ntpsec-rv-unknownvar")
	tests := []struct {
		name  string
		b     []byte
		want  mode6.ServerError
		assoc uint16
		mac   int
	}{
		{"R6-7 unknown variable", v["R6-7.unknownvar"], mode6.CErrUnknownVar, 0, 0},
		{"R6-7 bad association", v["R6-7.badassoc"], mode6.CErrBadAssoc, 0x7777, 0},
		{"R6-7 bad opcode", v["R6-7.badop"], mode6.CErrBadOp, 0, 0},
		{"R6-7 bad format", v["R6-7.badfmt"], mode6.CErrBadFormat, 0, 0},
		{"R6-8 with a MAC", v["R6-8"], mode6.CErrUnknownVar, 0x73b5, 20},
		{"ntpsec capture, association 4242", badassoc[0], mode6.CErrBadAssoc, 4242, 0},
		{"ntpsec capture, unknown variable", unknownvar[0], mode6.CErrUnknownVar, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p mode6.Packet
			err := p.DecodeFromBytes(tc.b)
			var se mode6.ServerError
			require.True(t, errors.As(err, &se), "got %v", err)
			assert.Equal(t, tc.want, se)
			assert.True(t, p.Error)
			assert.Equal(t, tc.assoc, p.AssocID, "association echoed")
			assert.Empty(t, p.Data)
			assert.Len(t, p.Trailer, tc.mac)
		})
	}
}

func TestPacketMalformed(t *testing.T) {
	v := vectors(t)
	full := v["R6-1"]
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), full...)) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, mode6.ErrShort},
		{"11 octets", full[:11], mode6.ErrShort},
		{"mode 7", vectors(t)["R6-9"][:0:0], mode6.ErrShort},
		{"mode 7 packet", unhex(t, "9700032a4000000000000000"), mode6.ErrMode},
		{"request", v["Q6-1"], mode6.ErrNotResponse},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0xc6; return b }), mode6.ErrVersion},
		{"version 5", mod(func(b []byte) []byte { b[0] = 0xee; return b }), mode6.ErrVersion},
		{"count 469", mod(func(b []byte) []byte { b[10], b[11] = 1, 0xd5; return append(b, make([]byte, 200)...) }), mode6.ErrLength},
		{"count past the datagram", full[:300], mode6.ErrTruncated},
	}
	for _, tc := range tests {
		var p mode6.Packet
		err := p.DecodeFromBytes(tc.b)
		assert.ErrorIs(t, err, tc.want, tc.name)
		assert.Nil(t, p.Data, tc.name)
	}
}

func TestPacketRoundTrip(t *testing.T) {
	for name, b := range vectors(t) {
		var p mode6.Packet
		err := p.DecodeFromBytes(b)
		if err != nil {
			continue
		}
		out, err := p.MarshalBinary()
		require.NoError(t, err, name)
		// Equal up to the padding (stale or missing in some vectors).
		assert.Equal(t, b[:12+len(p.Data)], out[:12+len(p.Data)], name)
		assert.Zero(t, len(out)%4, name)
		var q mode6.Packet
		require.NoError(t, q.DecodeFromBytes(out), name)
		assert.Equal(t, p.Header, q.Header, name)
		assert.Equal(t, p.Data, q.Data, name)
	}
	p := mode6.Packet{Data: make([]byte, 469)}
	_, err := p.MarshalBinary()
	assert.ErrorIs(t, err, mode6.ErrLength)
}

func TestAssocStatuses(t *testing.T) {
	v := vectors(t)
	var p mode6.Packet
	require.NoError(t, p.DecodeFromBytes(v["R6-9"]))
	assert.Equal(t, "leap_none, sync_ntp, 6 events, freq_mode", mode6.SystemStatusOf(p.Status).String())
	got := mode6.AppendAssocStatuses(nil, p.Data)
	require.Len(t, got, 1)
	assert.Equal(t, uint16(0xe5fc), got[0].AssocID)
	assert.Equal(t, "conf, authenb, auth, reach, sel_sys.peer, 2 events, reachable", got[0].Status.String())

	require.NoError(t, p.DecodeFromBytes(v["R6-10"]))
	got = mode6.AppendAssocStatuses(nil, p.Data)
	require.Len(t, got, 14)
	assert.Equal(t, uint16(0x4574), got[0].AssocID)
	assert.Equal(t, uint16(0x4567), got[13].AssocID)
	assert.Equal(t, uint16(0x8811), got[13].Status.Word())

	_, replies := exchange(t, "ntpsec-rv-v4")
	_ = replies
	statPkts := capture(t, "ntpsec-rv-peer")
	require.NoError(t, p.DecodeFromBytes(statPkts[1].Payload))
	got = mode6.AppendAssocStatuses(nil, p.Data)
	assert.Equal(t, []mode6.AssocStatus{{AssocID: 0x4567, Status: mode6.PeerStatusOf(0x9014)}}, got)
	assert.Equal(t, "conf, reach, sel_reject, 1 event, reachable", got[0].Status.String(), "as ntpq printed it")
}
