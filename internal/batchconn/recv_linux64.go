//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package batchconn

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr on 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// sysReader calls recvmmsg(2) through the socket's RawConn, so the Go
// netpoller still parks the goroutine while nothing is ready.
type sysReader struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	count int
	err   syscall.Errno
	fn    func(fd uintptr) bool // bound once: no allocation per read
	rc    syscall.RawConn
	rcErr error
}

func (s *sysReader) init(c *Conn, n int) {
	s.hdrs = make([]mmsghdr, n)
	s.iovs = make([]unix.Iovec, n)
	s.names = make([]unix.RawSockaddrInet6, n)
	s.fn = s.call
	s.rc, s.rcErr = c.UDPConn.SyscallConn()
}

func (s *sysReader) call(fd uintptr) bool {
	for {
		// MSG_TRUNC makes each msg_len the datagram's real length, so
		// oversized datagrams are counted in full.
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(s.count),
			unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
		switch e {
		case unix.EINTR:
			continue // interrupted before anything was read: try again now
		case unix.EAGAIN:
			return false // wait until readable
		}
		s.count, s.err = int(r), e
		return true
	}
}

func (s *sysReader) read(c *Conn, msgs []RecvMsg) (int, error) {
	for i := range msgs {
		m := &msgs[i]
		s.iovs[i].Base = unsafe.SliceData(m.Buf)
		s.iovs[i].SetLen(len(m.Buf))
		s.names[i].Family = 0 // a stale family must not survive a short Namelen
		h := &s.hdrs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.names[i])), Namelen: uint32(unsafe.Sizeof(s.names[i])),
			Iov: &s.iovs[i], Iovlen: 1}
		if len(m.OOB) > 0 {
			h.Control = unsafe.SliceData(m.OOB)
			h.SetControllen(len(m.OOB))
		}
	}
	s.count = len(msgs)
	if s.rcErr != nil {
		return 0, s.rcErr
	}
	if err := s.rc.Read(s.fn); err != nil {
		return 0, err
	}
	if s.err != 0 {
		return 0, s.err
	}
	n := s.count
	for i := 0; i < n; i++ {
		m := &msgs[i]
		m.Size = int(s.hdrs[i].n)
		m.N = min(m.Size, len(m.Buf))
		m.NN = int(s.hdrs[i].hdr.Controllen)
		m.From = netip.AddrPort{}
		if s.hdrs[i].hdr.Namelen >= unix.SizeofSockaddrInet4 {
			m.From = sockaddr(&s.names[i])
		}
	}
	return n, nil
}

// sockaddr decodes a received sockaddr_in or sockaddr_in6.
func sockaddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	b := (*[unix.SizeofSockaddrInet6]byte)(unsafe.Pointer(sa))
	port := binary.BigEndian.Uint16(b[2:4])
	switch sa.Family {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}
