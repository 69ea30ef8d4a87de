package ntpctl_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// spoofBed is the attack of a reviewer, on loopback: the attacker
// controls one scanned address and learns from the request it gets which
// port the scan sends from; then, from a silent victim's address (a
// socket bound to it stands in for raw spoofing), it sends forged replies
// to that port. The victim's socket tells the test, not the attacker,
// what the victim's request looked like.
type spoofBed struct {
	attacker *net.UDPConn
	victims  []*net.UDPConn
	learned  chan netip.AddrPort // the scan's port, as the attacker saw it
	reqs     chan victimReq      // what the victims got, and from where
}

type victimReq struct {
	i    int
	req  []byte
	from netip.AddrPort
}

func newSpoofBed(t *testing.T, attacker string, victims ...string) *spoofBed {
	t.Helper()
	a, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(attacker)))
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	b := &spoofBed{attacker: a, learned: make(chan netip.AddrPort, 4), reqs: make(chan victimReq, 16)}
	for i, victim := range victims {
		v, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(victim),
			uint16(a.LocalAddr().(*net.UDPAddr).Port))))
		require.NoError(t, err)
		t.Cleanup(func() { v.Close() })
		b.victims = append(b.victims, v)
		go func() {
			buf := make([]byte, 512)
			for {
				n, from, err := v.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				b.reqs <- victimReq{i, append([]byte(nil), buf[:n]...), from} // the victim is silent
			}
		}()
	}
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := a.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			b.learned <- from // the attacker answers nothing: it only learns
		}
	}()
	return b
}

// victim waits for the scan's requests to the victims and returns one,
// with its request and address; with differ, one whose request left from
// another port than the attacker's (with three victims and a pool of
// 1,024 ports, one always does). That is the test's knowledge, not the
// attacker's: it makes the test deterministic.
func (b *spoofBed) victim(port netip.AddrPort, differ bool) (*net.UDPConn, []byte, netip.AddrPort) {
	var pick *victimReq
	for range b.victims {
		r := <-b.reqs
		if pick == nil && (!differ || r.from != port) {
			pick = &r
		}
	}
	if pick == nil {
		panic("every victim shares the attacker's port")
	}
	v := b.victims[pick.i]
	return v, pick.req, v.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (b *spoofBed) targets() []netip.AddrPort {
	out := []netip.AddrPort{b.attacker.LocalAddr().(*net.UDPAddr).AddrPort()}
	for _, v := range b.victims {
		out = append(out, v.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	return out
}

func spoofConfig() ntpctl.Config {
	cfg := fast()
	cfg.Timeout, cfg.Quiet = time.Second, 300*time.Millisecond
	return cfg
}

// TestSpoofedMonlist: the attacker forges a whole monitor list from the
// victim's address to the port it learned. The victim's request left
// from another port of the pool, so the forgery arrives where nothing
// from the victim is awaited: the victim ends "spoofed", not a finding.
// Without the pool and the cap (one port, as the prober had), the same
// forgery is a finding: the control case shows the attack is real.
func TestSpoofedMonlist(t *testing.T) {
	t.Parallel()
	t.Run("control", func(t *testing.T) {
		b := newSpoofBed(t, "127.0.7.12:0", "127.0.7.52")
		pkts, err := mode7.AppendMonitorReply(nil, mode7.NewRequest(mode7.ReqMonGetList1).Header(), clients(30))
		require.NoError(t, err)
		go func() {
			port := <-b.learned
			for range 20 {
				for _, p := range pkts {
					_, _ = b.victims[0].WriteToUDPAddrPort(p, port)
				}
			}
		}()
		cfg := spoofConfig()
		cfg.Sockets, cfg.MaxMismatched = 1, 1<<30
		res, _ := run(t, cfg, ntpctl.MonList(), b.targets())
		v := res[b.targets()[1]]
		assert.Equal(t, ntpctl.StatusOK, v.Status, "the silent victim came out an amplifier")
		assert.Len(t, v.Value.Entries, 30)
	})
	b := newSpoofBed(t, "127.0.7.10:0", "127.0.7.50", "127.0.7.60", "127.0.7.70")
	pkts, err := mode7.AppendMonitorReply(nil, mode7.NewRequest(mode7.ReqMonGetList1).Header(), clients(30))
	require.NoError(t, err)
	forged := make(chan netip.AddrPort, 1)
	go func() {
		port := <-b.learned
		v, _, addr := b.victim(port, true)
		forged <- addr
		for range 20 {
			for _, p := range pkts {
				_, _ = v.WriteToUDPAddrPort(p, port)
			}
		}
	}()
	res, p := run(t, spoofConfig(), ntpctl.MonList(), b.targets())
	v := res[<-forged]
	assert.Equal(t, ntpctl.StatusSpoofed, v.Status, "%v", v.Err)
	assert.ErrorIs(t, v.Err, ntpctl.ErrSpoofed)
	assert.Zero(t, v.Packets, "nothing came where the victim's reply was awaited")
	assert.Equal(t, ntpctl.StatusNoAnswer, res[b.targets()[0]].Status)
	st := p.Stats()
	assert.Greater(t, st.Misdirected, uint64(8))
	assert.Equal(t, uint64(1), st.Statuses.Spoofed)
	assert.Zero(t, st.Statuses.OK, "no finding")
}

// TestSpoofedReadVar: the attacker sweeps the Mode 6 sequence numbers
// with forged READVAR replies from the victim's address, to the port it
// learned (with the pool) or the scan's one port (Sockets 1, where the
// sweep arrives at the victim's socket and the sequence number is the
// only defence). The sweep ends the victim as "spoofed" either way,
// before it reaches the right number: the test sends that one last.
func TestSpoofedReadVar(t *testing.T) {
	t.Parallel()
	for _, sockets := range []int{0, 1} {
		b := newSpoofBed(t, "127.0.7.11:0", "127.0.7.51", "127.0.7.61", "127.0.7.71")
		forged := make(chan netip.AddrPort, 1)
		go func() {
			port := <-b.learned
			victim, req, addr := b.victim(port, sockets != 1)
			forged <- addr
			seq := binary.BigEndian.Uint16(req[2:4]) // the test's knowledge, not the attacker's
			forge := func(s uint16) {
				var rb mode6.ReplyBuilder
				rb.Reset(mode6.Header{Response: true, Op: mode6.OpReadVar, Seq: s, Version: 2, Status: 0x0615})
				rb.PutVar(mode6.Var{Name: "version", Value: "ntpd 4.2.8p1 FORGED", Quoted: true})
				for _, p := range rb.AppendPackets(nil, nil) {
					_, _ = victim.WriteToUDPAddrPort(p, port)
				}
			}
			for s := range 65536 {
				if uint16(s) != seq {
					forge(uint16(s))
				}
				if s%4096 == 0 {
					time.Sleep(time.Millisecond) // do not overrun the socket buffer
				}
			}
			forge(seq)
		}()
		cfg := spoofConfig()
		cfg.Sockets = sockets
		res, p := run(t, cfg, ntpctl.ReadVar(), b.targets())
		v := res[<-forged]
		assert.Equal(t, ntpctl.StatusSpoofed, v.Status, "sockets %d: %v", sockets, v.Err)
		_, version := v.Value.Vars.Lookup("version")
		assert.False(t, version && v.Status == ntpctl.StatusOK, "sockets %d: a forged version", sockets)
		st := p.Stats()
		assert.Zero(t, st.Statuses.OK, "sockets %d: no finding", sockets)
		assert.Greater(t, st.Mismatched+st.Misdirected, uint64(8), "sockets %d", sockets)
	}
}
