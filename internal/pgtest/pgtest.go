//go:build unix

// Package pgtest runs a PostgreSQL server for tests, started by the test
// binary itself from Debian's (or any) initdb and pg_ctl, in a temporary
// directory, on a Unix socket only: no TCP port, nothing outside the
// machine. As root it runs the server as the postgres user (initdb refuses
// root).
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// pg is the PostgreSQL server of the test binary: initdb and pg_ctl in a
// temporary directory, listening on a Unix socket there and on no TCP
// port. It starts on first use; Main stops it.
var pg struct {
	once    sync.Once
	dir     string
	skip    string
	err     error
	cleanup func()
	n       atomic.Int64
}

// Main runs a test binary's tests and stops the server afterwards: call
// it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if pg.cleanup != nil {
		pg.cleanup()
	}
	return code
}

// pgBin finds a PostgreSQL program: on PATH, else in Debian's
// /usr/lib/postgresql/N/bin.
func pgBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		p := filepath.Join(dirs[i], name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (apt-get install postgresql)", name)
}

func startPostgres() {
	initdb, err := pgBin("initdb")
	if err != nil {
		pg.skip = err.Error()
		return
	}
	pgctl, err := pgBin("pg_ctl")
	if err != nil {
		pg.skip = err.Error()
		return
	}
	// Short path: a Unix socket path must fit in 107 octets.
	dir, err := os.MkdirTemp("", "ntpctl-pg-")
	if err != nil {
		pg.err = err
		return
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: run the server as postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			pg.skip = "running as root and there is no postgres user to run the server as"
			os.RemoveAll(dir)
			return
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			pg.err = err
			return
		}
	}
	run := func(name string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", filepath.Base(name), err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run(initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"); err != nil {
		pg.err = err
		return
	}
	opts := fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50", dir)
	if err := run(pgctl, "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		pg.err = fmt.Errorf("%w\n%s", err, log)
		return
	}
	pg.dir = dir
	pg.cleanup = func() {
		_ = run(pgctl, "-D", data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	}
}

// DSN returns the DSN of a new, empty database on the test binary's
// server (postgres:key=value form), starting the server on first use. It
// skips the test when PostgreSQL is not installed, and fails it instead
// under NTPCTL_REAL_PEERS=1, as CI runs.
func DSN(t testing.TB) string {
	t.Helper()
	pg.once.Do(startPostgres)
	if pg.skip != "" {
		if os.Getenv("NTPCTL_REAL_PEERS") == "1" {
			t.Fatalf("PostgreSQL: %s (NTPCTL_REAL_PEERS=1 requires it)", pg.skip)
		}
		t.Skipf("PostgreSQL: %s", pg.skip)
	}
	if pg.err != nil {
		t.Fatalf("PostgreSQL: %v", pg.err)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), pg.n.Add(1))
	admin, err := sql.Open("pgx", fmt.Sprintf("host=%s user=postgres dbname=postgres sslmode=disable", pg.dir))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres:host=%s user=postgres dbname=%s sslmode=disable", pg.dir, name)
}
