package mode6_test

import (
	"errors"
	"testing"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHeaderVectors(t *testing.T) {
	tests := []struct {
		hex  string
		want mode6.Header
	}{
		{"160200010000000000000000", mode6.Header{Version: 2, Op: mode6.OpReadVar, Seq: 1}},
		{"d60200010000000000000000", mode6.Header{Leap: 3, Version: 2, Op: mode6.OpReadVar, Seq: 1}},
		{"d6820001c016000000000159", mode6.Header{Leap: 3, Version: 2, Response: true, Op: 2, Seq: 1, Status: 0xc016, Count: 345}},
		{"e6820008c516000000000166", mode6.Header{Leap: 3, Version: 4, Response: true, Op: 2, Seq: 8, Status: 0xc516, Count: 358}},
		{"d6a20012c011fc8f000001d4", mode6.Header{Leap: 3, Version: 2, Response: true, More: true, Op: 2, Seq: 18, Status: 0xc011, AssocID: 0xfc8f, Count: 468}},
		{"d6820012c011fc8f01d40069", mode6.Header{Leap: 3, Version: 2, Response: true, Op: 2, Seq: 18, Status: 0xc011, AssocID: 0xfc8f, Offset: 468, Count: 105}},
		{"d6c200060400777700000000", mode6.Header{Leap: 3, Version: 2, Response: true, Error: true, Op: 2, Seq: 6, Status: 0x0400, AssocID: 0x7777}},
		{"fefffffffffffffffffffffe", mode6.Header{Leap: 3, Version: 7, Response: true, Error: true, More: true, Op: 31,
			Seq: 0xffff, Status: 0xffff, AssocID: 0xffff, Offset: 0xffff, Count: 0xfffe}},
	}
	for _, tc := range tests {
		b := unhex(t, tc.hex)
		var h mode6.Header
		require.NoError(t, h.UnmarshalBinary(b), tc.hex)
		assert.Equal(t, tc.want, h, tc.hex)
		out, err := tc.want.MarshalBinary()
		require.NoError(t, err)
		assert.Equal(t, b, out)
	}
}

func TestHeaderErrors(t *testing.T) {
	var h mode6.Header
	assert.ErrorIs(t, h.UnmarshalBinary(unhex(t, "1602000100000000000000")), mode6.ErrShort)
	assert.ErrorIs(t, h.UnmarshalBinary(unhex(t, "1700032a0000000000000000")), mode6.ErrMode)
	for name, bad := range map[string]mode6.Header{"leap": {Leap: 4}, "version": {Version: 8}, "op": {Op: 32}} {
		_, err := bad.AppendBinary(nil)
		assert.ErrorIs(t, err, mode6.ErrFieldRange, name)
	}
}

func TestHeaderRoundTripAll(t *testing.T) {
	for b0 := range 256 {
		if b0&7 != 6 {
			continue
		}
		for b1 := range 256 {
			b := []byte{byte(b0), byte(b1), 0x12, 0x34, byte(b1), 0x56, 0x78, byte(b0), 0x9a, 0xbc, 0xde, byte(b1)}
			var h mode6.Header
			require.NoError(t, h.UnmarshalBinary(b))
			out, err := h.AppendBinary(nil)
			require.NoError(t, err)
			require.Equal(t, b, out)
		}
	}
}

func TestServerErrorAndOps(t *testing.T) {
	var err error = mode6.CErrBadAssoc
	var se mode6.ServerError
	require.True(t, errors.As(err, &se))
	assert.Equal(t, mode6.CErrBadAssoc, se)
	assert.ErrorIs(t, err, mode6.CErrBadAssoc)
	assert.Equal(t, "CERR_BADASSOC", se.String())
	assert.Equal(t, "unknown association", se.Text())
	assert.Equal(t, "mode6: server error 4 (CERR_BADASSOC): unknown association", se.Error())
	assert.Equal(t, "CERR_UNKNOWNVAR", mode6.CErrUnknownVar.String())
	assert.Equal(t, "CERR_9", mode6.ServerError(9).String())
	assert.Equal(t, "undefined error code", mode6.ServerError(9).Text())

	assert.Equal(t, "READVAR", mode6.OpReadVar.String())
	assert.Equal(t, "UNSETTRAP", mode6.OpUnsetTrap.String())
	assert.Equal(t, "OP_20", mode6.Op(20).String())
	for op := range 32 {
		o := mode6.Op(op)
		assert.Equal(t, o == 1 || o == 2 || o == 4, o.ReadOnly(), "%v", o)
	}
}
