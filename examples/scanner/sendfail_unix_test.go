//go:build unix

package main

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEverySendFails: a scan whose requests all fail to send (here the
// sockets' sending side is shut: EPIPE, as a missing route gives
// ENETUNREACH) stops with an error that says so, not as a scan of
// silent hosts; the progress line shows the send errors.
func TestEverySendFails(t *testing.T) {
	noLeaks(t)
	s, dir, _, stderr := labScan(t, "-progress", "lines", "-progress-every", "50ms")
	s.cfg.ListenUDP = func(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
		c, err := net.ListenUDP(network, laddr)
		if err != nil {
			return nil, err
		}
		rc, err := c.SyscallConn()
		require.NoError(t, err)
		require.NoError(t, rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_WR) }))
		return c, nil
	}
	m, err := newProbeRun(s, &monitorKind)
	require.NoError(t, err)
	v, err := newProbeRun(s, &versionKind)
	require.NoError(t, err)
	s.probes = []side{m, v}
	_, err, took := runFor(t, s, nil, 10*time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "failed to send")
	assert.ErrorIs(t, err, syscall.EPIPE)
	assert.Less(t, took, 3*time.Second)
	assert.Contains(t, stderr.String(), "send errors")
	checkValid(t, dir) // the files are whole
}
