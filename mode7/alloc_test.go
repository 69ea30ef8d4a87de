package mode7_test

import (
	"testing"

	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoAllocs pins the allocation budget of the hot paths at zero.
func TestNoAllocs(t *testing.T) {
	v := vectors(t)
	full := v["R7-1"]
	nodata := replies(t, "classic-monlist-nodata")[0]
	reply600 := encodeReply(t, mode7.NewRequest(42), clients(600))
	req := mode7.NewRequest(mode7.ReqMonGetList1)
	buf := make([]byte, 0, 256)
	var sink int

	var r mode7.Reassembler
	entries := make([]mode7.MonitorEntry, 0, 600)
	// Warm the reassembler's buffer once.
	for _, p := range reply600 {
		require.NoError(t, r.Add(p))
	}

	tests := map[string]func(){
		"Header.UnmarshalBinary": func() {
			var h mode7.Header
			_ = h.UnmarshalBinary(full)
			sink += int(h.NItems)
		},
		"Header.AppendBinary": func() {
			h := mode7.Header{Response: true, Version: 2, Impl: 3, Code: 42, NItems: 6, ItemSize: 72}
			buf, _ = h.AppendBinary(buf[:0])
		},
		"Packet.DecodeFromBytes": func() {
			var p mode7.Packet
			_ = p.DecodeFromBytes(full)
			sink += len(p.Data)
		},
		"Packet.DecodeFromBytes error reply": func() {
			var p mode7.Packet
			if p.DecodeFromBytes(nodata) != nil {
				sink++
			}
		},
		"Packet.DecodeFromBytes malformed": func() {
			var p mode7.Packet
			if p.DecodeFromBytes(full[:100]) != nil {
				sink++
			}
		},
		"Packet.Entries": func() {
			var p mode7.Packet
			_ = p.DecodeFromBytes(full)
			for e, err := range p.Entries() {
				if err == nil {
					sink += int(e.Port)
				}
			}
		},
		"Packet.EntryAt": func() {
			var p mode7.Packet
			_ = p.DecodeFromBytes(full)
			e, _ := p.EntryAt(5)
			sink += int(e.Count)
		},
		"MonitorEntry.UnmarshalBinary": func() {
			var e mode7.MonitorEntry
			_ = e.UnmarshalBinary(full[8:80])
			sink += int(e.Port)
		},
		"MonitorEntry.AppendItem": func() {
			e := mode7.MonitorEntry{Addr: addr("2001:db8::1"), Port: 1}
			buf, _ = e.AppendItem(buf[:0], 72)
		},
		"Request.AppendBinary": func() {
			buf, _ = req.AppendBinary(buf[:0])
		},
		"AppendRequest 192": func() {
			buf, _ = mode7.AppendRequest(buf[:0], mode7.Request{Code: 42, Impl: 3, Size: 192})
		},
		"AppendErrorReply": func() {
			buf = mode7.AppendErrorReply(buf[:0], req.Header(), mode7.InfoErrNoData)
		},
		"Reassembler 600 entries": func() {
			r.ResetFor(req)
			for _, p := range reply600 {
				_ = r.Add(p)
			}
			entries, _ = r.AppendEntries(entries[:0])
			sink += len(entries)
		},
		"Reassembler duplicates and garbage": func() {
			_ = r.Add(reply600[3])
			_ = r.Add(full[:5])
			_ = r.Add(nodata)
		},
	}
	for name, f := range tests {
		assert.Zero(t, testing.AllocsPerRun(100, f), name)
	}
	_ = sink
}
