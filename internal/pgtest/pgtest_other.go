//go:build !unix

// Package pgtest runs a PostgreSQL server for tests on Unix; elsewhere
// its tests skip.
package pgtest

import (
	"os"
	"testing"
)

// Main runs a test binary's tests.
func Main(m *testing.M) int { return m.Run() }

// DSN skips: the server runs as its own user only on Unix.
func DSN(t testing.TB) string {
	t.Helper()
	if os.Getenv("NTPCTL_REAL_PEERS") == "1" {
		t.Fatal("PostgreSQL tests run on Unix only (NTPCTL_REAL_PEERS=1 requires them)")
	}
	t.Skip("PostgreSQL tests run on Unix only")
	return ""
}
