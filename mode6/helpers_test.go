package mode6_test

import (
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntpctl/ntpctl/internal/hexcap"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/require"
)

func vectors(t testing.TB) map[string][]byte {
	t.Helper()
	v, err := hexcap.LoadVectors(filepath.Join("testdata", "vectors.txt"))
	require.NoError(t, err)
	return v
}

func capture(t testing.TB, name string) []hexcap.Packet {
	t.Helper()
	p, err := hexcap.Load(filepath.Join("testdata", name+".hex.txt"))
	require.NoError(t, err)
	return p
}

// exchange returns the last request of a capture and the replies to it
// (captures with READSTAT first hold two exchanges).
func exchange(t testing.TB, name string) (req []byte, replies [][]byte) {
	t.Helper()
	for _, p := range capture(t, name) {
		if p.Dst.Port() == 123 {
			req, replies = p.Payload, nil
		} else {
			replies = append(replies, p.Payload)
		}
	}
	return req, replies
}

// reassemble reassembles the replies of a capture's last exchange.
func reassemble(t testing.TB, name string) mode6.Reply {
	t.Helper()
	req, replies := exchange(t, name)
	var h mode6.Header
	require.NoError(t, h.UnmarshalBinary(req))
	var r mode6.Reassembler
	r.Reset(h.Seq, h.Op)
	for _, b := range replies {
		_ = r.Add(b)
	}
	return r.Reply()
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	require.NoError(t, err)
	return b
}
