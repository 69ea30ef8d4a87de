package mode7_test

import (
	"errors"
	"testing"

	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHeaderVectors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want mode7.Header
	}{
		{"request VN2", "1700032a00000000", mode7.Header{Version: 2, Impl: mode7.ImplXNTPD, Code: mode7.ReqMonGetList1}},
		{"request VN3 code 20", "1f00031400000000", mode7.Header{Version: 3, Impl: mode7.ImplXNTPD, Code: mode7.ReqMonGetList}},
		{"reply with more bit, 6 items of 72", "d700032a00060048", mode7.Header{
			Response: true, More: true, Version: 2, Impl: 3, Code: 42, NItems: 6, ItemSize: 72}},
		{"last packet seq 6", "9706032a00040048", mode7.Header{
			Response: true, Version: 2, Seq: 6, Impl: 3, Code: 42, NItems: 4, ItemSize: 72}},
		{"INFO_ERR_NODATA", "9700032a40000000", mode7.Header{
			Response: true, Version: 2, Impl: 3, Code: 42, Err: mode7.InfoErrNoData}},
		{"12-bit fields use all their bits", "bfff02ff7fff9fff", mode7.Header{
			Response: true, Version: 7, Auth: true, Seq: 127, Impl: 2, Code: 255, Err: 7,
			NItems: 0xfff, MBZ: 9, ItemSize: 0xfff}},
		{"item count above 255 (zgrab2's shift bug)", "9700032a01230456", mode7.Header{
			Response: true, Version: 2, Impl: 3, Code: 42, NItems: 0x123, ItemSize: 0x456}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := unhex(t, tc.hex)
			var h mode7.Header
			require.NoError(t, h.UnmarshalBinary(b))
			assert.Equal(t, tc.want, h)
			out, err := tc.want.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, b, out)
		})
	}
}

func TestHeaderErrors(t *testing.T) {
	var h mode7.Header
	assert.ErrorIs(t, h.UnmarshalBinary(nil), mode7.ErrShort)
	assert.ErrorIs(t, h.UnmarshalBinary(unhex(t, "1700032a000000")), mode7.ErrShort)
	assert.ErrorIs(t, h.UnmarshalBinary(unhex(t, "1602000100000000")), mode7.ErrMode, "mode 6")

	for name, bad := range map[string]mode7.Header{
		"version":   {Version: 8},
		"seq":       {Seq: 128},
		"err":       {Err: 16},
		"nitems":    {NItems: 0x1000},
		"mbz":       {MBZ: 16},
		"item size": {ItemSize: 0x1000},
	} {
		_, err := bad.AppendBinary(nil)
		assert.ErrorIs(t, err, mode7.ErrFieldRange, name)
	}
}

// TestHeaderRoundTripAll checks decode(encode(h)) == h over every value of
// each field (the other fields held at a non-trivial value).
func TestHeaderRoundTripAll(t *testing.T) {
	base := mode7.Header{Response: true, More: true, Version: 3, Seq: 5, Impl: 3, Code: 42, Err: 1, NItems: 6, ItemSize: 72}
	check := func(h mode7.Header) {
		t.Helper()
		b, err := h.AppendBinary(nil)
		require.NoError(t, err)
		require.Len(t, b, mode7.HeaderLen)
		var got mode7.Header
		require.NoError(t, got.UnmarshalBinary(b))
		require.Equal(t, h, got)
	}
	for v := range 8 {
		h := base
		h.Version = uint8(v)
		check(h)
	}
	for s := range 128 {
		h := base
		h.Seq, h.Auth = uint8(s), s%2 == 0
		check(h)
	}
	for i := range 256 {
		h := base
		h.Impl, h.Code, h.Response, h.More = mode7.Impl(i), mode7.ReqCode(255-i), i%3 == 0, i%5 == 0
		check(h)
	}
	for n := range 0x1000 {
		h := base
		h.NItems, h.ItemSize, h.Err, h.MBZ = uint16(n), uint16(0xfff-n), mode7.InfoErr(n%16), uint8(n/256)
		check(h)
	}
}

func TestInfoErr(t *testing.T) {
	var err error = mode7.InfoErrNoData
	var ie mode7.InfoErr
	require.True(t, errors.As(err, &ie))
	assert.Equal(t, mode7.InfoErrNoData, ie)
	assert.ErrorIs(t, err, mode7.InfoErrNoData)
	assert.NotErrorIs(t, err, mode7.InfoErrAuth)
	assert.Equal(t, "INFO_ERR_NODATA", ie.String())
	assert.Contains(t, ie.Error(), "monlist disabled")
	assert.Equal(t, "INFO_ERR_5", mode7.InfoErr(5).String())
	assert.Contains(t, mode7.InfoErr(5).Error(), "undefined")
	for e, name := range map[mode7.InfoErr]string{0: "INFO_OKAY", 1: "INFO_ERR_IMPL", 2: "INFO_ERR_REQ",
		3: "INFO_ERR_FMT", 4: "INFO_ERR_NODATA", 7: "INFO_ERR_AUTH"} {
		assert.Equal(t, name, e.String())
		assert.Contains(t, e.Error(), name)
	}
}

func TestNames(t *testing.T) {
	assert.Equal(t, "REQ_MON_GETLIST_1", mode7.ReqMonGetList1.String())
	assert.Equal(t, "REQ_MON_GETLIST", mode7.ReqMonGetList.String())
	assert.Equal(t, "REQ_40", mode7.ReqCode(40).String())
	assert.Equal(t, "REQ_200", mode7.ReqCode(200).String())
	assert.Equal(t, "IMPL_XNTPD", mode7.ImplXNTPD.String())
	assert.Equal(t, "IMPL_XNTPD_OLD", mode7.ImplXNTPDOld.String())
	assert.Equal(t, "IMPL_UNIV", mode7.ImplUniv.String())
	assert.Equal(t, "IMPL_9", mode7.Impl(9).String())
	assert.True(t, mode7.ImplXNTPD.Known())
	assert.False(t, mode7.Impl(1).Known())
}
