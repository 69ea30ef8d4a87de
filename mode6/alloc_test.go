package mode6_test

import (
	"testing"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNoAllocs(t *testing.T) {
	v := vectors(t)
	full := v["R6-1"]
	errReply := v["R6-7.badassoc"]
	_, frags := exchange(t, "ntpsec-rv-multifrag")
	buf := make([]byte, 0, 64)
	var sink int
	var r mode6.Reassembler
	for _, b := range frags { // warm the buffer
		require.NoError(t, r.Add(b))
	}
	tests := map[string]func(){
		"Header.UnmarshalBinary": func() {
			var h mode6.Header
			_ = h.UnmarshalBinary(full)
			sink += int(h.Count)
		},
		"Header.AppendBinary": func() {
			buf, _ = mode6.Header{Version: 2, Op: 2, Seq: 1}.AppendBinary(buf[:0])
		},
		"Packet.DecodeFromBytes": func() {
			var p mode6.Packet
			_ = p.DecodeFromBytes(full)
			sink += len(p.Data)
		},
		"Packet.DecodeFromBytes error reply": func() {
			var p mode6.Packet
			if p.DecodeFromBytes(errReply) != nil {
				sink++
			}
		},
		"Packet.DecodeFromBytes malformed": func() {
			var p mode6.Packet
			if p.DecodeFromBytes(full[:40]) != nil {
				sink++
			}
		},
		"AppendReadVar": func() {
			buf, _ = mode6.AppendReadVar(buf[:0], 7, 0)
		},
		"AppendReadVar with names": func() {
			buf, _ = mode6.AppendReadVar(buf[:0], 7, 0, "version", "stratum", "system")
		},
		"Request.AppendBinary": func() {
			buf, _ = mode6.Request{Op: mode6.OpReadStat, Seq: 9, Leap: 3}.AppendBinary(buf[:0])
		},
		"Reassembler 3 fragments": func() {
			r.Reset(1, mode6.OpReadVar)
			for _, b := range frags {
				_ = r.Add(b)
			}
			sink += len(r.Data())
		},
		"Reassembler garbage and duplicates": func() {
			_ = r.Add(frags[0])
			_ = r.Add(full[:5])
			_ = r.Add(errReply)
		},
		"status words": func() {
			sink += int(mode6.SystemStatusOf(0x0615).Event + mode6.PeerStatusOf(0x9014).Select)
		},
		"ParseTimestamp": func() {
			ts, _ := mode6.ParseTimestamp("0xdfb39d2d.8598591b")
			sink += int(ts.Seconds())
		},
	}
	for name, f := range tests {
		assert.Zero(t, testing.AllocsPerRun(100, f), name)
	}
	// A whole reply parses in two allocations: the text and the list; the
	// typed view adds none (issue 14: a refid code such as INIT cost one,
	// the error netip.ParseAddr returned).
	for _, name := range []string{"ntpsec-rv-v4", "ntpsec-rv-v6", "classic-rv-v4"} {
		data := reassemble(t, name).Data
		assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
			vs, _ := mode6.ParseVars(data)
			sink += len(vs)
		}), 2.0, "ParseVars "+name)
		assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
			s, err := mode6.ParseSystemVars(data)
			require.NoError(t, err)
			sink += int(s.Stratum)
		}), 2.0, "ParseSystemVars "+name)
		vs, _ := mode6.ParseVars(data)
		var s mode6.SystemVars
		assert.Zero(t, testing.AllocsPerRun(100, func() {
			_ = s.UnmarshalVars(vs)
			sink += int(s.Stratum)
		}), "UnmarshalVars "+name)
	}
	_ = sink
}
