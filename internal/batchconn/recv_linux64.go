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
}

func (s *sysReader) init(_ *Conn, n int) {
	s.hdrs = make([]mmsghdr, n)
	s.iovs = make([]unix.Iovec, n)
	s.names = make([]unix.RawSockaddrInet6, n)
	s.fn = s.call
}

func (s *sysReader) call(fd uintptr) bool {
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(s.count),
		unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false // wait until readable
	}
	s.count, s.err = int(r), e
	return true
}

func (s *sysReader) read(c *Conn, msgs []RecvMsg) (int, error) {
	for i := range msgs {
		m := &msgs[i]
		s.iovs[i].Base = unsafe.SliceData(m.Buf)
		s.iovs[i].SetLen(len(m.Buf))
		h := &s.hdrs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.names[i])), Namelen: uint32(unsafe.Sizeof(s.names[i])),
			Iov: &s.iovs[i], Iovlen: 1}
		if len(m.OOB) > 0 {
			h.Control = unsafe.SliceData(m.OOB)
			h.SetControllen(len(m.OOB))
		}
	}
	s.count = len(msgs)
	rc, err := c.UDPConn.SyscallConn()
	if err != nil {
		return 0, err
	}
	if err := rc.Read(s.fn); err != nil {
		return 0, err
	}
	if s.err != 0 {
		return 0, s.err
	}
	n := s.count
	for i := 0; i < n; i++ {
		m := &msgs[i]
		m.N = int(s.hdrs[i].n)
		m.NN = int(s.hdrs[i].hdr.Controllen)
		m.From = sockaddr(&s.names[i])
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
