package ntpctl_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunFeed: a Prober over a Feed probes each target as it comes and
// finishes it while the feed has nothing more (a sequence that blocked
// would hold it until the next target); a silent target times out with
// the feed idle; Close ends the run once everything taken has finished;
// afterwards Send refuses.
func TestRunFeed(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", map[string]*ntpsim.Host{"127.0.0.1": {}, "127.0.0.2": {}})
	port := s.Addr().Port()
	p, err := ntpctl.NewProber(fast(), ntpctl.Client())
	require.NoError(t, err)
	f := ntpctl.NewFeed(8)
	results := make(chan ntpctl.Result[ntpctl.TimePacket], 8)
	done := make(chan error, 1)
	go func() {
		done <- p.RunFeed(context.Background(), f, func(r ntpctl.Result[ntpctl.TimePacket]) error {
			results <- r
			return nil
		})
	}()
	next := func() ntpctl.Result[ntpctl.TimePacket] {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no result while the feed waits")
		}
		panic("unreachable")
	}
	for _, a := range []string{"127.0.0.1", "127.0.0.2"} {
		target := netip.AddrPortFrom(netip.MustParseAddr(a), port)
		require.True(t, f.Send(context.Background(), target))
		r := next() // before any other target is sent
		assert.Equal(t, target, r.Target)
		assert.Equal(t, ntpctl.StatusOK, r.Status, "%v", r.Err)
	}
	silent := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), port)
	require.True(t, f.Send(context.Background(), silent))
	r := next()
	assert.Equal(t, silent, r.Target)
	assert.Equal(t, ntpctl.StatusNoAnswer, r.Status, "timed out with the feed idle")
	assert.Equal(t, uint64(3), f.Sent())
	select {
	case err := <-done:
		t.Fatalf("RunFeed returned before Close: %v", err)
	default:
	}
	f.Close()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("RunFeed did not return after Close")
	}
	assert.False(t, f.Send(context.Background(), silent), "no prober to take it")
	assert.Equal(t, uint64(3), p.Stats().Targets)
	f.Close() // twice is fine
	assert.ErrorIs(t, p.RunFeed(context.Background(), ntpctl.NewFeed(1), nil), ntpctl.ErrRunOnce)
}

// TestRunFeedCancel: cancelling RunFeed's context ends it while the
// feed is open, and a producer blocked on a full feed is let go.
func TestRunFeedCancel(t *testing.T) {
	t.Parallel()
	p, err := ntpctl.NewProber(fast(), ntpctl.Client())
	require.NoError(t, err)
	f := ntpctl.NewFeed(1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.RunFeed(ctx, f, func(ntpctl.Result[ntpctl.TimePacket]) error { return nil }) }()
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("RunFeed did not return when cancelled")
	}
	blocked := make(chan bool, 1)
	go func() {
		target := netip.MustParseAddrPort("127.0.0.9:123")
		ok := f.Send(context.Background(), target)
		for ok {
			ok = f.Send(context.Background(), target) // fills the buffer, then is refused
		}
		blocked <- ok
	}()
	select {
	case ok := <-blocked:
		assert.False(t, ok)
	case <-time.After(5 * time.Second):
		t.Fatal("a producer stays blocked after RunFeed returned")
	}
}
