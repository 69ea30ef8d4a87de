//go:build store

package main

// With -tags store the scanner imports its run into a report store
// (-db DSN). The store links SQLite and PostgreSQL drivers, which the
// default build leaves out so that a first `go run` stays quick
// (TestLeanDependencies).

import (
	"context"
	"fmt"

	"github.com/ntpctl/ntpctl/report/store"
)

func init() { importRun = importIntoStore }

func importIntoStore(ctx context.Context, dsn, constituencies, dir string) (string, error) {
	var opt store.ImportOptions
	if constituencies != "" {
		cs, err := store.LoadConstituencies(constituencies)
		if err != nil {
			return "", err
		}
		opt.Constituencies = cs
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer st.Close()
	res, err := st.ImportDir(ctx, dir, opt)
	if err != nil {
		return "", err
	}
	state := "imported into the store"
	if !res.Created {
		state = "already in the store"
	}
	return fmt.Sprintf("run %d (%s, %d rows): %s", res.Run.ID, res.Run.Day(), res.Run.Rows, state), nil
}
