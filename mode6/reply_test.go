package mode6_test

import (
	"strings"
	"testing"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rebuild writes the parsed variables of a capture's reply back with a
// ReplyBuilder, with the header of the capture's first reply fragment.
func rebuild(t *testing.T, replies [][]byte, vs mode6.Vars, stale []byte) [][]byte {
	t.Helper()
	var h mode6.Header
	require.NoError(t, h.UnmarshalBinary(replies[len(replies)-1]))
	var rb mode6.ReplyBuilder
	rb.Reset(h)
	rb.PutVars(vs)
	return rb.AppendPackets(nil, stale)
}

// TestReplyBuilderMatchesServers: given the variables a real server sent,
// the builder sends the same datagrams, octet for octet: the folds, the
// cut of a long item across fragments, offsets, counts, the final CR LF,
// and the padding (zeros for ntpd 4.2.8; for ntpsec whatever its static
// buffer held, which for the third fragment of multifrag is "xxx").
func TestReplyBuilderMatchesServers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stale bool
	}{
		{"ntpsec-rv-v4", true}, {"ntpsec-rv-v6", true}, {"ntpsec-rv-multifrag", true},
		{"classic-rv-v4", false}, {"classic-rv-peer", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, replies := exchange(t, tc.name)
			vs, _ := mode6.ParseVars(reassemble(t, tc.name).Data)
			var stale []byte
			if tc.stale {
				stale = make([]byte, mode6.MaxPacketLen) // a fresh server's buffer
			}
			assert.Equal(t, replies, rebuild(t, replies, vs, stale))
		})
	}
}

func TestReplyBuilderVectors(t *testing.T) {
	v := vectors(t)
	for _, name := range []string{"R6-1", "R6-2"} {
		var p mode6.Packet
		require.NoError(t, p.DecodeFromBytes(v[name]))
		vs, _ := mode6.ParseVars(p.Data)
		assert.Equal(t, [][]byte{v[name]}, rebuild(t, [][]byte{v[name]}, vs, nil), name)
	}
}

func TestReplyBuilderFragments(t *testing.T) {
	var rb mode6.ReplyBuilder
	rb.Reset(mode6.Header{Version: 2, Response: true, Op: mode6.OpReadVar, Seq: 9})
	var vs mode6.Vars
	for i := range 60 {
		vs = append(vs, mode6.Var{Name: "v" + strings.Repeat("x", i%7), Value: strings.Repeat("9", i%13)})
	}
	rb.PutVars(vs)
	pkts := rb.AppendPackets(nil, nil)
	require.Greater(t, len(pkts), 1)
	var r mode6.Reassembler
	r.StrictPadding = true
	r.Reset(9, mode6.OpReadVar)
	for i, b := range pkts {
		var p mode6.Packet
		require.NoError(t, p.DecodeFromBytes(b))
		assert.Equal(t, i < len(pkts)-1, p.More)
		assert.LessOrEqual(t, int(p.Count), mode6.MaxDataLen)
		assert.Zero(t, len(b)%4)
		require.NoError(t, r.Add(b))
	}
	require.True(t, r.Complete())
	got, _ := mode6.ParseVars(r.Data())
	assert.Equal(t, vs, got)
	assert.Equal(t, string(mode6.AppendVars(nil, vs))+"\r\n", string(r.Data()))

	// Binary data (READSTAT pairs): no separators, no CR LF.
	rb.Reset(mode6.Header{Version: 2, Response: true, Op: mode6.OpReadStat, Seq: 1, Status: 0x0615})
	rb.PutBinary([]byte{0x45, 0x67, 0x90, 0x14})
	pkts = rb.AppendPackets(pkts[:0], nil)
	assert.Equal(t, [][]byte{unhex(t, "16810001061500000000000445679014")}, pkts)
}

func TestAppendErrorReplyVectors(t *testing.T) {
	v := vectors(t)
	for _, name := range []string{"unknownvar", "badassoc", "badop", "badfmt"} {
		var req mode6.Header
		require.NoError(t, req.UnmarshalBinary(v["R6-7."+name+".req"]))
		var p mode6.Packet
		err := p.DecodeFromBytes(v["R6-7."+name])
		code := err.(mode6.ServerError)
		assert.Equal(t, v["R6-7."+name], mode6.AppendErrorReply(nil, req, 3, code), name)
	}
}

func TestReplyBuilderLimits(t *testing.T) {
	var rb mode6.ReplyBuilder
	rb.Reset(mode6.Header{Version: 2, Response: true, Op: mode6.OpReadVar})
	for range 200 {
		rb.PutVar(mode6.Var{Name: "x", Value: strings.Repeat("y", 400)})
	}
	pkts := rb.AppendPackets(nil, nil)
	again := rb.AppendPackets(nil, nil)
	assert.Equal(t, pkts, again, "closing twice adds nothing")
	rb.PutVar(mode6.Var{Name: "late"})
	assert.Equal(t, pkts, rb.AppendPackets(nil, nil), "nothing is added after closing")
	end := 0
	for _, b := range pkts {
		var p mode6.Packet
		require.NoError(t, p.DecodeFromBytes(b))
		assert.Equal(t, end, int(p.Offset), "offsets never wrap")
		end += int(p.Count)
	}
	assert.LessOrEqual(t, end, 0xffff)
}

// TestReplyBuilderOverhead: ctl_putdata keeps 3 octets of every
// fragment free: an item that ends 2 octets short of a full fragment
// closes it, and its separator starts the next one (ntpsec 1.2.2 sends
// MRU fragments of 466 to 468 octets so); with 3 octets left the
// separator stays and the next item is cut; a reply that ends so gets a
// last fragment of CR LF alone.
func TestReplyBuilderOverhead(t *testing.T) {
	item := func(n int) mode6.Var { return mode6.Var{Name: "a", Value: strings.Repeat("9", n-2)} }
	build := func(vs ...mode6.Var) []mode6.Packet {
		var rb mode6.ReplyBuilder
		rb.Reset(mode6.Header{Version: 2, Response: true, Op: mode6.OpReadMRU, Seq: 1})
		rb.PutVars(vs)
		var out []mode6.Packet
		for _, b := range rb.AppendPackets(nil, nil) {
			var p mode6.Packet
			require.NoError(t, p.DecodeFromBytes(b))
			p.Data = append([]byte(nil), p.Data...)
			out = append(out, p)
		}
		assert.Equal(t, len(out), rb.Fragments())
		return out
	}
	// Seven items of 60 octets, each folded onto its own line, and one of
	// last octets: 466 or 465 octets in all.
	fillTo := func(last int) []mode6.Var {
		var vs []mode6.Var
		for range 7 {
			vs = append(vs, item(60))
		}
		return append(vs, item(last))
	}
	next := item(10)

	fill := fillTo(25)
	require.Equal(t, 466, len(mode6.AppendVars(nil, fill)))
	p := build(append(fill, next)...)
	require.Len(t, p, 2)
	assert.Equal(t, 466, int(p[0].Count))
	assert.Equal(t, ", a=99999999\r\n", string(p[1].Data))
	p = build(fill...)
	require.Len(t, p, 2)
	assert.Equal(t, "\r\n", string(p[1].Data))

	short := fillTo(24)
	require.Equal(t, 465, len(mode6.AppendVars(nil, short)))
	p = build(append(short, next)...)
	require.Len(t, p, 2)
	assert.Equal(t, 468, int(p[0].Count))
	assert.Equal(t, ", a", string(p[0].Data[465:]))
	assert.Equal(t, "=99999999\r\n", string(p[1].Data))
}
