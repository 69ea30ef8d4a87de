package mode6_test

import (
	"strings"
	"testing"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestVectors(t *testing.T) {
	v := vectors(t)
	req := func(name string) []byte { r, _ := exchange(t, name); return r }
	tests := []struct {
		name string
		req  mode6.Request
		want []byte
	}{
		{"Q6-1 ntp.org ntpq / nmap", mode6.Request{Op: mode6.OpReadVar, Seq: 1}, v["Q6-1"]},
		{"Q6-2 ntpsec ntpq", mode6.Request{Op: mode6.OpReadVar, Seq: 1, Leap: 3}, v["Q6-2"]},
		{"Q6-3 Metasploit", mode6.Request{Op: mode6.OpReadVar}, v["Q6-3"]},
		{"Q6-4 two names", mode6.Request{Op: mode6.OpReadVar, Seq: 4, Names: []string{"version", "stratum"}}, v["Q6-4"]},
		{"R6-7 unknown variable request", mode6.Request{Op: mode6.OpReadVar, Seq: 5, Names: []string{"nosuchvar"}}, v["R6-7.unknownvar.req"]},
		{"R6-7 bad association request", mode6.Request{Op: mode6.OpReadVar, Seq: 6, AssocID: 0x7777}, v["R6-7.badassoc.req"]},
		{"VN 4 request of R6-2", mode6.Request{Op: mode6.OpReadVar, Seq: 8, Version: 4}, unhex(t, "260200080000000000000000")},
		{"ntpsec ntpq rv capture", mode6.Request{Op: mode6.OpReadVar, Seq: 1, Leap: 3}, req("ntpsec-rv-v4")},
		{"classic ntpq rv capture", mode6.Request{Op: mode6.OpReadVar, Seq: 1}, req("classic-rv-v4")},
		{"ntpsec peer READVAR capture", mode6.Request{Op: mode6.OpReadVar, Seq: 2, AssocID: 0x4567, Leap: 3}, req("ntpsec-rv-peer")},
		{"ntpsec READSTAT", mode6.Request{Op: mode6.OpReadStat, Seq: 1, Leap: 3}, capture(t, "ntpsec-rv-peer")[0].Payload},
		{"READCLOCK", mode6.Request{Op: mode6.OpReadClock, Seq: 3, AssocID: 9}, unhex(t, "160400030000000900000000")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NotEmpty(t, tc.want)
			got, err := tc.req.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Len(t, got, tc.req.Len())
		})
	}
	b, err := mode6.AppendReadVar([]byte{9}, 4, 0, "version", "stratum")
	require.NoError(t, err)
	assert.Equal(t, append([]byte{9}, v["Q6-4"]...), b)
}

func TestRequestRefused(t *testing.T) {
	for _, op := range []mode6.Op{mode6.OpWriteVar, mode6.OpWriteClock, mode6.OpSetTrap, mode6.OpUnsetTrap,
		mode6.OpConfigure, mode6.OpSaveConfig, mode6.OpReadMRU, mode6.OpReadOrdlistA, mode6.OpReqNonce,
		mode6.OpAsyncMsg, mode6.OpUnspec, 20} {
		b, err := mode6.Request{Op: op}.AppendBinary([]byte{1})
		assert.ErrorIs(t, err, mode6.ErrOpcode, "%v", op)
		assert.Equal(t, []byte{1}, b)
	}
	for name, r := range map[string]mode6.Request{
		"version 5": {Op: 2, Version: 5},
		"leap 4":    {Op: 2, Leap: 4},
	} {
		_, err := r.MarshalBinary()
		assert.ErrorIs(t, err, mode6.ErrFieldRange, name)
	}
	for _, name := range []string{"", "a,b", "a=b", `a"`, "a b", "a\r", "\x00", "é"} {
		_, err := mode6.AppendReadVar(nil, 1, 0, name)
		assert.ErrorIs(t, err, mode6.ErrName, "%q", name)
	}
	long := strings.Repeat("x", 469)
	_, err := mode6.AppendReadVar(nil, 1, 0, long)
	assert.ErrorIs(t, err, mode6.ErrLength)
	_, err = mode6.AppendReadVar(nil, 1, 0, long[:468])
	assert.NoError(t, err)
}

func TestRequestMatches(t *testing.T) {
	r := mode6.Request{Op: mode6.OpReadVar, Seq: 7}
	assert.True(t, r.Matches(&mode6.Header{Op: 2, Seq: 7, AssocID: 99}))
	assert.False(t, r.Matches(&mode6.Header{Op: 2, Seq: 8}))
	assert.False(t, r.Matches(&mode6.Header{Op: 1, Seq: 7}))
}
