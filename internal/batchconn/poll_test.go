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
