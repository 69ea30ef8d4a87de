package enrich

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errBoom = errors.New("boom")

type ptrFunc func(context.Context, netip.Addr) ([]string, error)

func (f ptrFunc) LookupPTR(ctx context.Context, a netip.Addr) ([]string, error) { return f(ctx, a) }

type asnFunc func(context.Context, netip.Addr) (ASN, error)

func (f asnFunc) LookupASN(ctx context.Context, a netip.Addr) (ASN, error) { return f(ctx, a) }

type geoFunc func(context.Context, netip.Addr) (Geo, error)

func (f geoFunc) LookupGeo(ctx context.Context, a netip.Addr) (Geo, error) { return f(ctx, a) }

type abuseFunc func(context.Context, netip.Addr) (Abuse, error)

func (f abuseFunc) LookupAbuse(ctx context.Context, a netip.Addr) (Abuse, error) { return f(ctx, a) }

func TestChainRunsAllAndJoins(t *testing.T) {
	addr := netip.MustParseAddr("192.0.2.1")
	c := Chain{
		FromASN(asnFunc(func(context.Context, netip.Addr) (ASN, error) {
			return ASN{}, notFound("asn", addr)
		})),
		nil,
		FromPTR(ptrFunc(func(context.Context, netip.Addr) ([]string, error) {
			return []string{"host.example"}, nil
		})),
		FromGeo(geoFunc(func(context.Context, netip.Addr) (Geo, error) {
			return Geo{}, errBoom
		})),
		FromAbuse(abuseFunc(func(context.Context, netip.Addr) (Abuse, error) {
			return Abuse{Email: "abuse@example.net"}, nil
		})),
	}
	r, err := Lookup(t.Context(), c, addr)
	assert.Equal(t, addr, r.Addr)
	assert.Equal(t, []string{"host.example"}, r.Names, "a missing ASN never suppresses the PTR")
	assert.Equal(t, "abuse@example.net", r.Abuse.Email)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, err, errBoom)
	rest := IgnoreNotFound(err)
	assert.ErrorIs(t, rest, errBoom)
	assert.NotErrorIs(t, rest, ErrNotFound)
}

func TestChainPrecedence(t *testing.T) {
	first := Func(func(_ context.Context, _ netip.Addr, r *Result) error {
		r.Merge(Result{ASN: ASN{Number: 64496}, Geo: Geo{Country: "NL"}})
		return nil
	})
	second := Func(func(_ context.Context, _ netip.Addr, r *Result) error {
		r.Merge(Result{
			ASN: ASN{Number: 64496, Name: "SAME-AS", Prefix: netip.MustParsePrefix("192.0.2.0/24")},
			Geo: Geo{Country: "NL", City: "AMSTERDAM", Latitude: 52, Longitude: 5, HasCoordinates: true},
		})
		return nil
	})
	third := Func(func(_ context.Context, _ netip.Addr, r *Result) error {
		r.Merge(Result{ASN: ASN{Number: 64511, Name: "OTHER-AS"}, Geo: Geo{Country: "US", Region: "X"}, NAICS: 1, Sector: "S"})
		return nil
	})
	r, err := Lookup(t.Context(), Chain{first, second, third}, netip.MustParseAddr("192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, ASN{Number: 64496, Name: "SAME-AS", Prefix: netip.MustParsePrefix("192.0.2.0/24")}, r.ASN)
	assert.Equal(t, Geo{Country: "NL", City: "AMSTERDAM", Latitude: 52, Longitude: 5, HasCoordinates: true}, r.Geo)
	assert.Equal(t, 1, r.NAICS)
	assert.Equal(t, "S", r.Sector)
}

func TestChainStopsOnDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	ran := 0
	c := Chain{
		Func(func(context.Context, netip.Addr, *Result) error { ran++; cancel(); return nil }),
		Func(func(context.Context, netip.Addr, *Result) error { ran++; return nil }),
	}
	_, err := Lookup(ctx, c, netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, ran)
}

func TestIgnoreNotFound(t *testing.T) {
	nf := notFound("x", netip.Addr{})
	assert.NoError(t, IgnoreNotFound(nil))
	assert.NoError(t, IgnoreNotFound(nf))
	assert.NoError(t, IgnoreNotFound(fmt.Errorf("wrapped: %w", nf)))
	assert.NoError(t, IgnoreNotFound(errors.Join(nf, errors.Join(nf, nf))))
	assert.Same(t, errBoom, IgnoreNotFound(errBoom))
	j := errors.Join(errBoom, context.Canceled)
	assert.Equal(t, j, IgnoreNotFound(j), "nothing to drop: same error")
	wrapped := fmt.Errorf("ctx: %w", errors.Join(nf, errBoom))
	assert.Same(t, wrapped, IgnoreNotFound(wrapped), "a wrapped failure is kept whole")
	assert.NoError(t, IgnoreNotFound(fmt.Errorf("ctx: %w", errors.Join(nf, nf))))
	got := IgnoreNotFound(errors.Join(nf, errors.Join(errBoom, nf)))
	assert.ErrorIs(t, got, errBoom)
	assert.NotErrorIs(t, got, ErrNotFound)
}

func TestMergeCopiesNames(t *testing.T) {
	names := []string{"a"}
	var r Result
	r.Merge(Result{Names: names})
	names[0] = "b"
	assert.Equal(t, []string{"a"}, r.Names)
}

func TestLimit(t *testing.T) {
	var running, peak atomic.Int32
	slow := Func(func(ctx context.Context, _ netip.Addr, _ *Result) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-time.After(20 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	e := Limit(slow, LimitOptions{MaxConcurrent: 3})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r Result
			assert.NoError(t, e.Enrich(t.Context(), netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), &r))
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(3), peak.Load())

	e = Limit(slow, LimitOptions{Timeout: time.Millisecond})
	var r Result
	assert.ErrorIs(t, e.Enrich(t.Context(), netip.MustParseAddr("192.0.2.1"), &r), context.DeadlineExceeded)

	// Waiting for a slot counts against the timeout.
	// The first call holds the only slot until block closes; wait until it
	// does hold it (a sleep could let the second call take the slot and
	// hang on block).
	block, holding := make(chan struct{}), make(chan struct{})
	held := Limit(Func(func(context.Context, netip.Addr, *Result) error { close(holding); <-block; return nil }),
		LimitOptions{MaxConcurrent: 1, Timeout: 50 * time.Millisecond})
	go held.Enrich(t.Context(), netip.MustParseAddr("192.0.2.1"), &Result{})
	<-holding
	assert.ErrorIs(t, held.Enrich(t.Context(), netip.MustParseAddr("192.0.2.2"), &r), context.DeadlineExceeded)
	close(block)

	// The zero options add nothing.
	assert.NoError(t, Limit(slow, LimitOptions{}).Enrich(t.Context(), netip.MustParseAddr("192.0.2.1"), &r))
}

// errList is an error whose dynamic type is not comparable, as some
// multi-error libraries define theirs.
type errList []error

func (e errList) Error() string   { return errors.Join(e...).Error() }
func (e errList) Unwrap() []error { return e }

// Regression: IgnoreNotFound compared errors with != to see whether a part
// had changed, which panics ("comparing uncomparable type") when a part's
// dynamic type is a slice.
func TestIgnoreNotFoundUncomparableErrors(t *testing.T) {
	nf := notFound("x", netip.Addr{})
	var got error
	require.NotPanics(t, func() { got = IgnoreNotFound(errors.Join(errList{errBoom}, nf)) })
	assert.ErrorIs(t, got, errBoom)
	assert.NotErrorIs(t, got, ErrNotFound)
	require.NotPanics(t, func() { got = IgnoreNotFound(errors.Join(errList{nf, nf}, nf)) })
	assert.NoError(t, got)
	require.NotPanics(t, func() { got = IgnoreNotFound(errList{errList{errBoom}}) })
	assert.ErrorIs(t, got, errBoom)
}

// Regression: with a free slot and a done ctx, the select in Limit picked
// at random, so a cancelled call could still start a lookup.
func TestLimitDoneContextNeverRuns(t *testing.T) {
	var ran atomic.Int32
	e := Limit(Func(func(context.Context, netip.Addr, *Result) error { ran.Add(1); return nil }),
		LimitOptions{MaxConcurrent: 4})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 200 {
		assert.ErrorIs(t, e.Enrich(ctx, netip.MustParseAddr("192.0.2.1"), &Result{}), context.Canceled)
	}
	assert.Zero(t, ran.Load())
}

// A panicking enricher behind Limit gives its slot back, so the panic
// reaches the caller without starving later calls.
func TestLimitPanicReleasesSlot(t *testing.T) {
	var calls atomic.Int32
	e := Limit(Func(func(context.Context, netip.Addr, *Result) error {
		if calls.Add(1) == 1 {
			panic("provider bug")
		}
		return nil
	}), LimitOptions{MaxConcurrent: 1, Timeout: time.Second})
	assert.PanicsWithValue(t, "provider bug", func() { _ = e.Enrich(t.Context(), netip.MustParseAddr("192.0.2.1"), &Result{}) })
	assert.NoError(t, e.Enrich(t.Context(), netip.MustParseAddr("192.0.2.1"), &Result{}))
}
