//go:build !unix

package store_test

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// pgDSN skips: the tests run PostgreSQL as its own user only on Unix.
func pgDSN(t testing.TB) string {
	t.Helper()
	if os.Getenv("NTPCTL_REAL_PEERS") == "1" {
		t.Fatal("PostgreSQL tests run on Unix only (NTPCTL_REAL_PEERS=1 requires them)")
	}
	t.Skip("PostgreSQL tests run on Unix only")
	return ""
}
