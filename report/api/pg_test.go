package api_test

import (
	"os"
	"testing"

	"github.com/ntpctl/ntpctl/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func pgDSN(t testing.TB) string { return pgtest.DSN(t) }
