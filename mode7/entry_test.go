package mode7_test

import (
	"strconv"
	"testing"

	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var allSizes = []int{72, 48, 40, 32, 24, 20}

func TestMonitorItemSize(t *testing.T) {
	assert.Equal(t, 72, mode7.MonitorItemSize(mode7.ReqMonGetList1, mode7.ImplXNTPD))
	assert.Equal(t, 32, mode7.MonitorItemSize(mode7.ReqMonGetList1, mode7.ImplXNTPDOld))
	assert.Equal(t, 48, mode7.MonitorItemSize(mode7.ReqMonGetList, mode7.ImplXNTPD))
	assert.Equal(t, 24, mode7.MonitorItemSize(mode7.ReqMonGetList, mode7.ImplXNTPDOld))
	assert.Equal(t, 0, mode7.MonitorItemSize(mode7.ReqPeerList, mode7.ImplXNTPD))
	for n := range 100 {
		want := n == 72 || n == 48 || n == 40 || n == 32 || n == 24 || n == 20
		assert.Equal(t, want, mode7.IsMonitorItemSize(n), "%d", n)
	}
}

// TestEntryV6Flag: an entry is IPv6 when its v6_flag is non-zero in
// either byte order, and the stale fields of either family are ignored.
func TestEntryV6Flag(t *testing.T) {
	item := func(flag string) []byte {
		return unhex(t, "00000040 00000003 000001d0 00000064 deadbeef cafebabe 00000001 9c41 03 04"+
			flag+"55555555 20010db8000000000000000000000001 20010db8000000000000000000000002")
	}
	for name, flag := range map[string]string{"little-endian host (x86)": "01000000", "big-endian host": "00000001", "odd value": "00010000"} {
		var e mode7.MonitorEntry
		require.NoError(t, e.UnmarshalBinary(item(flag)), name)
		assert.Equal(t, mode7.MonitorEntry{
			Addr: addr("2001:db8::1"), LocalAddr: addr("2001:db8::2"), Port: 40001, Mode: 3, Version: 4,
			Count: 100, AvgInt: 64, LastInt: 3, Restrict: 0x1d0, Flags: 1,
		}, e, name)
		assert.True(t, e.IsIPv6())
	}
	var e mode7.MonitorEntry
	require.NoError(t, e.UnmarshalBinary(item("00000000")))
	assert.Equal(t, addr("222.173.190.239"), e.Addr, "IPv4 entry ignores the stale IPv6 fields")
	assert.Equal(t, addr("202.254.186.190"), e.LocalAddr)
	assert.False(t, e.IsIPv6())
	assert.True(t, e.Addr.Is4(), "never 4-in-6")
}

func TestEntryLayouts(t *testing.T) {
	// Each layout's bytes written out by hand from ntp_request.h.
	tests := []struct {
		size int
		hex  string
		want mode7.MonitorEntry
	}{
		{72, "00000001 00000002 00000003 00000004 c0000201 c6336401 00000005 007b 04 03 00000000 00000000" +
			"00000000000000000000000000000000 00000000000000000000000000000000",
			mode7.MonitorEntry{AvgInt: 1, LastInt: 2, Restrict: 3, Count: 4, Addr: addr("192.0.2.1"), LocalAddr: addr("198.51.100.1"), Flags: 5, Port: 123, Mode: 4, Version: 3}},
		{32, "00000001 00000002 00000003 00000004 c0000201 c6336401 00000005 007b 04 03",
			mode7.MonitorEntry{AvgInt: 1, LastInt: 2, Restrict: 3, Count: 4, Addr: addr("192.0.2.1"), LocalAddr: addr("198.51.100.1"), Flags: 5, Port: 123, Mode: 4, Version: 3}},
		{48, "00000001 00000002 00000003 00000004 c0000201 007b 04 03 00000000 00000000 00000000000000000000000000000000",
			mode7.MonitorEntry{AvgInt: 1, LastInt: 2, Restrict: 3, Count: 4, Addr: addr("192.0.2.1"), Port: 123, Mode: 4, Version: 3}},
		{48, "00000001 00000002 00000003 00000004 00000000 007b 04 03 01000000 00000000 20010db8000000000000000000000009",
			mode7.MonitorEntry{AvgInt: 1, LastInt: 2, Restrict: 3, Count: 4, Addr: addr("2001:db8::9"), Port: 123, Mode: 4, Version: 3}},
		{24, "00000001 00000002 00000003 00000004 c0000201 007b 04 03",
			mode7.MonitorEntry{AvgInt: 1, LastInt: 2, Restrict: 3, Count: 4, Addr: addr("192.0.2.1"), Port: 123, Mode: 4, Version: 3}},
		{40, "00000002 00000009 00000004 c0000201 007b 04 03 00000000 00000000000000000000000000000000",
			mode7.MonitorEntry{LastInt: 2, FirstInt: 9, Count: 4, Addr: addr("192.0.2.1"), Port: 123, Mode: 4, Version: 3}},
		{40, "00000002 00000009 00000004 00000000 007b 04 03 01000000 20010db8000000000000000000000009",
			mode7.MonitorEntry{LastInt: 2, FirstInt: 9, Count: 4, Addr: addr("2001:db8::9"), Port: 123, Mode: 4, Version: 3}},
		{20, "00000002 00000009 00000004 c0000201 007b 04 03",
			mode7.MonitorEntry{LastInt: 2, FirstInt: 9, Count: 4, Addr: addr("192.0.2.1"), Port: 123, Mode: 4, Version: 3}},
	}
	for _, tc := range tests {
		b := unhex(t, tc.hex)
		require.Len(t, b, tc.size)
		var e mode7.MonitorEntry
		require.NoError(t, e.UnmarshalBinary(b), "size %d", tc.size)
		assert.Equal(t, tc.want, e, "size %d", tc.size)
		out, err := e.AppendItem(nil, tc.size)
		require.NoError(t, err)
		assert.Equal(t, b, out, "size %d encodes back", tc.size)
	}
}

// TestEntryR7_9 checks the derived two-packet vector field by field.
func TestEntryR7_9(t *testing.T) {
	v := vectors(t)
	var all []mode7.MonitorEntry
	for _, name := range []string{"R7-9.1", "R7-9.2"} {
		var p mode7.Packet
		require.NoError(t, p.DecodeFromBytes(v[name]))
		all = append(all, collect(t, &p)...)
	}
	require.Len(t, all, 7)
	for i, e := range all {
		want := mode7.MonitorEntry{
			AvgInt: uint32(64 + i), LastInt: uint32(3 * i), Restrict: 0x1d0, Count: uint32(100 - i),
			Addr: addr("192.0.2." + strconv.Itoa(10+i)), LocalAddr: addr("198.51.100.1"), Flags: 1, Version: 4,
			Port: 123, Mode: 4,
		}
		if i%2 == 1 {
			want.Port, want.Mode = uint16(40000+i), 3
		}
		assert.Equal(t, want, e, "entry %d", i)
	}
}

func TestEntryRoundTripAllLayouts(t *testing.T) {
	entries := []mode7.MonitorEntry{
		{Addr: addr("192.0.2.1"), LocalAddr: addr("198.51.100.7"), Port: 1, Mode: 3, Version: 4, Count: 0xffffffff,
			AvgInt: 7, LastInt: 8, FirstInt: 9, Restrict: 0x1d0, Flags: 0x40},
		{Addr: addr("2001:db8::1"), LocalAddr: addr("2001:db8::53"), Port: 65535, Mode: 7, Version: 2, Count: 1},
		{Addr: addr("::ffff:192.0.2.9"), Port: 123, Mode: 4, Version: 3},
		{Addr: addr("0.0.0.0")},
	}
	for _, e := range entries {
		for _, size := range allSizes {
			b, err := e.AppendItem(nil, size)
			if !e.Addr.Is4() && (size == 32 || size == 24 || size == 20) {
				assert.ErrorIs(t, err, mode7.ErrFieldRange, "IPv6 entry in the %d-octet layout", size)
				continue
			}
			require.NoError(t, err)
			require.Len(t, b, size)
			var got mode7.MonitorEntry
			require.NoError(t, got.UnmarshalBinary(b))
			// The fields the layout carries survive; the others are zero.
			want := e
			switch size {
			case 72, 32:
				want.FirstInt = 0
				if !want.LocalAddr.IsValid() {
					want.LocalAddr = addr("0.0.0.0")
					if !e.Addr.Is4() {
						want.LocalAddr = addr("::")
					}
				}
			case 48, 24:
				want.FirstInt, want.LocalAddr, want.Flags = 0, mode7.MonitorEntry{}.LocalAddr, 0
			case 40, 20:
				want.AvgInt, want.Restrict, want.Flags, want.LocalAddr = 0, 0, 0, mode7.MonitorEntry{}.LocalAddr
			}
			assert.Equal(t, want, got, "%v in %d octets", e.Addr, size)
			again, err := got.AppendItem(nil, size)
			require.NoError(t, err)
			assert.Equal(t, b, again)
		}
	}
}

func TestEntryEncodeErrors(t *testing.T) {
	_, err := mode7.MonitorEntry{}.MarshalBinary()
	assert.ErrorIs(t, err, mode7.ErrFieldRange, "invalid address")
	_, err = mode7.MonitorEntry{Addr: addr("192.0.2.1")}.AppendItem(nil, 33)
	assert.ErrorIs(t, err, mode7.ErrItemSize)
	_, err = mode7.MonitorEntry{Addr: addr("192.0.2.1"), LocalAddr: addr("2001:db8::1")}.MarshalBinary()
	assert.ErrorIs(t, err, mode7.ErrFieldRange, "mixed families")
	_, err = mode7.MonitorEntry{Addr: addr("2001:db8::1"), LocalAddr: addr("192.0.2.1")}.MarshalBinary()
	assert.ErrorIs(t, err, mode7.ErrFieldRange, "mixed families")

	_, err = mode7.MonitorEntry{Addr: addr("fe80::1%eth0")}.MarshalBinary()
	assert.ErrorIs(t, err, mode7.ErrFieldRange, "zoned address")
	b48, err := mode7.MonitorEntry{Addr: addr("192.0.2.1"), LocalAddr: addr("2001:db8::1")}.AppendItem(nil, 48)
	assert.NoError(t, err, "the 48-octet layout has no local address to check")
	assert.Len(t, b48, 48)

	var e mode7.MonitorEntry
	for _, n := range []int{0, 1, 19, 21, 71, 73} {
		assert.ErrorIs(t, e.UnmarshalBinary(make([]byte, n)), mode7.ErrItemSize, "%d", n)
	}
	b, err := mode7.MonitorEntry{Addr: addr("192.0.2.1")}.AppendBinary([]byte("x"))
	require.NoError(t, err)
	assert.Len(t, b, 73)
}
