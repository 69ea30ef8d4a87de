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
		rep := query(t, c4, d.Addr, mode6.Request{Op: mode6.OpReadVar, Seq: 7})
		require.NoError(t, rep.Err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := d.NTPQ(ctx, "127.0.0.1", "rv")
		require.NoError(t, err, out)
		// "associd=0 status=c016 leap_alarm, sync_unspec, 1 event, restart,"
		first := strings.SplitN(out, "\n", 2)[0]
		assert.Contains(t, first, fmt.Sprintf("status=%04x %s,", rep.Status, mode6.SystemStatusOf(rep.Status)))

		rep = query(t, c4, d.Addr, mode6.Request{Op: mode6.OpReadStat, Seq: 19})
		require.NoError(t, rep.Err)
		assocs := mode6.AppendAssocStatuses(nil, rep.Data)
		require.NotEmpty(t, assocs)
		out, err = d.NTPQ(ctx, "127.0.0.1", "rv "+strconv.Itoa(int(assocs[0].AssocID)))
		require.NoError(t, err, out)
		// "associd=17767 status=9014 conf, reach, sel_reject, 1 event, reachable,"
		first = strings.SplitN(out, "\n", 2)[0]
		assert.Contains(t, first, fmt.Sprintf("status=%04x %s,", assocs[0].Status.Word(), assocs[0].Status))
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
		rep := query(t, c4, d.Addr, mode6.Request{Op: mode6.OpReadStat, Seq: 9})
		require.NoError(t, rep.Err)
		assocs := mode6.AppendAssocStatuses(nil, rep.Data)
		require.Len(t, assocs, 1, "the local reference clock")
		id := assocs[0].AssocID

		rep = query(t, c4, d.Addr, mode6.Request{Op: mode6.OpReadVar, Seq: 10, AssocID: id})
		require.NoError(t, rep.Err)
		assert.Equal(t, 2, rep.Fragments)
		assert.Equal(t, id, rep.AssocID)
		assert.Equal(t, assocs[0].Status.Word()&0xff00, rep.Status&0xff00)
		vs, _ := mode6.ParseVars(rep.Data)
		_, theirs := ntpqRaw(t, d, "127.0.0.1", "rv "+strconv.Itoa(int(id)))
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
