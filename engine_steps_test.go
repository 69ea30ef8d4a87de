package ntpctl

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The rules of exchanges of several requests (Steppers) in the engine,
// with the MRU list probe's walk.

func seqOf(req []byte) uint16 {
	var h mode6.Header
	_ = h.UnmarshalBinary(req)
	return h.Seq
}

func nonceReply(seq uint16, nonce string) []byte {
	var rb mode6.ReplyBuilder
	rb.Reset(mode6.Header{Version: 2, Response: true, Op: mode6.OpReqNonce, Seq: seq})
	rb.PutVar(mode6.Var{Name: "nonce", Value: nonce})
	return rb.AppendPackets(nil, nil)[0]
}

// pageReply is a page of n entries from the first-th, the end of the
// list when complete.
func pageReply(seq uint16, first, n int, complete bool) [][]byte {
	var rb mode6.ReplyBuilder
	rb.Reset(mode6.Header{Version: 2, Response: true, Op: mode6.OpReadMRU, Seq: seq})
	pg := mode6.MRUPage{Nonce: "abcd"}
	for i := first; i < first+n; i++ {
		ts := mode6.Timestamp(uint64(3_900_000_000+i) << 32)
		pg.Entries = append(pg.Entries, mode6.MRUEntry{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 123),
			Last: ts, First: ts, Count: 1})
		pg.LastNewest = ts
	}
	if complete {
		pg.Complete, pg.Now = true, mode6.Timestamp(uint64(3_900_001_000)<<32)
	}
	rb.PutVars(mode6.AppendMRUVars(nil, &pg))
	return rb.AppendPackets(nil, nil)
}

// TestStepsMaxDuration: MaxDuration bounds the whole walk, however
// quickly each page comes.
func TestStepsMaxDuration(t *testing.T) {
	b := newBed(t, Config{MaxDuration: 10 * time.Second, Timeout: 2 * time.Second}, &MRUListProbe{MaxRequests: 100})
	f := b.take("127.0.0.1:123")
	b.deliver("127.0.0.1:123", -1, nonceReply(seqOf(b.sent[f]), "abcd"))
	start := b.now
	for k := range 40 {
		if got := b.advance(1900 * time.Millisecond); len(got) > 0 {
			assert.Equal(t, StatusPartial, got[0].Status)
			assert.LessOrEqual(t, b.now.Sub(start), 14*time.Second, "ended at the first page past MaxDuration")
			assert.Equal(t, uint64(1), b.stats.overCap.Load())
			return
		}
		for _, p := range pageReply(seqOf(b.sent[f]), k, 1, false) {
			b.deliver("127.0.0.1:123", -1, p)
		}
	}
	t.Fatalf("still walking %v after the first answer (MaxDuration 10 s)", b.now.Sub(start))
}

// TestStepsStoppedBeforeNext: a run stopped while the next request
// waits does not make the target look silent.
func TestStepsStoppedBeforeNext(t *testing.T) {
	b := newBed(t, Config{}, MRUList())
	f := b.take("127.0.0.1:123")
	b.deliver("127.0.0.1:123", -1, nonceReply(seqOf(b.sent[f]), "abcd"))
	b.e.collect(b.now, true, false) // stopping
	got := b.results()
	require.Len(t, got, 1)
	assert.Equal(t, StatusPartial, got[0].Status)
	assert.ErrorIs(t, got[0].Err, ErrStepNotSent)
	assert.NotErrorIs(t, got[0].Err, ErrMRUNoList)
	assert.Zero(t, b.stats.steps.Load(), "no follow-up request went out")
}

// TestStepsSendError: a lasting send error of a follow-up request is the
// result's error.
func TestStepsSendError(t *testing.T) {
	b := newBed(t, Config{}, MRUList())
	f := b.take("127.0.0.1:123")
	b.deliver("127.0.0.1:123", -1, nonceReply(seqOf(b.sent[f]), "abcd"))
	b.e.collect(b.now, false, false)
	require.Equal(t, f, b.e.nextRetry(), "the next step waits to go out")
	b.e.popRetry()
	b.e.sendFailed(f, b.build(f), syscall.EPERM)
	got := b.advance(0)
	require.Len(t, got, 1)
	assert.Equal(t, StatusSendError, got[0].Status)
	assert.ErrorIs(t, got[0].Err, syscall.EPERM)
	assert.Equal(t, uint64(1), b.stats.steps.Load())
}

// TestStepsNonceTooLong: a nonce no request can carry ends the walk with
// a decoding error, not a silent target.
func TestStepsNonceTooLong(t *testing.T) {
	b := newBed(t, Config{}, MRUList())
	f := b.take("127.0.0.1:123")
	var rb mode6.ReplyBuilder
	rb.Reset(mode6.Header{Version: 2, Response: true, Op: mode6.OpReqNonce, Seq: seqOf(b.sent[f])})
	rb.PutVar(mode6.Var{Name: "nonce", Value: strings.Repeat("n", 480)})
	for _, p := range rb.AppendPackets(nil, nil) {
		b.deliver("127.0.0.1:123", -1, p)
	}
	got := b.advance(0)
	require.Len(t, got, 1)
	assert.Equal(t, StatusProtocolError, got[0].Status)
	assert.ErrorIs(t, got[0].Err, mode6.ErrMRUReply)
	assert.True(t, got[0].Value.Nonce)
}

// TestStepsTimersSurviveCompaction: a silent step keeps its timer when
// the timer queue compacts, and finishes.
func TestStepsTimersSurviveCompaction(t *testing.T) {
	b := newBed(t, Config{Concurrency: 1, Timeout: 2 * time.Second}, MRUList())
	f := b.take("127.0.0.1:123")
	b.deliver("127.0.0.1:123", -1, nonceReply(seqOf(b.sent[f]), "abcd"))
	b.advance(0) // the step goes out: its timer is queued
	require.Equal(t, 1, f.steps)
	require.Equal(t, 1, f.stepAttempts)
	for i := range 200 { // others fill the queue until it compacts
		b.take(fmt.Sprintf("127.0.%d.%d:123", 1+i/250, i%250+1))
	}
	found := false
	for range 20 {
		for _, r := range b.advance(time.Second) {
			if r.Target.Addr() == netip.MustParseAddr("127.0.0.1") {
				found = true
				assert.Equal(t, StatusNoAnswer, r.Status)
				assert.True(t, errors.Is(r.Err, ErrMRUNoList), "%v", r.Err)
			}
		}
	}
	assert.True(t, found, "the walk's target finished")
	assert.Zero(t, b.e.inFlight())
}

// TestStepsSequenceBound: MaxRequests stops below the sequence numbers'
// wrap, so a walk's own replies are never taken for an earlier step's.
func TestStepsSequenceBound(t *testing.T) {
	p := &MRUListProbe{MaxRequests: 1 << 20}
	assert.Equal(t, 65535, p.maxRequests())
	a := p.NewAssembler().(*mruAssembler)
	a.Reset(netip.AddrPort{}, 100)
	a.step = p.maxRequests()
	h := mode6.Header{Version: 2, Response: true, Op: mode6.OpReadMRU, Seq: a.base + uint16(a.step)}
	b, _ := h.AppendBinary(nil)
	assert.False(t, a.ofEarlierStep(b))
}
