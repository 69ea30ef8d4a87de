package mode7_test

import (
	"testing"

	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// entriesOf decodes the monitor entries of a capture's reply packets.
func entriesOf(t *testing.T, pkts [][]byte) []mode7.MonitorEntry {
	t.Helper()
	var r mode7.Reassembler
	for _, p := range pkts {
		require.NoError(t, r.Add(p))
	}
	rep := r.Reply()
	require.NoError(t, rep.Err)
	return rep.Entries
}

// TestAppendMonitorReplyMatchesNtpd: given the client table of a real
// ntpd 4.2.6p2 reply, the encoder produces the same datagrams, octet for
// octet (those captures carry no stale bytes).
func TestAppendMonitorReplyMatchesNtpd(t *testing.T) {
	for _, name := range []string{"legacy-monlist-small", "legacy-monlist-40"} {
		t.Run(name, func(t *testing.T) {
			cap := capture(t, name)
			var req mode7.Header
			require.NoError(t, req.UnmarshalBinary(cap[0].Payload))
			want := replies(t, name)
			got, err := mode7.AppendMonitorReply(nil, req, entriesOf(t, want))
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
	// The derived 7-entry vector R7-9.
	v := vectors(t)
	want := [][]byte{v["R7-9.1"], v["R7-9.2"]}
	got, err := mode7.AppendMonitorReply(nil, mode7.NewRequest(42).Header(), entriesOf(t, want))
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestAppendMonitorReplyShapes(t *testing.T) {
	tests := []struct {
		name      string
		req       mode7.Request
		entries   int
		packets   int
		lastItems int
		size      int
	}{
		{"600 entries, code 42: 100 full packets", mode7.NewRequest(42), 600, 100, 6, 72},
		{"601 entries", mode7.NewRequest(42), 601, 101, 1, 72},
		{"1 entry", mode7.NewRequest(42), 1, 1, 1, 72},
		{"code 20: 10 per packet", mode7.Request{Code: 20, Impl: 3}, 600, 60, 10, 48},
		{"impl 2 code 42: 15 per packet", mode7.Request{Code: 42, Impl: 2}, 600, 40, 15, 32},
		{"impl 2 code 20: 20 per packet", mode7.Request{Code: 20, Impl: 2}, 45, 3, 5, 24},
		{"more than 128 packets: the rest is lost", mode7.NewRequest(42), 1000, 128, 6, 72},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkts := encodeReply(t, tc.req, clients(tc.entries))
			require.Len(t, pkts, tc.packets)
			for i, b := range pkts {
				var p mode7.Packet
				require.NoError(t, p.DecodeFromBytes(b))
				last := i == len(pkts)-1
				assert.Equal(t, !last, p.More, "packet %d", i)
				assert.Equal(t, uint8(i), p.Seq)
				assert.Equal(t, uint16(tc.size), p.ItemSize)
				assert.Equal(t, tc.req.Header().Version, p.Version)
				if last {
					assert.Equal(t, uint16(tc.lastItems), p.NItems)
				} else {
					assert.Equal(t, uint16(mode7.MaxDataLen/tc.size), p.NItems)
				}
				assert.Len(t, b, mode7.HeaderLen+int(p.NItems)*tc.size)
			}
		})
	}
}

func TestAppendMonitorReplyNoData(t *testing.T) {
	want := [][]byte{unhex(t, "9700032a40000000")}
	got, err := mode7.AppendMonitorReply(nil, mode7.NewRequest(42).Header(), nil)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	// Implementation 2 and only IPv6 clients: nothing to send.
	v6 := []mode7.MonitorEntry{{Addr: addr("2001:db8::1")}}
	got, err = mode7.AppendMonitorReply(nil, mode7.Header{Version: 3, Impl: 2, Code: 42}, v6)
	require.NoError(t, err)
	assert.Equal(t, [][]byte{unhex(t, "9f00022a40000000")}, got)
}

func TestAppendMonitorReplyErrors(t *testing.T) {
	_, err := mode7.AppendMonitorReply(nil, mode7.NewRequest(mode7.ReqPeerList).Header(), clients(1))
	assert.ErrorIs(t, err, mode7.ErrRequestCode)
	pre := [][]byte{[]byte("keep")}
	got, err := mode7.AppendMonitorReply(pre, mode7.NewRequest(42).Header(), []mode7.MonitorEntry{{}})
	assert.ErrorIs(t, err, mode7.ErrFieldRange)
	assert.Equal(t, pre, got)
}

func TestAppendMonitorReplyReusesBuffers(t *testing.T) {
	entries := clients(600)
	req := mode7.NewRequest(42).Header()
	pkts, err := mode7.AppendMonitorReply(nil, req, entries)
	require.NoError(t, err)
	first := append([][]byte(nil), pkts...)
	allocs := testing.AllocsPerRun(20, func() {
		pkts, _ = mode7.AppendMonitorReply(pkts[:0], req, entries)
	})
	assert.Zero(t, allocs)
	assert.Equal(t, first, pkts)
}
