package batchconn_test

import (
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/ntpctl/ntpctl/internal/batchconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReaderSourcesAndAllocs(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
		if network == "udp6" {
			laddr = &net.UDPAddr{IP: net.IPv6loopback}
		}
		rc, err := net.ListenUDP(network, laddr)
		require.NoError(t, err)
		defer rc.Close()
		sc, err := net.ListenUDP(network, laddr)
		require.NoError(t, err)
		defer sc.Close()
		conn := batchconn.New(rc)
		require.NoError(t, conn.EnableDst())
		rd := conn.NewReader(8)
		for i := range rd.Msgs() {
			rd.Msgs()[i].Buf = make([]byte, 64)
			rd.Msgs()[i].OOB = make([]byte, conn.OOBSize())
		}
		to := rc.LocalAddr().(*net.UDPAddr).AddrPort()
		from := sc.LocalAddr().(*net.UDPAddr).AddrPort()
		send := func() {
			_, err := sc.WriteToUDPAddrPort([]byte("hello"), to)
			require.NoError(t, err)
		}
		send()
		n, err := rd.Read()
		require.NoError(t, err)
		require.Equal(t, 1, n)
		m := rd.Msgs()[0]
		assert.Equal(t, "hello", string(m.Buf[:m.N]))
		assert.Equal(t, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), m.From)
		assert.Equal(t, to.Addr().Unmap(), conn.Dst(m.OOB[:m.NN]), "destination from IP_PKTINFO")

		if runtime.GOOS == "linux" {
			allocs := testing.AllocsPerRun(50, func() {
				send()
				n, _ := rd.Read()
				_ = conn.Dst(rd.Msgs()[0].OOB[:rd.Msgs()[0].NN])
				assert.Equal(t, 1, n)
			})
			assert.Zero(t, allocs, "%s: reading a datagram and its source and destination", network)
		}
	}
}
