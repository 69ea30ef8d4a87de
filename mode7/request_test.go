package mode7_test

import (
	"testing"

	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestVectors(t *testing.T) {
	v := vectors(t)
	tests := []struct {
		name string
		req  mode7.Request
		want []byte
	}{
		{"Q7-1 nmap/masscan/Metasploit 48 octets", mode7.NewRequest(mode7.ReqMonGetList1), v["Q7-1"]},
		{"Q7-1 from the zero defaults", mode7.Request{Code: mode7.ReqMonGetList1, Impl: mode7.ImplXNTPD}, v["Q7-1"]},
		{"Q7-2 ntpdc/zmap 192 octets", mode7.Request{Code: 42, Impl: 3, Size: mode7.RequestLenNTPDC}, v["Q7-2"]},
		{"Q7-3 zgrab2 code 20 VN3", mode7.Request{Code: mode7.ReqMonGetList, Impl: 3, Version: 3, Size: 48}, v["Q7-3"]},
		{"8-octet probe sent to ntpsec", mode7.Request{Code: 42, Impl: 3, Size: mode7.RequestLenMin},
			capture(t, "ntpsec-mode7-monlist")[0].Payload},
		{"192-octet ntpdc request of the 4.2.6 capture", mode7.Request{Code: 42, Impl: 3, Size: 192},
			capture(t, "legacy-monlist-40")[0].Payload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NotEmpty(t, tc.want)
			got, err := tc.req.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Len(t, got, tc.req.Len())

			prefix := []byte("keep")
			got2, err := mode7.AppendRequest(prefix, tc.req)
			require.NoError(t, err)
			assert.Equal(t, append([]byte("keep"), tc.want...), got2)
		})
	}
}

func TestRequestVersionsAndImpls(t *testing.T) {
	for v := uint8(1); v <= 4; v++ {
		for _, impl := range []mode7.Impl{mode7.ImplUniv, mode7.ImplXNTPDOld, mode7.ImplXNTPD} {
			r := mode7.Request{Code: mode7.ReqMonGetList1, Impl: impl, Version: v}
			b, err := r.MarshalBinary()
			require.NoError(t, err)
			var h mode7.Header
			require.NoError(t, h.UnmarshalBinary(b))
			assert.Equal(t, mode7.Header{Version: v, Impl: impl, Code: mode7.ReqMonGetList1}, h)
		}
	}
}

func TestRequestRefused(t *testing.T) {
	readOnly := map[mode7.ReqCode]bool{}
	for _, c := range []mode7.ReqCode{0, 1, 4, 5, 6, 7, 8, 9, 16, 20, 28, 34, 38, 42, 44} {
		readOnly[c] = true
	}
	for c := range 256 {
		code := mode7.ReqCode(c)
		assert.Equal(t, readOnly[code], code.ReadOnly(), "%v", code)
		_, err := mode7.NewRequest(code).MarshalBinary()
		if readOnly[code] {
			assert.NoError(t, err, "%v", code)
		} else {
			assert.ErrorIs(t, err, mode7.ErrRequestCode, "%v", code)
		}
	}
	// The state-changing codes by name, so a change to ReadOnly shows here.
	for _, c := range []mode7.ReqCode{mode7.ReqConfig, mode7.ReqUnconfig, mode7.ReqSetSysFlag,
		mode7.ReqClrSysFlag, mode7.ReqResAddFlags, mode7.ReqResSubFlags, mode7.ReqUnrestrict,
		mode7.ReqResetStats, mode7.ReqResetPeer, mode7.ReqRereadKeys, mode7.ReqTrustKey,
		mode7.ReqUntrustKey, mode7.ReqAddTrap, mode7.ReqClrTrap, mode7.ReqTraps, mode7.ReqRequestKey,
		mode7.ReqControlKey, mode7.ReqSetClkFudge, mode7.ReqIfReload, mode7.ReqSetPrecision} {
		assert.False(t, c.ReadOnly(), "%v", c)
	}

	for name, r := range map[string]mode7.Request{
		"version 5":      {Code: 42, Impl: 3, Version: 5},
		"impl 1":         {Code: 42, Impl: 1},
		"impl 4":         {Code: 42, Impl: 4},
		"size 100":       {Code: 42, Impl: 3, Size: 100},
		"negative size":  {Code: 42, Impl: 3, Size: -1},
		"size 7":         {Code: 42, Impl: 3, Size: 7},
		"size 160 (old)": {Code: 42, Impl: 3, Size: 160},
	} {
		b, err := r.AppendBinary([]byte{1})
		assert.ErrorIs(t, err, mode7.ErrFieldRange, name)
		assert.Equal(t, []byte{1}, b, "%s: b untouched on error", name)
	}
}

func TestRequestMatches(t *testing.T) {
	r := mode7.NewRequest(mode7.ReqMonGetList1)
	assert.True(t, r.Matches(&mode7.Header{Impl: 3, Code: 42}))
	assert.False(t, r.Matches(&mode7.Header{Impl: 2, Code: 42}))
	assert.False(t, r.Matches(&mode7.Header{Impl: 3, Code: 20}))
}
