package mode6_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/internal/realpeer"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// query sends req and reassembles the reply, for at most 3 s.
func query(t *testing.T, c *net.UDPConn, to netip.AddrPort, req mode6.Request) mode6.Reply {
	t.Helper()
	b, err := req.MarshalBinary()
	require.NoError(t, err)
	_, err = c.WriteToUDPAddrPort(b, to)
	require.NoError(t, err)
	var r mode6.Reassembler
	r.ResetFor(req)
	buf := make([]byte, 2048)
	deadline := time.Now().Add(3 * time.Second)
	for !r.Done() && time.Now().Before(deadline) {
		_ = c.SetReadDeadline(deadline)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != to {
			continue
		}
		_ = r.Add(buf[:n])
	}
	return r.Reply()
}

// ntpqRaw runs `ntpq -c raw -c "rv …"` and returns the status word and
// the variables it printed (raw output is the wire text).
func ntpqRaw(t *testing.T, d *realpeer.NTPd, host, rv string) (uint16, mode6.Vars) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := d.NTPQ(ctx, host, "raw", rv)
	require.NoError(t, err, out)
	var status uint16
	var body []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Output set to") {
			continue
		}
		if strings.HasPrefix(line, "associd=") {
			for _, f := range strings.Fields(strings.TrimSuffix(line, ",")) {
				if v, ok := strings.CutPrefix(f, "status="); ok {
					n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSuffix(v, ","), "0x"), 16, 16)
					require.NoError(t, err, line)
					status = uint16(n)
				}
			}
			continue
		}
		body = append(body, line)
	}
	vs, _ := mode6.ParseVars([]byte(strings.Join(body, "\r\n")))
	return status, vs
}

// statusWord returns the status word of ntpq's first line of rv output,
// "associd=N status=XXXX …".
func statusWord(t *testing.T, line string) uint16 {
	t.Helper()
	_, rest, ok := strings.Cut(line, " status=")
	require.True(t, ok, "ntpq printed %q", line)
	hex, _, _ := strings.Cut(rest, " ")
	n, err := strconv.ParseUint(strings.TrimPrefix(hex, "0x"), 16, 16)
	require.NoError(t, err, line)
	return uint16(n)
}

// peerStatus reads the server's associations with READSTAT and returns
// its one association, the local reference clock.
func peerStatus(t *testing.T, c *net.UDPConn, to netip.AddrPort, seq uint16) mode6.AssocStatus {
	t.Helper()
	rep := query(t, c, to, mode6.Request{Op: mode6.OpReadStat, Seq: seq})
	require.NoError(t, rep.Err)
	assocs := mode6.AppendAssocStatuses(nil, rep.Data)
	require.Len(t, assocs, 1, "the local reference clock")
	return assocs[0]
}

// peerStage places a status word of the test server's one association in
// the life of a fresh ntpsec peer, or returns -1 for a word such a peer
// never has. The peer is mobilized when ntpd starts, becomes reachable
// with its first sample about a second later (while the tests run), and
// is selected as the system peer minutes later:
//
//	0  8011  conf, sel_reject, 1 event, mobilize
//	1  9014  conf, reach, sel_reject, 1 event, reachable
//	2  961a  conf, reach, sel_sys.peer, 1 event, sys_peer
//
// Besides those words it accepts what the same fields allow on the way:
// more events counted, and sel_candidate before the selection completes.
// With highOnly, the event octet is not looked at: it is for the status
// of a peer READVAR reply, which the caller compares by its high octet
// (flags and selection) only.
func peerStage(w uint16, highOnly bool) int {
	s := mode6.PeerStatusOf(w)
	conf, reach := s.Flags&mode6.PeerConfigured != 0, s.Flags&mode6.PeerReachable != 0
	if !conf || s.Flags&^(mode6.PeerConfigured|mode6.PeerReachable) != 0 {
		return -1 // never authenticated, never broadcast
	}
	switch {
	case !reach && s.Select == 0 && (highOnly || s.Event == 1 && s.EventCount > 0):
		return 0 // mobilize
	case reach && (s.Select == 0 || s.Select == 4) && (highOnly || s.Event == 4 && s.EventCount > 0):
		return 1 // reachable, not yet selected
	case reach && s.Select == 6 && (highOnly || s.Event == 10 && s.EventCount > 0):
		return 2 // sys_peer
	}
	return -1
}

// checkPeerLife checks status words of the peer read one after the other:
// before and after from READSTAT, between from another query (ntpq, or a
// READVAR whose low octet is only compared by the caller). Each is a
// state of a fresh peer, and they come in the order of its life.
func checkPeerLife(t *testing.T, before, between, after uint16) {
	t.Helper()
	b, m, a := peerStage(before, false), peerStage(between, true), peerStage(after, false)
	msg := fmt.Sprintf("peer status %04x (%s), then %04x, then %04x (%s)", before, mode6.PeerStatusOf(before),
		between, after, mode6.PeerStatusOf(after))
	assert.GreaterOrEqual(t, b, 0, msg)
	assert.GreaterOrEqual(t, m, 0, msg)
	assert.GreaterOrEqual(t, a, 0, msg)
	assert.True(t, b <= m && m <= a, "out of order: %s", msg)
}

// readPeerSteadily reads the peer association's variables with READVAR
// and with ntpq, the two in the same state of the peer. The peer becomes
// reachable about a second after ntpd starts, while the tests run, and
// its variables change with it (reach, leap, and the binary junk in the
// filt* values, which may even split them differently). READSTAT giving
// the same status just before and just after both shows that they read
// the same state; otherwise they are asked again. It returns that
// status, our reply and ntpq's variables.
func readPeerSteadily(t *testing.T, d *realpeer.NTPd, c *net.UDPConn, seq uint16) (mode6.AssocStatus, mode6.Reply, mode6.Vars) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		seq := seq + uint16(4*attempt)
		before := peerStatus(t, c, d.Addr, seq)
		rep := query(t, c, d.Addr, mode6.Request{Op: mode6.OpReadVar, Seq: seq + 1, AssocID: before.AssocID})
		require.NoError(t, rep.Err)
		_, theirs := ntpqRaw(t, d, "127.0.0.1", "rv "+strconv.Itoa(int(before.AssocID)))
		after := peerStatus(t, c, d.Addr, seq+2)
		require.Equal(t, before.AssocID, after.AssocID)
		checkPeerLife(t, before.Status.Word(), rep.Status, after.Status.Word())
		if before.Status == after.Status {
			return before, rep, theirs
		}
		require.Less(t, attempt, 3, "the peer's status kept changing")
		t.Logf("the peer's status changed from %04x (%s) to %04x (%s) meanwhile: asking again",
			before.Status.Word(), before.Status, after.Status.Word(), after.Status)
	}
}

// volatile variables change between two queries a moment apart.
var volatile = map[string]bool{"clock": true, "rootdisp": true, "rootdist": true, "offset": true, "frequency": true,
	"sys_jitter": true, "clk_jitter": true, "clk_wander": true, "rec": true, "xmt": true, "reftime": true,
	"dispersion": true, "jitter": true, "delay": true, "filtdelay": true, "filtoffset": true, "filtdisp": true,
	"reach": true, "unreach": true, "headway": true, "flash": true, "leap": true, "stratum": true, "refid": true,
	"hpoll": true, "ppoll": true, "tc": true, "peer": true}

// compareWithNTPQ checks that the variables we parsed are the ones ntpq
// printed for the same server: same names in the same order, same values
// where they do not drift between the two queries.
func compareWithNTPQ(t *testing.T, ours, theirs mode6.Vars) {
	t.Helper()
	require.Equal(t, len(theirs), len(ours), "ntpq: %v\nours: %v", theirs, ours)
	for i := range ours {
		assert.Equal(t, theirs[i].Name, ours[i].Name, "variable %d", i)
		if !volatile[ours[i].Name] {
			assert.Equal(t, theirs[i], ours[i], "variable %s", ours[i].Name)
		}
	}
}

// TestRealNTPsec queries Debian's ntpsec ntpd, started for the test in its
// own network namespace, and checks what mode6 makes of its replies
// against what ntpsec's own ntpq reports for the same server.
func TestRealNTPsec(t *testing.T) {
	d := realpeer.StartNTPsec(t)
	c4, err := d.ListenUDP("udp4")
	require.NoError(t, err)
	defer c4.Close()
	c6, err := d.ListenUDP("udp6")
	require.NoError(t, err)
	defer c6.Close()

	t.Run("system variables", func(t *testing.T) {
		for _, tc := range []struct {
			c    *net.UDPConn
			to   netip.AddrPort
			host string
		}{{c4, d.Addr, "127.0.0.1"}, {c6, d.Addr6, "::1"}} {
			rep := query(t, tc.c, tc.to, mode6.Request{Op: mode6.OpReadVar, Seq: 4242})
			require.NoError(t, rep.Err, tc.host)
			require.True(t, rep.Complete)
			assert.Equal(t, rep.Packets, rep.Fragments)
			assert.Positive(t, rep.Bytes)
			vs, st := mode6.ParseVars(rep.Data)
			assert.True(t, st.Clean(), "%+v", st)

			status, theirs := ntpqRaw(t, d, tc.host, "rv")
			compareWithNTPQ(t, vs, theirs)
			assert.Equal(t, status>>8, rep.Status>>8, "leap and clock source as ntpq saw them")

			sv, err := mode6.ParseSystemVars(rep.Data)
			require.NoError(t, err)
			assert.Equal(t, "ntpsec", sv.Banner.Implementation())
			assert.Contains(t, d.Version, strings.TrimPrefix(sv.Banner.Version, "ntpsec-"))
			assert.Empty(t, sv.Unknown)
			assert.WithinDuration(t, time.Now(), sv.Clock.Time(), time.Minute, "the server's clock is today's")
		}
	})

	t.Run("status word as ntpq prints it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The status can change while ntpq runs, so ntpq's word is checked
		// against ours read just before and just after it, and decoded as
		// ntpq decoded that same word.
		readVarStatus := func(seq uint16) uint16 {
			rep := query(t, c4, d.Addr, mode6.Request{Op: mode6.OpReadVar, Seq: seq})
			require.NoError(t, rep.Err)
			return rep.Status
		}
		before := readVarStatus(7)
		out, err := d.NTPQ(ctx, "127.0.0.1", "rv")
		require.NoError(t, err, out)
		after := readVarStatus(17)
		// "associd=0 status=c016 leap_alarm, sync_unspec, 1 event, restart,"
		first := strings.SplitN(out, "\n", 2)[0]
		w := statusWord(t, first)
		assert.Contains(t, []uint16{before, after}, w, "ntpq's status %04x, ours %04x then %04x", w, before, after)
		assert.Contains(t, first, fmt.Sprintf("status=%04x %s,", w, mode6.SystemStatusOf(w)))

		pb := peerStatus(t, c4, d.Addr, 19)
		out, err = d.NTPQ(ctx, "127.0.0.1", "rv "+strconv.Itoa(int(pb.AssocID)))
		require.NoError(t, err, out)
		pa := peerStatus(t, c4, d.Addr, 20)
		require.Equal(t, pb.AssocID, pa.AssocID)
		// "associd=17767 status=9014 conf, reach, sel_reject, 1 event, reachable,"
		first = strings.SplitN(out, "\n", 2)[0]
		w = statusWord(t, first)
		assert.True(t, strings.HasPrefix(first, fmt.Sprintf("associd=%d ", pb.AssocID)), first)
		checkPeerLife(t, pb.Status.Word(), w, pa.Status.Word())
		assert.Contains(t, []uint16{pb.Status.Word(), pa.Status.Word()}, w,
			"ntpq's status %04x, ours %04x then %04x", w, pb.Status.Word(), pa.Status.Word())
		assert.Contains(t, first, fmt.Sprintf("status=%04x %s,", w, mode6.PeerStatusOf(w)))
	})

	t.Run("named variables", func(t *testing.T) {
		rep := query(t, c4, d.Addr, mode6.Request{Op: mode6.OpReadVar, Seq: 8, Names: []string{"version", "stratum"}})
		require.NoError(t, rep.Err)
		vs, _ := mode6.ParseVars(rep.Data)
		_, theirs := ntpqRaw(t, d, "127.0.0.1", "rv 0 version,stratum")
		compareWithNTPQ(t, vs, theirs)
		assert.Equal(t, []string{"stratum", "version"}, names(vs), "in the server's order, not the order asked")
	})

	t.Run("peer association in two fragments", func(t *testing.T) {
		before, rep, theirs := readPeerSteadily(t, d, c4, 100)
		id := before.AssocID
		assert.Equal(t, 2, rep.Fragments)
		assert.Equal(t, id, rep.AssocID)
		assert.Equal(t, before.Status.Word()&0xff00, rep.Status&0xff00)
		vs, _ := mode6.ParseVars(rep.Data)
		// ntpq prints the same names; values that carry ntpsec's binary
		// junk are compared by name only (volatile).
		compareWithNTPQ(t, vs, theirs)
		src, _ := vs.Lookup("srcadr")
		assert.Equal(t, "127.127.1.0", src)
	})

	t.Run("errors", func(t *testing.T) {
		rep := query(t, c4, d.Addr, mode6.Request{Op: mode6.OpReadVar, Seq: 11, Names: []string{"nosuchvar"}})
		assert.ErrorIs(t, rep.Err, mode6.CErrUnknownVar)
		rep = query(t, c4, d.Addr, mode6.Request{Op: mode6.OpReadVar, Seq: 12, AssocID: 4242})
		assert.ErrorIs(t, rep.Err, mode6.CErrBadAssoc)
		assert.Equal(t, uint16(4242), rep.AssocID)
	})

	t.Run("ntpsec ignores Mode 7", func(t *testing.T) {
		_, err := c4.WriteToUDPAddrPort([]byte{0x17, 0, 3, 0x2a, 0, 0, 0, 0}, d.Addr)
		require.NoError(t, err)
		_ = c4.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, _, err = c4.ReadFromUDPAddrPort(make([]byte, 600))
		assert.Error(t, err, "no reply")
	})
}
