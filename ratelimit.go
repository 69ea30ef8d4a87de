package ntpctl

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// RateLimiter caps the requests per second of one or several Probers
// together: give the same one to each in Config.Limiter, and their
// requests, retries included, stay within its rate in all, whichever
// prober has work (the scanner's two probes share one). Tokens are taken
// per batch, with bursts of at most 1% of a second's worth. A
// RateLimiter is safe for concurrent use.
type RateLimiter struct {
	mu sync.Mutex
	b  bucket
}

// NewRateLimiter returns a RateLimiter of rate requests per second;
// rate ≤ 0 means no limit. batch is the largest burst wanted (a prober's
// BatchSize); 0 means 64.
func NewRateLimiter(rate float64, batch int) *RateLimiter {
	if batch <= 0 {
		batch = 64
	}
	return &RateLimiter{b: newBucket(rate, batch)}
}

// Rate returns the limit in requests per second; 0 means none.
func (l *RateLimiter) Rate() float64 { return l.b.rate }

func (l *RateLimiter) take(now time.Time, n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.take(now, n)
}

func (l *RateLimiter) refund(n int) {
	l.mu.Lock()
	l.b.refund(n)
	l.mu.Unlock()
}

func (l *RateLimiter) wait(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.wait(now)
}

func (l *RateLimiter) limited() bool { return l.b.rate > 0 }

// bucket is a token bucket: Rate tokens a second, holding at most burst.
// The burst is at most 1% of a second's worth (and at most one batch), so
// no one-second window sees more than Rate × 1.01 requests. The zero rate
// means no limit. Not safe for concurrent use; the prober holds its lock.
type bucket struct {
	rate   float64 // tokens per second; 0 = unlimited
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, batch int) bucket {
	if rate <= 0 || math.IsNaN(rate) {
		return bucket{}
	}
	burst := math.Max(1, math.Min(float64(batch), rate/100))
	return bucket{rate: rate, burst: burst, tokens: burst}
}

func (b *bucket) refill(now time.Time) {
	if b.last.IsZero() {
		b.last = now
		return
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(b.burst, b.tokens+dt*b.rate)
		b.last = now
	}
}

// take grants up to n tokens.
func (b *bucket) take(now time.Time, n int) int {
	if b.rate == 0 || n <= 0 {
		return max(n, 0)
	}
	b.refill(now)
	got := min(n, int(b.tokens))
	b.tokens -= float64(got)
	return got
}

// refund returns tokens taken but not used.
func (b *bucket) refund(n int) {
	if b.rate > 0 && n > 0 {
		b.tokens = math.Min(b.burst, b.tokens+float64(n))
	}
}

// wait returns how long until a token is available (0 when one is).
func (b *bucket) wait(now time.Time) time.Duration {
	if b.rate == 0 {
		return 0
	}
	b.refill(now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// rateMeter measures the send rate over the last second or so.
type rateMeter struct {
	times [8]time.Time
	sent  [8]uint64
	i     int
}

// observe records a sample at most every 125 ms and stores the rate over
// the samples it holds (about a second) into out.
func (m *rateMeter) observe(now time.Time, sent uint64, out *atomic.Uint64) {
	prev := m.times[(m.i+7)%8]
	if !prev.IsZero() && now.Sub(prev) < 125*time.Millisecond {
		return
	}
	m.times[m.i], m.sent[m.i] = now, sent
	oldest := (m.i + 1) % 8
	if !m.times[oldest].IsZero() {
		if dt := now.Sub(m.times[oldest]).Seconds(); dt > 0 {
			out.Store(math.Float64bits(float64(sent-m.sent[oldest]) / dt))
		}
	} else if first := m.times[0]; now.Sub(first) > 0 {
		out.Store(math.Float64bits(float64(sent-m.sent[0]) / now.Sub(first).Seconds()))
	}
	m.i = (m.i + 1) % 8
}
