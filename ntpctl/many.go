package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"

	"github.com/ntpctl/ntpctl"
)

// maxSockets is the most sockets (source ports) a command that asks many
// hosts opens per address family: the prober's default pool.
const maxSockets = 1024

// probeMany sends probe to every target (distinct) and returns the
// results by target. cfg's Limiter paces it. When ctx is done, the
// targets in flight are cut short and ctx's error is returned.
func probeMany[R any](ctx context.Context, cfg ntpctl.Config, probe ntpctl.Probe[R],
	targets []netip.AddrPort) (map[netip.AddrPort]ntpctl.Result[R], error) {
	out := make(map[netip.AddrPort]ntpctl.Result[R], len(targets))
	if len(targets) == 0 {
		return out, nil
	}
	cfg.Sockets = min(maxSockets, len(targets))
	pr, err := ntpctl.NewProber(cfg, probe)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, pr.Abort) // an interrupt does not wait for timeouts
	defer stop()
	err = pr.Run(ctx, func(yield func(netip.AddrPort) bool) {
		for _, t := range targets {
			if !yield(t) {
				return
			}
		}
	}, func(r ntpctl.Result[R]) error {
		out[r.Target] = r
		return nil
	})
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	return out, err
}

// maxHostsFile caps the hosts of a -i file, and maxHostsLine a line.
const (
	maxHostsFile = 100_000
	maxHostsLine = 1024
)

// readHosts reads a file of hosts, one HOST[:PORT] per line, with '#'
// comments and blank lines ("-" is stdin). A UTF-8 byte order mark on the
// first line is dropped.
func readHosts(name string, stdin io.Reader) ([]string, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxHostsLine)
	var hosts []string
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\ufeff"))
		}
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(hosts) == maxHostsFile {
			return nil, fmt.Errorf("%s: more than %d hosts", name, maxHostsFile)
		}
		hosts = append(hosts, string(line))
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s: a line longer than %d bytes", name, maxHostsLine)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return hosts, nil
}

// resolved is one host argument and what it came to.
type resolved struct {
	arg    string
	target netip.AddrPort
	err    error
}

// resolveAll turns host arguments into targets, resolving names a few at
// a time, in the order given.
func (e env) resolveAll(ctx context.Context, args []string, port uint16) []resolved {
	out := make([]resolved, len(args))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, a := range args {
		out[i].arg = a
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i].target, out[i].err = e.target(ctx, a, port)
		}()
	}
	wg.Wait()
	return out
}
