package mode7_test

import (
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntpctl/ntpctl/internal/hexcap"
	"github.com/stretchr/testify/require"
)

// vectors returns the vectors of testdata/vectors.txt (docs/wire-spec.md §3.1-3.2).
func vectors(t testing.TB) map[string][]byte {
	t.Helper()
	v, err := hexcap.LoadVectors(filepath.Join("testdata", "vectors.txt"))
	require.NoError(t, err)
	return v
}

// capture returns the packets of testdata/NAME.hex.txt.
func capture(t testing.TB, name string) []hexcap.Packet {
	t.Helper()
	p, err := hexcap.Load(filepath.Join("testdata", name+".hex.txt"))
	require.NoError(t, err)
	return p
}

// replies returns the payloads a capture's server (port 123) sent.
func replies(t testing.TB, name string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, p := range capture(t, name) {
		if p.Src.Port() == 123 {
			out = append(out, p.Payload)
		}
	}
	return out
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	require.NoError(t, err)
	return b
}
