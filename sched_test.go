package ntpctl

import (
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPickRetryBehindNewTargets: with no room in flight for new targets,
// a retry is found however many sockets of new targets wait ahead of it
// (it used to be looked for among the first scanLimit sockets only, and
// a scan whose flights all waited for their retries stalled).
func TestPickRetryBehindNewTargets(t *testing.T) {
	p := newPending[mode7.Reply](1024)
	now := time.Unix(1e9, 0)
	for slot := range 3 * scanLimit {
		p.add(false, slot, entry[mode7.Reply]{}, now) // new targets only
	}
	f := &flight[mode7.Reply]{}
	p.add(false, 900, entry[mode7.Reply]{f: f, gen: 1}, now.Add(time.Millisecond))
	never := func(bool, int) bool { return false }
	v6, slot, ok := p.pick(now.Add(time.Second), false, true, never)
	require.True(t, ok, "the retry is found")
	assert.False(t, v6)
	assert.Equal(t, 900, slot)
	got := p.take(false, slot, 16, 0, nil)
	require.Len(t, got, 1)
	assert.Same(t, f, got[0].f)
	_, _, ok = p.pick(now.Add(time.Second), false, true, never)
	assert.False(t, ok, "no retry left")

	// A socket that cannot send now is passed over; one with new targets
	// and a retry gives the retry only (no room), and keeps the rest.
	p.add(false, 5, entry[mode7.Reply]{f: f, gen: 2}, now)
	p.add(false, 7, entry[mode7.Reply]{f: f, gen: 3}, now)
	_, slot, ok = p.pick(now, false, true, func(_ bool, s int) bool { return s == 5 })
	require.True(t, ok)
	assert.Equal(t, 7, slot)
	got = p.take(false, 5, 16, 0, nil)
	require.Len(t, got, 1)
	assert.Equal(t, uint32(2), got[0].gen)
	assert.Len(t, p.q[0][5].entries, 1, "its new target waits for room")

	// The references stay bounded however often sockets get retries.
	for i := range 100 * 1024 {
		s := i % 1024
		p.add(false, s, entry[mode7.Reply]{f: f, gen: 4}, now)
		p.take(false, s, 16, 0, nil)
	}
	assert.LessOrEqual(t, p.retrying.len(), 4*1024+1)
}

// TestMarkSentOutOfOrder: senders stamp their batches concurrently, and
// a stamp that arrives late must not shorten the span the send rate is
// measured over (or lengthen it at the start).
func TestMarkSentOutOfOrder(t *testing.T) {
	var c counters
	const sec = int64(time.Second)
	c.markSent(10, 2*sec)
	c.markSent(10, 1*sec) // an earlier batch, stamped after
	c.markSent(10, 5*sec)
	c.markSent(10, 3*sec) // a stamp from another sender, arriving late
	if first, last := c.firstSent.Load(), c.lastSent.Load(); first != 1*sec || last != 5*sec {
		t.Fatalf("span %d..%d, want %d..%d", first, last, 1*sec, 5*sec)
	}
	if got := c.sendRate(40); got != 30.0/4 {
		t.Errorf("send rate %v, want 7.5 (30 requests after the first batch over 4 s)", got)
	}
}
