package enrich

import (
	"container/list"
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// CacheOptions configures [NewCache]. The zero value works: 65536 entries,
// found results kept until evicted, misses remembered for five minutes.
type CacheOptions struct {
	// Size is the most addresses the cache holds; the least recently used
	// goes first. 0 means 65536.
	Size int
	// TTL is how long a result without failures is kept. 0 means until
	// it is evicted.
	TTL time.Duration
	// NegativeTTL is how long a result whose only errors are not-founds
	// (see [IgnoreNotFound]) is kept, error included. 0 means five
	// minutes; a negative value turns negative caching off.
	NegativeTTL time.Duration
	// Now returns the current time; nil means [time.Now]. Tests set it to
	// move the clock.
	Now func() time.Time
}

// CacheStats counts what a [Cache] did since it was made.
type CacheStats struct {
	// Hits counts calls answered from the cache.
	Hits uint64
	// Misses counts calls that ran the wrapped enricher.
	Misses uint64
	// Shared counts calls that waited for a concurrent call on the same
	// address instead of running the enricher themselves.
	Shared uint64
	// Evictions counts entries dropped to stay within the size bound.
	Evictions uint64
}

// Cache is an [Enricher] that memoises another per address. Monitor lists
// repeat client addresses heavily, so most lookups of a scan are hits.
//
// A call whose enricher returned no error is remembered for TTL; one whose
// errors all match [ErrNotFound] is remembered, error included, for
// NegativeTTL; one that failed otherwise (a timeout, a SERVFAIL, a
// cancelled ctx) is not remembered, so the next call tries again.
// Concurrent calls for the same address run the enricher once and share
// its result. Callers get their own copy of the result, merged into their
// [Result] as by [Result.Merge].
//
// A Cache is safe for concurrent use. Make one with [NewCache].
type Cache struct {
	e       Enricher
	size    int
	ttl     time.Duration
	negTTL  time.Duration
	now     func() time.Time
	mu      sync.Mutex
	entries map[netip.Addr]*list.Element // of *cacheEntry
	lru     list.List                    // front is most recently used
	flights map[netip.Addr]*flight

	hits, misses, shared, evictions atomic.Uint64
}

type cacheEntry struct {
	addr    netip.Addr
	res     Result
	err     error
	expires time.Time // zero: never
}

type flight struct {
	done chan struct{}
	res  Result
	err  error
	// abandoned says the leader's own ctx ended (or its enricher
	// panicked), so err says nothing about the address.
	abandoned bool
}

// NewCache returns a [Cache] in front of e.
func NewCache(e Enricher, opts CacheOptions) *Cache {
	c := &Cache{
		e:       e,
		size:    opts.Size,
		ttl:     opts.TTL,
		negTTL:  opts.NegativeTTL,
		now:     opts.Now,
		entries: make(map[netip.Addr]*list.Element),
		flights: make(map[netip.Addr]*flight),
	}
	if c.size <= 0 {
		c.size = 65536
	}
	if c.negTTL == 0 {
		c.negTTL = 5 * time.Minute
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Enrich merges the remembered result for addr into r, or runs the wrapped
// enricher (once for all concurrent callers) and remembers its result.
func (c *Cache) Enrich(ctx context.Context, addr netip.Addr, r *Result) error {
	for {
		c.mu.Lock()
		if el, ok := c.entries[addr]; ok {
			ent := el.Value.(*cacheEntry)
			if ent.expires.IsZero() || c.now().Before(ent.expires) {
				c.lru.MoveToFront(el)
				res, err := ent.res, ent.err
				c.mu.Unlock()
				c.hits.Add(1)
				r.Merge(res)
				return err
			}
			c.lru.Remove(el)
			delete(c.entries, addr)
		}
		if f, ok := c.flights[addr]; ok {
			c.mu.Unlock()
			c.shared.Add(1)
			select {
			case <-f.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			if f.abandoned {
				// The leader's ctx ended or its enricher panicked: its
				// error says nothing about addr. Try again, unless our
				// own ctx is done too, in which case that is our error.
				if err := ctx.Err(); err != nil {
					return err
				}
				continue
			}
			r.Merge(f.res)
			return f.err
		}
		f := &flight{done: make(chan struct{})}
		c.flights[addr] = f
		c.mu.Unlock()
		c.misses.Add(1)
		return c.lead(ctx, addr, f, r)
	}
}

func (c *Cache) lead(ctx context.Context, addr netip.Addr, f *flight, r *Result) error {
	f.res = Result{Addr: addr}
	returned := false
	defer func() {
		if !returned {
			// The enricher panicked: release the waiters, who try
			// again, and remember nothing.
			f.abandoned, f.err = true, errPanicked
		}
		c.mu.Lock()
		delete(c.flights, addr)
		c.store(addr, f)
		c.mu.Unlock()
		close(f.done)
	}()
	f.err = c.e.Enrich(ctx, addr, &f.res)
	returned = true
	f.abandoned = f.err != nil && ctx.Err() != nil
	r.Merge(f.res)
	return f.err
}

// store remembers a finished flight, when its outcome is worth keeping.
// c.mu is held.
func (c *Cache) store(addr netip.Addr, f *flight) {
	var expires time.Time
	switch {
	case f.err == nil:
		if c.ttl > 0 {
			expires = c.now().Add(c.ttl)
		}
	case f.abandoned || isContextErr(f.err):
		return
	case IgnoreNotFound(f.err) == nil && c.negTTL > 0:
		expires = c.now().Add(c.negTTL)
	default:
		return
	}
	ent := &cacheEntry{addr: addr, res: f.res, err: f.err, expires: expires}
	if el, ok := c.entries[addr]; ok {
		el.Value = ent
		c.lru.MoveToFront(el)
		return
	}
	c.entries[addr] = c.lru.PushFront(ent)
	for c.lru.Len() > c.size {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*cacheEntry).addr)
		c.evictions.Add(1)
	}
}

// Len returns how many addresses the cache holds, expired ones included
// until they are looked up or evicted.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Forget drops what the cache holds about addr.
func (c *Cache) Forget(addr netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[addr]; ok {
		c.lru.Remove(el)
		delete(c.entries, addr)
	}
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Shared:    c.shared.Load(),
		Evictions: c.evictions.Load(),
	}
}

var errPanicked = errors.New("enrich: enricher panicked")

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
