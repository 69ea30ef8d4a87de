package ntpctl

import (
	"context"
	"errors"
	"net/netip"
)

// Query sends probe to one target, with cfg's timeouts and retries, and
// returns its result: the front door for checking one host, as ntpq and
// ntpdc do. Its blocklist is cfg's (the zero Config refuses loopback and
// the IANA special-purpose ranges: a tool that checks hosts named by its
// user may want &Blocklist{NoBuiltin: true, AllowLoopback: true}). It
// opens one socket unless cfg.Sockets says otherwise.
//
// When ctx is done before the reply is complete, Query returns at once
// with ctx's error and what had come back (its Err wraps ErrAborted), or
// the zero Result when the request was never sent (ctx was done before
// Query began).
func Query[R any](ctx context.Context, cfg Config, probe Probe[R], target netip.AddrPort) (Result[R], error) {
	var res Result[R]
	if cfg.Sockets == 0 {
		cfg.Sockets = 1 // one target: one source port is all it needs
	}
	pr, err := NewProber(cfg, probe)
	if err != nil {
		return res, err
	}
	// An interrupted query should not wait for the timeout.
	stop := context.AfterFunc(ctx, pr.Abort)
	defer stop()
	got := false
	err = pr.Run(ctx, func(yield func(netip.AddrPort) bool) { yield(target) }, func(r Result[R]) error {
		res, got = r, true
		return nil
	})
	switch {
	case got && !errors.Is(res.Err, ErrAborted):
		return res, nil // complete, whatever ctx did after
	case ctx.Err() != nil:
		return res, ctx.Err()
	case err != nil:
		return res, err
	case !got:
		return res, errors.New("ntpctl: no result") // Run emits once per target: not reached
	}
	return res, nil
}
