package enrich

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// LimitOptions configures [Limit]. The zero value sets no limit at all.
type LimitOptions struct {
	// MaxConcurrent is how many calls may run at once; more wait for a
	// slot (or for their ctx to be done). 0 means no limit.
	MaxConcurrent int
	// Timeout bounds each call, waiting for a slot included. 0 means the
	// caller's ctx alone decides.
	Timeout time.Duration
}

// Limit wraps e so that at most opts.MaxConcurrent calls run at once and
// each call ends after opts.Timeout. Put it around each network provider of
// a [Chain], so that a slow resolver or registry cannot hold up the others
// or pile up goroutines:
//
//	enrich.Chain{
//		enrich.Limit(enrich.FromPTR(ptr), enrich.LimitOptions{MaxConcurrent: 64, Timeout: 2 * time.Second}),
//		enrich.Limit(enrich.FromAbuse(rdap), enrich.LimitOptions{MaxConcurrent: 4, Timeout: 10 * time.Second}),
//	}
//
// The returned Enricher is safe for concurrent use.
func Limit(e Enricher, opts LimitOptions) Enricher {
	l := &limited{e: e, timeout: opts.Timeout}
	if opts.MaxConcurrent > 0 {
		l.sem = make(chan struct{}, opts.MaxConcurrent)
	}
	return l
}

type limited struct {
	e       Enricher
	sem     chan struct{}
	timeout time.Duration
}

func (l *limited) Enrich(ctx context.Context, addr netip.Addr, r *Result) error {
	if l.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	// A select with both cases ready picks one at random: check first, so
	// that a done ctx never starts a lookup.
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.sem != nil {
		select {
		case l.sem <- struct{}{}:
			defer func() { <-l.sem }()
		case <-ctx.Done():
			return fmt.Errorf("enrich: waiting for a lookup slot: %w", ctx.Err())
		}
	}
	return l.e.Enrich(ctx, addr, r)
}
