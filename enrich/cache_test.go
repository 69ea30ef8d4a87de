package enrich

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// counting is an enricher that counts its calls per address and answers
// from a rule: addresses ending in .0 are not found, in .13 fail.
type counting struct {
	calls atomic.Int64
	delay time.Duration
}

func (c *counting) Enrich(ctx context.Context, addr netip.Addr, r *Result) error {
	c.calls.Add(1)
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	switch addr.As4()[3] {
	case 0:
		return notFound("test", addr)
	case 13:
		return errBoom
	}
	r.Merge(Result{Names: []string{addr.String() + ".example"}, ASN: ASN{Number: 64496}})
	return nil
}

func TestCacheHitsAndSizeBound(t *testing.T) {
	src := &counting{}
	c := NewCache(src, CacheOptions{Size: 2})
	ctx := t.Context()
	a1, a2, a3 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")

	r, err := Lookup(ctx, c, a1)
	require.NoError(t, err)
	assert.Equal(t, []string{"192.0.2.1.example"}, r.Names)
	r.Names[0] = "mutated"
	r, err = Lookup(ctx, c, a1)
	require.NoError(t, err)
	assert.Equal(t, []string{"192.0.2.1.example"}, r.Names, "callers get copies")
	assert.Equal(t, int64(1), src.calls.Load())

	_, _ = Lookup(ctx, c, a2)
	_, _ = Lookup(ctx, c, a1) // a1 is now most recent
	_, _ = Lookup(ctx, c, a3) // evicts a2
	assert.Equal(t, 2, c.Len())
	assert.Equal(t, int64(3), src.calls.Load())
	_, _ = Lookup(ctx, c, a1)
	assert.Equal(t, int64(3), src.calls.Load(), "a1 survived")
	_, _ = Lookup(ctx, c, a2)
	assert.Equal(t, int64(4), src.calls.Load(), "a2 was evicted")
	assert.Equal(t, CacheStats{Hits: 3, Misses: 4, Evictions: 2}, c.Stats())

	c.Forget(a1)
	_, _ = Lookup(ctx, c, a1)
	assert.Equal(t, int64(5), src.calls.Load())
}

func TestCacheTTLs(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	src := &counting{}
	c := NewCache(src, CacheOptions{TTL: time.Hour, NegativeTTL: time.Minute, Now: clock.Now})
	ctx := t.Context()
	miss, hit, fail := netip.MustParseAddr("192.0.2.0"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.13")

	_, err := Lookup(ctx, c, miss)
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = Lookup(ctx, c, miss)
	assert.ErrorIs(t, err, ErrNotFound, "the miss is remembered, error included")
	assert.Equal(t, int64(1), src.calls.Load())

	_, err = Lookup(ctx, c, hit)
	require.NoError(t, err)
	assert.Equal(t, int64(2), src.calls.Load())

	_, err = Lookup(ctx, c, fail)
	assert.ErrorIs(t, err, errBoom)
	_, err = Lookup(ctx, c, fail)
	assert.ErrorIs(t, err, errBoom)
	assert.Equal(t, int64(4), src.calls.Load(), "failures are not cached")

	clock.Add(59 * time.Second)
	_, _ = Lookup(ctx, c, miss)
	assert.Equal(t, int64(4), src.calls.Load())
	clock.Add(2 * time.Second)
	_, _ = Lookup(ctx, c, miss)
	assert.Equal(t, int64(5), src.calls.Load(), "negative entry expired")
	_, _ = Lookup(ctx, c, hit)
	assert.Equal(t, int64(5), src.calls.Load(), "positive entry lives longer")
	clock.Add(time.Hour)
	_, _ = Lookup(ctx, c, hit)
	assert.Equal(t, int64(6), src.calls.Load(), "positive entry expired")

	// A negative NegativeTTL turns negative caching off.
	c = NewCache(src, CacheOptions{NegativeTTL: -1})
	_, _ = Lookup(ctx, c, miss)
	_, _ = Lookup(ctx, c, miss)
	assert.Equal(t, int64(8), src.calls.Load())
}

func TestCacheSingleflight(t *testing.T) {
	src := &counting{delay: 50 * time.Millisecond}
	c := NewCache(src, CacheOptions{})
	addr := netip.MustParseAddr("192.0.2.1")
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := Lookup(t.Context(), c, addr)
			assert.NoError(t, err)
			assert.Equal(t, uint32(64496), r.ASN.Number)
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(1), src.calls.Load())
	st := c.Stats()
	assert.Equal(t, uint64(1), st.Misses)
	assert.Equal(t, uint64(49), st.Hits+st.Shared)
}

func TestCacheLeaderCancelled(t *testing.T) {
	src := &counting{delay: 200 * time.Millisecond}
	c := NewCache(src, CacheOptions{})
	addr := netip.MustParseAddr("192.0.2.1")
	leaderCtx, cancel := context.WithCancel(t.Context())
	leaderDone := make(chan error)
	go func() {
		_, err := Lookup(leaderCtx, c, addr)
		leaderDone <- err
	}()
	// Wait for each step rather than sleep, so that a loaded machine
	// cannot swap the roles.
	require.Eventually(t, func() bool { return src.calls.Load() == 1 }, 5*time.Second, time.Millisecond)
	follower := make(chan error)
	go func() {
		_, err := Lookup(t.Context(), c, addr)
		follower <- err
	}()
	require.Eventually(t, func() bool { return c.Stats().Shared == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	assert.ErrorIs(t, <-leaderDone, context.Canceled)
	assert.NoError(t, <-follower, "the follower retries instead of inheriting the leader's cancellation")
	assert.Equal(t, int64(2), src.calls.Load())

	// A waiter whose own ctx ends stops waiting.
	c = NewCache(&counting{delay: time.Second}, CacheOptions{})
	go Lookup(t.Context(), c, addr)
	time.Sleep(10 * time.Millisecond)
	ctx, cancel2 := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel2()
	_, err := Lookup(ctx, c, addr)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestCacheConcurrentMixed(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	src := &counting{}
	c := NewCache(Chain{src, Limit(src, LimitOptions{MaxConcurrent: 4, Timeout: time.Second})},
		CacheOptions{Size: 64, NegativeTTL: time.Second, Now: clock.Now})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				addr := netip.AddrFrom4([4]byte{192, 0, byte(g % 4), byte(i % 200)})
				r, err := Lookup(t.Context(), c, addr)
				switch addr.As4()[3] {
				case 0:
					assert.ErrorIs(t, err, ErrNotFound)
				case 13:
					assert.ErrorIs(t, err, errBoom)
				default:
					assert.NoError(t, err)
					assert.Equal(t, uint32(64496), r.ASN.Number)
				}
				if i%100 == 0 {
					clock.Add(time.Second)
					c.Forget(addr)
				}
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, c.Len(), 64)
}

func TestCachePanicRemembersNothing(t *testing.T) {
	var calls atomic.Int32
	e := Func(func(_ context.Context, _ netip.Addr, r *Result) error {
		if calls.Add(1) == 1 {
			panic("first call")
		}
		r.Merge(Result{ASN: ASN{Number: 64496}})
		return nil
	})
	c := NewCache(e, CacheOptions{})
	addr := netip.MustParseAddr("192.0.2.1")
	assert.Panics(t, func() { _, _ = Lookup(t.Context(), c, addr) })
	r, err := Lookup(t.Context(), c, addr)
	require.NoError(t, err)
	assert.Equal(t, uint32(64496), r.ASN.Number)
	assert.Equal(t, int32(2), calls.Load())
}

// doneCtx is a context that is already over but whose Done channel never
// fires, so that a select can only see the flight finish: it pins down
// what a waiter returns when both are ready at once.
type doneCtx struct{ context.Context }

func (doneCtx) Done() <-chan struct{} { return nil }
func (doneCtx) Err() error            { return context.DeadlineExceeded }

// Regression: a waiter whose own ctx was done when an abandoned flight
// (leader cancelled or panicked) finished returned the leader's error
// (its cancellation, or "enricher panicked") instead of its own.
func TestCacheWaiterGetsItsOwnContextError(t *testing.T) {
	for _, how := range []string{"cancel", "panic"} {
		t.Run(how, func(t *testing.T) {
			started, release := make(chan struct{}), make(chan struct{})
			e := Func(func(ctx context.Context, _ netip.Addr, _ *Result) error {
				close(started)
				<-release
				if how == "panic" {
					panic("leader")
				}
				return ctx.Err()
			})
			c := NewCache(e, CacheOptions{})
			addr := netip.MustParseAddr("192.0.2.1")
			leaderCtx, cancel := context.WithCancel(t.Context())
			leaderDone := make(chan struct{})
			go func() {
				defer close(leaderDone)
				defer func() { _ = recover() }()
				_, _ = Lookup(leaderCtx, c, addr)
			}()
			<-started
			waiter := make(chan error)
			go func() {
				_, err := Lookup(doneCtx{t.Context()}, c, addr)
				waiter <- err
			}()
			require.Eventually(t, func() bool { return c.Stats().Shared == 1 }, time.Second, time.Millisecond)
			cancel()
			close(release)
			<-leaderDone
			err := <-waiter
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.NotErrorIs(t, err, context.Canceled)
			assert.NotErrorIs(t, err, errPanicked)
			assert.Zero(t, c.Len(), "nothing remembered")
		})
	}
}
