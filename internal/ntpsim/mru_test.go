package ntpsim_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/internal/realpeer"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// askQuiet sends req to to over c and collects the reply's datagrams up
// to its last fragment (or an error reply), or until none has come for a
// second.
func askQuiet(t *testing.T, c *net.UDPConn, to netip.AddrPort, req []byte) [][]byte {
	t.Helper()
	_, err := c.WriteToUDPAddrPort(req, to)
	require.NoError(t, err)
	var out [][]byte
	buf := make([]byte, 2048)
	for len(out) < 256 {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		out = append(out, append([]byte(nil), buf[:n]...))
		if n >= 2 && buf[1]&0x20 == 0 {
			break // the last fragment, or an error
		}
	}
	return out
}

// askFunc sends a request to a server and returns the datagrams that
// came back.
type askFunc func(req []byte) [][]byte

var (
	nonceForm = regexp.MustCompile(`^[0-9a-f]{24}$`)
	noiseForm = regexp.MustCompile(`^[a-z]{3}$`)
)

// mruFieldSet is the eight variables ntpsec 1.2.2 sends for each entry.
var mruFieldSet = []string{"addr", "ct", "dr", "first", "last", "mv", "rs", "sc"}

// fetchNonce asks for a nonce and checks its reply: one datagram, status
// 0, the nonce alone.
func fetchNonce(t *testing.T, name string, ask askFunc, seq uint16) string {
	t.Helper()
	pkts := ask(mode6.AppendReqNonce(nil, seq))
	require.Len(t, pkts, 1, name)
	var p mode6.Packet
	require.NoError(t, p.DecodeFromBytes(pkts[0]), name)
	assert.Zero(t, p.Status, "%s: the nonce reply's status", name)
	vs := rawSplit(p.Data)
	require.Len(t, vs, 1, name)
	require.Equal(t, "nonce", vs[0].Name, name)
	require.Regexp(t, nonceForm, vs[0].Value, name)
	assert.True(t, strings.HasSuffix(string(p.Data), "\r\n"), name)
	return vs[0].Value
}

// checkMRUReply checks one READ_MRU reply against the rules ntpsec 1.2.2
// follows (see mru.go) and returns its page: ReplyBuilder cuts the reply's own variables into the same datagrams, octet
// for octet up to each one's data; last.older and addr.older come first
// on a continuation, then the nonce, then the entries by
// index with their eight fields each, one noise tag after the first and
// (when the list is done) one after the last, then now= and
// last.newest=; a reply with frags= stops taking entries at that many
// fragments.
func checkMRUReply(t *testing.T, name string, pkts [][]byte, seq uint16, frags int, continuation bool) mode6.MRUPage {
	t.Helper()
	require.NotEmpty(t, pkts, name)
	var r mode6.Reassembler
	r.Reset(seq, mode6.OpReadMRU)
	for _, b := range pkts {
		require.NoError(t, r.Add(b), name)
	}
	require.True(t, r.Complete(), name)
	require.Zero(t, r.Status(), "%s: status", name)
	if frags > 0 {
		assert.LessOrEqual(t, len(pkts), frags, name)
	}
	vs := rawSplit(r.Data())

	// The framing: the same variables, cut as ntpsec cuts them.
	var first mode6.Packet
	require.NoError(t, first.DecodeFromBytes(pkts[0]))
	var rb mode6.ReplyBuilder
	rb.Reset(mode6.Header{Leap: first.Leap, Version: first.Version, Response: true, Op: mode6.OpReadMRU, Seq: seq, AssocID: first.AssocID})
	rb.PutVars(vs)
	rebuilt := rb.AppendPackets(nil, nil)
	require.Len(t, rebuilt, len(pkts), "%s: fragments", name)
	for i := range pkts {
		var p mode6.Packet
		require.NoError(t, p.DecodeFromBytes(pkts[i]))
		n := mode6.HeaderLen + int(p.Count)
		assert.Equal(t, string(pkts[i][:n]), string(rebuilt[i][:n]), "%s: datagram %d", name, i)
	}

	// The order of the variables.
	if continuation {
		require.GreaterOrEqual(t, len(vs), 2, name)
		assert.Equal(t, []string{"last.older", "addr.older"}, []string{vs[0].Name, vs[1].Name}, name)
		vs = vs[2:]
	}
	require.NotEmpty(t, vs, name)
	require.Equal(t, "nonce", vs[0].Name, name)
	assert.Regexp(t, nonceForm, vs[0].Value, name)
	vs = vs[1:]
	type group struct {
		fields []string
		noise  int
	}
	var groups []group
	var tail []string
	for _, v := range vs {
		field, idx, indexed := strings.Cut(v.Name, ".")
		if !indexed || idx == "newest" {
			tail = append(tail, v.Name)
			continue
		}
		require.Empty(t, tail, "%s: %s after the end of the list", name, v.Name)
		n, err := strconv.Atoi(idx)
		require.NoError(t, err, "%s: %s", name, v.Name)
		if n == len(groups) {
			groups = append(groups, group{})
		}
		require.Equal(t, len(groups)-1, n, "%s: %s out of order", name, v.Name)
		g := &groups[n]
		if noiseForm.MatchString(field) {
			g.noise++
			require.Len(t, g.fields, len(mruFieldSet), "%s: noise %s inside an entry", name, v.Name)
			continue
		}
		g.fields = append(g.fields, field)
	}
	complete := len(tail) > 0
	for i, g := range groups {
		assert.ElementsMatch(t, mruFieldSet, g.fields, "%s: entry %d", name, i)
		want := 0
		if i == 0 {
			want++
		}
		if complete && i == len(groups)-1 && i > 0 {
			want++
		}
		assert.Equal(t, want, g.noise, "%s: noise tags of entry %d", name, i)
	}
	if complete {
		want := []string{"now"}
		if len(groups) > 0 {
			want = append(want, "last.newest")
		}
		assert.Equal(t, want, tail, name)
	} else if frags > 0 {
		// Stopped by frags=: the last entry began before the last
		// fragment.
		assert.Len(t, pkts, frags, "%s: incomplete with fewer fragments than frags=", name)
	}
	page, err := mode6.ParseMRU(rawSplit(r.Data()))
	require.NoError(t, err, name)
	require.Equal(t, complete, page.Complete, name)
	require.Len(t, page.Entries, len(groups), name)
	if complete && len(groups) > 0 {
		assert.Equal(t, page.Entries[len(groups)-1].Last, page.LastNewest, name)
	}
	return page
}

// walkMRU fetches a whole MRU list as ntpq does: a nonce, then requests
// of frags fragments, each naming the newest entries it has, until the
// list ends. It checks every reply and returns the entries by address,
// newest last time kept.
func walkMRU(t *testing.T, name string, ask askFunc, frags int) map[netip.Addr]mode6.MRUEntry {
	t.Helper()
	seq := uint16(100)
	nonce := fetchNonce(t, name, ask, seq)
	got := map[netip.Addr]mode6.MRUEntry{}
	var have []mode6.MRUEntry
	for round := 0; ; round++ {
		require.Less(t, round, 100, "%s: the walk does not end", name)
		seq++
		q := mode6.MRURequest{Seq: seq, Nonce: nonce, Frags: frags}
		for i := len(have) - 1; i >= 0 && len(q.Known) < 16; i-- {
			q.Known = append(q.Known, mode6.MRUKey{Addr: have[i].Addr, Last: have[i].Last})
			if q.DataLen() > mode6.MaxDataLen {
				q.Known = q.Known[:len(q.Known)-1] // as many as fit, as ntpq sends
				break
			}
		}
		b, err := q.AppendBinary(nil)
		require.NoError(t, err)
		page := checkMRUReply(t, fmt.Sprintf("%s, request %d", name, round), ask(b), seq, frags, round > 0)
		nonce = page.Nonce
		for _, e := range page.Entries {
			if old, ok := got[e.Addr.Addr()]; !ok || e.Last > old.Last {
				got[e.Addr.Addr()] = e
			}
		}
		have = append(have, page.Entries...)
		if page.Complete {
			return got
		}
	}
}

// mruErrors asks what ntpsec refuses and returns, per case, the header
// of the answer (or "silence").
func mruErrors(t *testing.T, ask, askOtherPort askFunc) map[string]string {
	t.Helper()
	nonce := fetchNonce(t, "errors", ask, 60)
	out := map[string]string{}
	var lastOffset uint16 // of the last fragment the server sent
	try := func(name string, ask askFunc, q mode6.MRURequest) {
		q.Seq = 61 + uint16(len(out))
		b, err := q.AppendBinary(nil)
		require.NoError(t, err)
		pkts := ask(b)
		if len(pkts) == 0 {
			out[name] = "silence"
			return
		}
		if pkts[0][1]&0x40 == 0 { // not an error: the header's status and count vary
			out[name] = "answer"
			lastOffset = binary.BigEndian.Uint16(pkts[len(pkts)-1][8:])
			return
		}
		// The leap indicator aside; the offset is that of the last
		// fragment the server sent before (ntpsec's ctl_error leaves it).
		h := append([]byte{pkts[0][0] & 0x3f}, pkts[0][1:12]...)
		off := binary.BigEndian.Uint16(h[8:])
		h[8], h[9] = 0, 0
		out[name] = fmt.Sprintf("% x, offset as before: %v", h, off == lastOffset)
	}
	try("frags=129", ask, mode6.MRURequest{Nonce: nonce, Frags: 129})
	try("limit=257", ask, mode6.MRURequest{Nonce: nonce, Limit: 257})
	try("frags=128", ask, mode6.MRURequest{Nonce: nonce, Frags: 128})
	try("no such known entry", ask, mode6.MRURequest{Nonce: nonce, Frags: 4,
		Known: []mode6.MRUKey{{Addr: netip.MustParseAddrPort("127.0.9.9:123"), Last: 0xeebb918500000001}}})
	try("another nonce", ask, mode6.MRURequest{Nonce: "0123456789abcdef01234567", Frags: 4})
	try("the nonce from another port", askOtherPort, mode6.MRURequest{Nonce: nonce, Frags: 4})
	return out
}

// mruClients is the simulated list: n clients on loopback, 1 to 3
// packets each.
func mruClients(n int) []mode7.MonitorEntry {
	out := make([]mode7.MonitorEntry, n)
	for i := range out {
		out[n-1-i] = mode7.MonitorEntry{Addr: netip.AddrFrom4([4]byte{127, 0, byte(1 + i/250), byte(1 + i%250)}),
			Port: uint16(40000 + i), Mode: 3, Version: 4, Count: uint32(1 + i%3), LastInt: 2}
	}
	return out
}

// TestSimulatorMRU walks the simulated MRU list and checks the
// simulator's replies by the rules of the real server (the real
// comparison is TestSimulatorMRUMatchesRealNTPsec).
func TestSimulatorMRU(t *testing.T) {
	t.Parallel()
	host := &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: 0xc000, Clients: mruClients(300)}
	s := start(t, "udp4", "127.0.0.1:0", ntpsim.Config{Default: host})
	c, other := newClient(t, "udp4", "127.0.0.1:0"), newClient(t, "udp4", "127.0.0.1:0")
	ask := func(req []byte) [][]byte { return askQuiet(t, c.conn, at(s, "127.0.0.1"), req) }
	askOther := func(req []byte) [][]byte { return askQuiet(t, other.conn, at(s, "127.0.0.1"), req) }
	for _, frags := range []int{2, 7, 32} {
		got := walkMRU(t, fmt.Sprintf("frags=%d", frags), ask, frags)
		assert.Equal(t, 301, len(got), "300 clients and the querier")
		for i, cl := range mruClients(300) {
			e, ok := got[cl.Addr]
			if assert.True(t, ok, "client %d", i) {
				assert.Equal(t, uint64(cl.Count), e.Count)
				assert.Equal(t, cl.Port, e.Addr.Port())
			}
		}
	}
	assert.Equal(t, map[string]string{
		"frags=129":                   "16 ca 00 3d 06 00 00 00 00 00 00 00, offset as before: true",
		"limit=257":                   "16 ca 00 3e 06 00 00 00 00 00 00 00, offset as before: true",
		"frags=128":                   "answer",
		"no such known entry":         "16 ca 00 40 05 00 00 00 00 00 00 00, offset as before: true",
		"another nonce":               "silence",
		"the nonce from another port": "silence",
	}, mruErrors(t, ask, askOther))

	t.Run("nonce expires", func(t *testing.T) {
		var clock atomic.Int64 // the server reads it on its own goroutine
		clock.Store(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC).UnixNano())
		h := &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Clients: mruClients(3), Now: func() time.Time { return time.Unix(0, clock.Load()) }}
		s.SetHost(netip.MustParseAddr("127.0.0.1"), h)
		nonce := fetchNonce(t, "expiry", ask, 1)
		q := mode6.MRURequest{Seq: 2, Nonce: nonce, Frags: 4}
		b, _ := q.AppendBinary(nil)
		clock.Add(int64(15 * time.Second))
		checkMRUReply(t, "15 s", ask(b), 2, 4, false)
		clock.Add(int64(time.Second))
		assert.Empty(t, ask(b), "16 s after")
	})
	t.Run("nomrulist", func(t *testing.T) {
		s.SetHost(netip.MustParseAddr("127.0.0.1"), &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, NoMRUList: true})
		nonce := fetchNonce(t, "nomrulist", ask, 1)
		q := mode6.MRURequest{Seq: 2, Nonce: nonce, Frags: 4}
		b, _ := q.AppendBinary(nil)
		pkts := ask(b)
		require.Len(t, pkts, 1)
		var p mode6.Packet
		assert.Equal(t, mode6.CErrPermission, p.DecodeFromBytes(pkts[0]))
	})
}

// TestSimulatorMRUMatchesRealNTPsec feeds a real ntpsec the packets of
// 300 clients from loopback addresses of its own namespace, walks its
// MRU list as ntpq does, and holds the simulator, walking its own list
// of 300, to the same rules: the same framing octet for octet (given the
// same variables), order, fields, noise and ends of the list, the same
// refusals, and a walk that finds every client.
func TestSimulatorMRUMatchesRealNTPsec(t *testing.T) {
	t.Parallel()
	d := realpeer.StartNTPsec(t)
	const n = 300
	d.FeedClients(t, n, func(i int) ([]byte, int) {
		pkt := make([]byte, 48)
		pkt[0] = 0x23 // version 4, client
		return pkt, 1 + i%3
	})
	c, err := d.ListenUDP("udp4")
	require.NoError(t, err)
	defer c.Close()
	other, err := d.ListenUDP("udp4")
	require.NoError(t, err)
	defer other.Close()
	ask := func(req []byte) [][]byte { return askQuiet(t, c, d.Addr, req) }
	askOther := func(req []byte) [][]byte { return askQuiet(t, other, d.Addr, req) }

	for _, frags := range []int{2, 7, 32} {
		got := walkMRU(t, fmt.Sprintf("real, frags=%d", frags), ask, frags)
		assert.Equal(t, n+1, len(got), "the clients and the querier")
		for i := range n {
			a := realpeer.ClientAddr(i)
			if e, ok := got[a]; assert.True(t, ok, "client %v", a) {
				assert.Equal(t, uint64(1+i%3), e.Count, "client %v", a)
				assert.Equal(t, uint8(3), e.Mode)
				assert.Equal(t, uint8(4), e.Version)
			}
		}
	}
	realErrs := mruErrors(t, ask, askOther)

	host := &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: 0xc000, Clients: mruClients(n)}
	s := start(t, "udp4", "127.0.0.1:0", ntpsim.Config{Default: host})
	sc, so := newClient(t, "udp4", "127.0.0.1:0"), newClient(t, "udp4", "127.0.0.1:0")
	simAsk := func(req []byte) [][]byte { return askQuiet(t, sc.conn, at(s, "127.0.0.1"), req) }
	simOther := func(req []byte) [][]byte { return askQuiet(t, so.conn, at(s, "127.0.0.1"), req) }
	for _, frags := range []int{2, 7, 32} {
		walkMRU(t, fmt.Sprintf("simulated, frags=%d", frags), simAsk, frags)
	}
	assert.Equal(t, realErrs, mruErrors(t, simAsk, simOther), "refusals")
}
