package batchconn_test

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/internal/batchconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPoller: one Poller reads what arrives on any of many sockets,
// says which socket each datagram came to, allocates nothing per Read,
// and Close wakes a Read that waits.
func TestPoller(t *testing.T) {
	if !batchconn.PollSupported {
		_, err := batchconn.NewPoller(nil, 8)
		assert.ErrorIs(t, err, batchconn.ErrPollUnsupported)
		t.Skip("no poller on this platform")
	}
	const socks = 200
	var conns []*batchconn.Conn
	var addrs []*net.UDPAddr
	for range socks {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		defer c.Close()
		conns = append(conns, batchconn.New(c))
		addrs = append(addrs, c.LocalAddr().(*net.UDPAddr))
	}
	p, err := batchconn.NewPoller(conns, 16)
	require.NoError(t, err)
	sender, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sender.Close()

	msgs := make([]batchconn.RecvMsg, 16)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 64)
	}
	which := make([]int, 16)
	want := map[string]int{}
	for i := range 500 {
		s := (i * 7919) % socks
		text := fmt.Sprintf("d%d", i)
		want[text] = s
		_, err := sender.WriteToUDP([]byte(text), addrs[s])
		require.NoError(t, err)
	}
	got := 0
	for got < 500 {
		n, err := p.Read(msgs, which)
		require.NoError(t, err)
		require.Positive(t, n)
		for i := range n {
			text := string(msgs[i].Buf[:msgs[i].N])
			s, ok := want[text]
			require.True(t, ok, text)
			assert.Equal(t, s, which[i], text)
			assert.Equal(t, sender.LocalAddr().(*net.UDPAddr).AddrPort(), msgs[i].From)
			delete(want, text)
		}
		got += n
	}
	assert.Empty(t, want)

	allocs := testing.AllocsPerRun(50, func() {
		_, _ = sender.WriteToUDP([]byte("x"), addrs[3])
		if n, err := p.Read(msgs, which); n != 1 || err != nil || which[0] != 3 {
			t.Fatal(n, err, which[0])
		}
	})
	assert.Zero(t, allocs, "allocations per Read")

	// Closing a Conn while the Poller runs is safe (it reads duplicates).
	require.NoError(t, conns[0].Close())
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(msgs, which)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, p.Close())
	select {
	case err := <-done:
		assert.True(t, errors.Is(err, net.ErrClosed), "%v", err)
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not wake Read")
	}
}

// TestPollerICMP: an ICMP port unreachable about a datagram sent to a
// closed port comes out of the Poller as an ICMP message naming the
// destination, for both families.
func TestPollerICMP(t *testing.T) {
	if !batchconn.PollSupported {
		t.Skip("no poller on this platform")
	}
	for _, network := range []string{"udp4", "udp6"} {
		ip := net.IPv4(127, 0, 0, 1)
		if network == "udp6" {
			ip = net.IPv6loopback
		}
		// A port that was open and is closed: nothing listens there.
		closed, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
		require.NoError(t, err)
		dst := closed.LocalAddr().(*net.UDPAddr)
		closed.Close()

		c, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
		require.NoError(t, err)
		defer c.Close()
		conn := batchconn.New(c)
		require.NoError(t, conn.EnableICMPErrors())
		p, err := batchconn.NewPoller([]*batchconn.Conn{conn}, 8)
		require.NoError(t, err)
		_, err = c.WriteToUDP([]byte("x"), dst)
		require.NoError(t, err)
		msgs := make([]batchconn.RecvMsg, 8)
		for i := range msgs {
			msgs[i].Buf = make([]byte, 64)
		}
		which := make([]int, 8)
		n, err := p.Read(msgs, which)
		require.NoError(t, err, network)
		require.Equal(t, 1, n, network)
		m := msgs[0]
		assert.True(t, m.ICMP.Set, network)
		assert.Equal(t, dst.AddrPort().Addr().Unmap(), m.From.Addr(), network)
		assert.Equal(t, uint16(dst.Port), m.From.Port(), network)
		if network == "udp4" {
			assert.Equal(t, batchconn.ICMPError{Set: true, Type: 3, Code: 3}, m.ICMP)
		} else {
			assert.Equal(t, batchconn.ICMPError{Set: true, V6: true, Type: 1, Code: 4}, m.ICMP)
		}
		require.NoError(t, p.Close())
	}
}
