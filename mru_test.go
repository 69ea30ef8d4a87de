package ntpctl_test

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mruClients is an MRU list of n clients in 198.18.0.0/15, newest first,
// with 1 to 3 packets each.
func mruClients(n int) []mode7.MonitorEntry {
	out := clients(n)
	for i := range out {
		out[i].Count = uint32(1 + i%3)
		out[i].LastInt = uint32(i)
	}
	return out
}

// jumpingClock is a clock 20 seconds later at every reading.
func jumpingClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(20 * time.Second)
		return t
	}
}

// TestMRUListAgainstSimulator walks simulated MRU lists: whole ones of
// several pages, one past the entry cap, one past the request cap, the
// refusals of servers that do not serve it, and hostile servers.
func TestMRUListAgainstSimulator(t *testing.T) {
	t.Parallel()
	sec := func(n int) *ntpsim.Host {
		return &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: 0x0615, Clients: mruClients(n)}
	}
	hostile := func(n int, hb ntpsim.Hostile) *ntpsim.Host { h := sec(n); h.Hostile = hb; return h }
	s := lab(t, "udp4", map[string]*ntpsim.Host{
		"127.0.3.1": sec(250),
		"127.0.3.2": sec(0),
		"127.0.3.3": {Mode6: ntpsim.Mode6NTPsec, Clients: mruClients(20), NoMRUList: true},
		"127.0.3.4": {Mode6: ntpsim.Mode6Classic, Clients: mruClients(20)},
		// A clock that jumps 20 s at every look: each nonce has expired
		// when it comes back, and READ_MRU gets no answer.
		"127.0.3.9": {Mode6: ntpsim.Mode6NTPsec, Clients: mruClients(20), Now: jumpingClock()},
		"127.0.4.9": {Mode6: ntpsim.Mode6Classic, NoMRU: true}, // ntpd 4.2.6
		"127.0.3.5": {Mode6: ntpsim.Mode6Silent},
		"127.0.3.6": hostile(120, ntpsim.Hostile{Duplicates: 2}),
		"127.0.3.7": hostile(120, ntpsim.Hostile{WrongSeq: true}),
		"127.0.3.8": hostile(120, ntpsim.Hostile{Reverse: true}),
	})
	port := s.Port()
	at := func(a string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(a), port) }
	var targets []netip.AddrPort
	for i := 1; i <= 9; i++ {
		targets = append(targets, at("127.0.3."+string(rune('0'+i))))
	}
	targets = append(targets, at("127.0.4.9"))
	probe := &ntpctl.MRUListProbe{Frags: 8}
	cfg := fast()
	cfg.MaxPackets = 1000
	cfg.MaxBytes = 1 << 20
	res, p := run(t, cfg, probe, targets)
	require.Len(t, res, 10)

	// 250 clients and the prober itself, in pages of 8 fragments.
	r := res[at("127.0.3.1")]
	require.Equal(t, ntpctl.StatusOK, r.Status, "%v", r.Err)
	assert.True(t, r.Value.Nonce)
	assert.True(t, r.Value.Complete)
	assert.Len(t, r.Value.Entries, 251)
	assert.Greater(t, r.Value.Pages, 3)
	assert.Equal(t, 1+r.Value.Pages, r.Attempts, "a nonce and a request per page, no retry")
	seen := map[netip.Addr]mode6.MRUEntry{}
	for i, e := range r.Value.Entries {
		seen[e.Addr.Addr()] = e
		if i > 0 {
			assert.LessOrEqual(t, r.Value.Entries[i-1].Last, e.Last, "oldest first")
		}
	}
	for i, c := range mruClients(250) {
		if e, ok := seen[c.Addr]; assert.True(t, ok, "client %d", i) {
			assert.Equal(t, uint64(c.Count), e.Count)
			assert.Equal(t, c.Port, e.Addr.Port())
			assert.Equal(t, uint8(3), e.Mode)
		}
	}
	self := seen[netip.MustParseAddr("127.0.0.1")]
	assert.Equal(t, uint8(6), self.Mode, "the prober's own requests, as ntpd lists them")
	assert.Greater(t, r.RequestBytes, 12*r.Value.Pages)

	r = res[at("127.0.3.2")]
	require.Equal(t, ntpctl.StatusOK, r.Status, "%v", r.Err)
	assert.Len(t, r.Value.Entries, 1, "the prober alone")

	r = res[at("127.0.3.3")]
	assert.Equal(t, ntpctl.StatusServerError, r.Status)
	assert.ErrorIs(t, r.Err, mode6.CErrPermission)
	assert.True(t, r.Value.Nonce)

	r = res[at("127.0.3.4")]
	require.Equal(t, ntpctl.StatusOK, r.Status, "ntpd 4.2.8: %v", r.Err)
	assert.Len(t, r.Value.Entries, 21)
	assert.Zero(t, r.Value.Entries[0].Score, "no sc.# from ntpd")
	r = res[at("127.0.3.9")]
	assert.Equal(t, ntpctl.StatusNoAnswer, r.Status)
	assert.ErrorIs(t, r.Err, ntpctl.ErrMRUNoList)
	assert.True(t, r.Value.Nonce)
	r = res[at("127.0.4.9")]
	assert.Equal(t, ntpctl.StatusServerError, r.Status)
	assert.ErrorIs(t, r.Err, mode6.CErrBadOp)
	assert.False(t, r.Value.Nonce)
	assert.Equal(t, ntpctl.StatusNoAnswer, res[at("127.0.3.5")].Status)

	r = res[at("127.0.3.6")]
	require.Equal(t, ntpctl.StatusOK, r.Status, "duplicates of every datagram: %v", r.Err)
	assert.Len(t, r.Value.Entries, 121)
	assert.Equal(t, ntpctl.StatusNoAnswer, res[at("127.0.3.7")].Status, "wrong sequence numbers never match")
	r = res[at("127.0.3.8")]
	require.Equal(t, ntpctl.StatusOK, r.Status, "fragments last first: %v", r.Err)
	assert.Len(t, r.Value.Entries, 121)

	st := p.Stats()
	assert.Positive(t, st.Steps)
	assert.Zero(t, st.Statuses.Spoofed, "repeats of an earlier page are not forgeries")
	assert.Equal(t, uint64(10), st.Finished)
}

// TestMRUListCaps: the request cap and the entry cap end a long walk
// early, and the engine's packet cap ends the whole exchange.
func TestMRUListCaps(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", map[string]*ntpsim.Host{
		"127.0.4.1": {Mode6: ntpsim.Mode6NTPsec, Clients: mruClients(300)},
	})
	target := netip.AddrPortFrom(netip.MustParseAddr("127.0.4.1"), s.Port())

	res, _ := run(t, fast(), &ntpctl.MRUListProbe{Frags: 2, MaxRequests: 3}, []netip.AddrPort{target})
	r := res[target]
	assert.Equal(t, ntpctl.StatusPartial, r.Status)
	assert.Equal(t, 3, r.Value.Pages)
	assert.False(t, r.Value.Complete)
	assert.NotEmpty(t, r.Value.Entries)

	res, _ = run(t, fast(), &ntpctl.MRUListProbe{MaxEntries: 50}, []netip.AddrPort{target})
	r = res[target]
	assert.Equal(t, ntpctl.StatusPartial, r.Status)
	assert.True(t, r.Value.Truncated)
	assert.Len(t, r.Value.Entries, 50)

	res, _ = run(t, fast(), &ntpctl.MRUListProbe{MaxEntries: 50}, []netip.AddrPort{target})
	r = res[target]
	assert.Equal(t, ntpctl.StatusPartial, r.Status)
	assert.True(t, r.Value.Truncated)
	assert.Len(t, r.Value.Entries, 50)

	cfg := fast()
	cfg.MaxPackets = 10
	res, p := run(t, cfg, &ntpctl.MRUListProbe{Frags: 4}, []netip.AddrPort{target})
	r = res[target]
	assert.Equal(t, ntpctl.StatusPartial, r.Status)
	assert.Equal(t, 10, r.Packets)
	assert.Equal(t, uint64(1), p.Stats().OverCap)
}

// TestMRUListQuery fetches one list with Query, as ntpctl mrulist does.
func TestMRUListQuery(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", map[string]*ntpsim.Host{
		"127.0.4.2": {Mode6: ntpsim.Mode6NTPsec, Clients: mruClients(40)},
	})
	cfg := fast()
	cfg.Timeout = time.Second
	r, err := ntpctl.Query(t.Context(), cfg, ntpctl.MRUList(), netip.AddrPortFrom(netip.MustParseAddr("127.0.4.2"), s.Port()))
	require.NoError(t, err)
	require.Equal(t, ntpctl.StatusOK, r.Status, "%v", r.Err)
	assert.Len(t, r.Value.Entries, 41)
	assert.Equal(t, 1, r.Value.Pages, "40 entries fit in 32 fragments")
}

// mruSeed is a walk's replies, each datagram after a 2-octet length:
// the nonce (sequence 100), then one page of entries (101) that ends the
// list.
func mruSeed(tb testing.TB, entries int) []byte {
	var rb mode6.ReplyBuilder
	var out []byte
	add := func(pkts [][]byte) {
		for _, p := range pkts {
			out = append(out, byte(len(p)>>8), byte(len(p)))
			out = append(out, p...)
		}
	}
	rb.Reset(mode6.Header{Version: 2, Response: true, Op: mode6.OpReqNonce, Seq: 100})
	rb.PutVar(mode6.Var{Name: "nonce", Value: "eebb918540e4ec9e7e1f2857"})
	add(rb.AppendPackets(nil, nil))
	page := mode6.MRUPage{Nonce: "eebb918540e4ec9e7e1f2858", Complete: true, Now: 0xeebb918600000000}
	for i := range entries {
		page.Entries = append(page.Entries, mode6.MRUEntry{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 123),
			Last: mode6.Timestamp(0xeebb918500000000 + uint64(i)<<20), Count: uint64(i + 1), Mode: 3, Version: 4})
	}
	page.LastNewest = page.Entries[len(page.Entries)-1].Last
	rb.Reset(mode6.Header{Version: 2, Response: true, Op: mode6.OpReadMRU, Seq: 101})
	rb.PutVars(mode6.AppendMRUVars(nil, &page))
	add(rb.AppendPackets(nil, nil))
	return out
}

// FuzzMRUWalk drives the MRU list probe's assembler as the prober does
// with any datagrams: it never panics, never keeps more than its cap of
// distinct addresses, returns them oldest first, and takes the seed's
// well-formed walk whole.
func FuzzMRUWalk(f *testing.F) {
	f.Add(mruSeed(f, 3))
	f.Add(mruSeed(f, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		probe := &ntpctl.MRUListProbe{MaxEntries: 20, MaxRequests: 4}
		asm := probe.NewAssembler()
		st := asm.(ntpctl.Stepper)
		asm.Reset(netip.MustParseAddrPort("192.0.2.1:123"), 100)
		n := 0
		for len(data) >= 2 {
			l := int(data[0])<<8 | int(data[1])
			data = data[2:]
			if l > len(data) {
				l = len(data)
			}
			n++
			_, done := asm.Add(data[:l])
			data = data[l:]
			if done && !st.Stale() {
				if !st.Next() {
					break
				}
				if b, err := st.AppendNext(nil); err == nil && len(b) > mode6.HeaderLen+mode6.MaxDataLen {
					t.Fatalf("a request of %d octets", len(b))
				}
			}
		}
		res, status, _ := asm.Result()
		if status.String() == "unknown" {
			t.Fatalf("status %v", status)
		}
		if len(res.Entries) > 20 {
			t.Fatalf("%d entries", len(res.Entries))
		}
		seen := map[netip.Addr]bool{}
		for i, e := range res.Entries {
			if seen[e.Addr.Addr()] || (i > 0 && res.Entries[i-1].Last > e.Last) {
				t.Fatalf("entries %v", res.Entries)
			}
			seen[e.Addr.Addr()] = true
		}
		tl := asm.Tally()
		if tl.Accepted+tl.Duplicates+tl.Malformed+tl.Mismatched+tl.Dropped > n {
			t.Fatalf("tally %+v of %d datagrams", tl, n)
		}
	})
}

func TestMRUWalkSeed(t *testing.T) {
	for _, n := range []int{3, 18} {
		probe := ntpctl.MRUList()
		asm := probe.NewAssembler()
		st := asm.(ntpctl.Stepper)
		asm.Reset(netip.MustParseAddrPort("192.0.2.1:123"), 100)
		data := mruSeed(t, n)
		for len(data) >= 2 {
			l := int(data[0])<<8 | int(data[1])
			_, done := asm.Add(data[2 : 2+l])
			data = data[2+l:]
			if done {
				if st.Next() {
					b, err := st.AppendNext(nil)
					require.NoError(t, err)
					assert.Contains(t, string(b), "nonce=eebb918540e4ec9e7e1f2857, frags=32")
				}
			}
		}
		res, status, err := asm.Result()
		require.NoError(t, err)
		assert.Equal(t, ntpctl.StatusOK, status)
		assert.Len(t, res.Entries, n)
		assert.True(t, res.Complete)
	}
}
