//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package batchconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Poller reads datagrams from many sockets in one goroutine: one
// epoll(7) instance watches them all, and each ready socket is read with
// recvmmsg(2), so that a pool of a thousand sockets costs one wakeup for
// every socket with data, not a goroutine each. It reads duplicates of
// the sockets' descriptors, so closing a Conn while Read runs is safe;
// the duplicates are closed when Read returns after Close.
type Poller struct {
	epfd, evfd int
	fds        []int // the duplicates, indexed like the conns
	events     []unix.EpollEvent
	hdrs       []mmsghdr
	iovs       []unix.Iovec
	names      []unix.RawSockaddrInet6
	next       int         // the event to go on from after a full read
	ready      int         // events left from the last epoll_wait
	closed     atomic.Bool // Close was called (it writes the eventfd once)
	released   bool        // the descriptors are closed
	// The epoll descriptor is itself waited on through Go's netpoller,
	// so that a Read parks its goroutine instead of blocking a thread in
	// epoll_wait (a thread that must then wait for a P to go on, while
	// the sockets fill).
	epf    *os.File
	rc     syscall.RawConn
	wait   func(fd uintptr) bool // bound once: no allocation per Read
	errCtl []byte                // control buffer of error-queue reads
	waitN  int
	waitEr error
}

// PollSupported reports whether NewPoller works on this platform.
const PollSupported = true

// NewPoller returns a Poller of conns reading up to n datagrams per Read.
func NewPoller(conns []*Conn, n int) (_ *Poller, err error) {
	p := &Poller{epfd: -1, evfd: -1, hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n), events: make([]unix.EpollEvent, min(len(conns)+1, 256))}
	defer func() {
		if err != nil {
			p.release()
		}
	}()
	if p.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("batchconn: epoll_create1: %w", err)
	}
	if p.evfd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("batchconn: eventfd: %w", err)
	}
	if err = p.watch(p.evfd, len(conns)); err != nil {
		return nil, err
	}
	for i, c := range conns {
		rc, err := c.UDPConn.SyscallConn()
		if err != nil {
			return nil, err
		}
		var dup int
		var derr error
		if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
			return nil, err
		}
		if derr != nil {
			return nil, fmt.Errorf("batchconn: dup: %w", derr)
		}
		p.fds = append(p.fds, dup)
		if err := p.watch(dup, i); err != nil {
			return nil, err
		}
	}
	if err := unix.SetNonblock(p.epfd, true); err != nil {
		return nil, fmt.Errorf("batchconn: epoll: %w", err)
	}
	p.epf = os.NewFile(uintptr(p.epfd), "epoll") // non-blocking: registered with the netpoller
	if p.rc, err = p.epf.SyscallConn(); err != nil {
		return nil, err
	}
	p.wait = p.epollWait
	p.errCtl = make([]byte, 256)
	return p, nil
}

// epollWait is the RawConn.Read function: it takes what is ready without
// blocking, and says to park when nothing is.
func (p *Poller) epollWait(fd uintptr) bool {
	for {
		n, err := unix.EpollWait(int(fd), p.events, 0)
		if err == unix.EINTR {
			continue
		}
		p.waitN, p.waitEr = n, err
		return n != 0 || err != nil
	}
}

func (p *Poller) watch(fd, key int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(key)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("batchconn: epoll_ctl: %w", err)
	}
	return nil
}

// Read blocks until datagrams are ready on any socket and reads as many
// as are ready, up to len(msgs) (and the Poller's n), setting socks[i] to
// the index of the conn message i came from. After Close it returns
// net.ErrClosed, and the Poller's descriptors are released. An error a
// socket reports (an ICMP error, say) is returned once, with the index
// of the socket in socks[0]; reading goes on with the next call.
func (p *Poller) Read(msgs []RecvMsg, socks []int) (int, error) {
	msgs = msgs[:min(len(msgs), len(p.hdrs), len(socks))]
	for i := range msgs {
		p.iovs[i].Base = unsafe.SliceData(msgs[i].Buf)
		p.iovs[i].SetLen(len(msgs[i].Buf))
	}
	for {
		if p.ready == 0 {
			if err := p.rc.Read(p.wait); err != nil {
				p.release()
				return 0, net.ErrClosed
			}
			if p.waitEr != nil {
				return 0, fmt.Errorf("batchconn: epoll_wait: %w", p.waitEr)
			}
			p.next, p.ready = 0, p.waitN
		}
		got := 0
		for p.ready > 0 && got < len(msgs) {
			ev := p.events[p.next]
			key := int(ev.Fd)
			p.next++
			p.ready--
			if key == len(p.fds) {
				p.release() // the eventfd: Close was called
				return 0, net.ErrClosed
			}
			if ev.Events&unix.EPOLLERR != 0 {
				// ICMP errors queued on the socket (IP_RECVERR): read
				// them first; they come only with EPOLLERR, so the
				// steady state costs no extra system call.
				got += p.recvErrs(p.fds[key], msgs[got:], got, socks[got:], key)
				if ev.Events&unix.EPOLLIN == 0 || got == len(msgs) {
					continue
				}
			}
			k, err := p.recv(p.fds[key], msgs[got:], got)
			if err != nil {
				if got > 0 {
					p.next-- // report it on the next call
					p.ready++
					break
				}
				socks[0] = key
				return 0, err
			}
			for j := range k {
				socks[got+j] = key
				msgs[got+j].ICMP = ICMPError{}
			}
			got += k
		}
		if got > 0 {
			return got, nil
		}
	}
}

// recvErrs reads the ICMP errors queued on the socket fd (MSG_ERRQUEUE)
// into msgs, as many as fit, and returns how many it read.
func (p *Poller) recvErrs(fd int, msgs []RecvMsg, off int, socks []int, key int) int {
	n := 0
	for n < len(msgs) {
		j := off + n
		p.names[j].Family = 0
		h := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&p.names[j])), Namelen: uint32(unsafe.Sizeof(p.names[j])),
			Iov: &p.iovs[j], Iovlen: 1, Control: &p.errCtl[0]}
		h.SetControllen(len(p.errCtl))
		_, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&h)), unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return n // EAGAIN: the queue is empty
		}
		ie, ok := parseRecvErr(p.errCtl[:h.Controllen])
		if !ok {
			continue // not an ICMP error (a local one): nothing to say about a target
		}
		m := &msgs[n]
		m.N, m.Size, m.NN = 0, 0, 0
		m.From = netip.AddrPort{}
		if h.Namelen >= unix.SizeofSockaddrInet4 {
			m.From = sockaddr(&p.names[j])
		}
		m.ICMP = ie
		socks[n] = key
		n++
	}
	return n
}

// parseRecvErr finds the sock_extended_err of an IP_RECVERR or
// IPV6_RECVERR control message and reports its ICMP type and code, when
// it came from ICMP.
func parseRecvErr(oob []byte) (ICMPError, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		var n uint64
		if unix.SizeofCmsghdr == 16 {
			n = binary.NativeEndian.Uint64(oob[0:8])
		} else {
			n = uint64(binary.NativeEndian.Uint32(oob[0:4]))
		}
		lenSize := unix.SizeofCmsghdr - 8
		level := int32(binary.NativeEndian.Uint32(oob[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[lenSize+4:]))
		if n < unix.SizeofCmsghdr || n > uint64(len(oob)) {
			return ICMPError{}, false
		}
		data := oob[unix.SizeofCmsghdr:n]
		// struct sock_extended_err: ee_errno u32, ee_origin u8, ee_type
		// u8, ee_code u8, ee_pad u8, ee_info u32, ee_data u32.
		if ((level == unix.IPPROTO_IP && typ == unix.IP_RECVERR) || (level == unix.IPPROTO_IPV6 && typ == unix.IPV6_RECVERR)) &&
			len(data) >= 16 {
			switch data[4] {
			case unix.SO_EE_ORIGIN_ICMP:
				return ICMPError{Set: true, Type: data[5], Code: data[6]}, true
			case unix.SO_EE_ORIGIN_ICMP6:
				return ICMPError{Set: true, V6: true, Type: data[5], Code: data[6]}, true
			}
			return ICMPError{}, false
		}
		next := unix.CmsgSpace(int(n) - unix.SizeofCmsghdr)
		if next <= 0 || next > len(oob) {
			return ICMPError{}, false
		}
		oob = oob[next:]
	}
	return ICMPError{}, false
}

// EnableICMPErrors asks the kernel to queue the ICMP errors about the
// socket's datagrams (IP_RECVERR / IPV6_RECVERR), for a Poller to read.
func (c *Conn) EnableICMPErrors() error {
	rc, err := c.UDPConn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if c.v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
	}); err != nil {
		return err
	}
	return serr
}

// recv reads what the socket fd has into msgs, whose headers start at
// p.hdrs[off], with one recvmmsg.
func (p *Poller) recv(fd int, msgs []RecvMsg, off int) (int, error) {
	hdrs := p.hdrs[off : off+len(msgs)]
	for i := range msgs {
		m := &msgs[i]
		j := off + i
		p.names[j].Family = 0 // a stale family must not survive a short Namelen
		h := &hdrs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&p.names[j])), Namelen: uint32(unsafe.Sizeof(p.names[j])),
			Iov: &p.iovs[j], Iovlen: 1}
		if len(m.OOB) > 0 {
			h.Control = unsafe.SliceData(m.OOB)
			h.SetControllen(len(m.OOB))
		}
	}
	for {
		// MSG_TRUNC makes each msg_len the datagram's real length, so
		// oversized datagrams are counted in full.
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)),
			unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		default:
			return 0, e
		}
		n := int(r)
		for i := range n {
			m := &msgs[i]
			m.Size = int(hdrs[i].n)
			m.N = min(m.Size, len(m.Buf))
			m.NN = int(hdrs[i].hdr.Controllen)
			m.From = netip.AddrPort{}
			if hdrs[i].hdr.Namelen >= unix.SizeofSockaddrInet4 {
				m.From = sockaddr(&p.names[off+i])
			}
		}
		return n, nil
	}
}

// Close makes a Read that is blocked, or the next one, return
// net.ErrClosed; that Read releases the Poller's descriptors (so one
// goroutine must go on reading until then). Close does not close the
// Conns.
func (p *Poller) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	var one [8]byte
	one[0] = 1 // host byte order: any non-zero counter wakes epoll
	if _, err := unix.Write(p.evfd, one[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("batchconn: eventfd: %w", err)
	}
	return nil
}

// release closes the Poller's descriptors, once. The fields keep their
// numbers: Close reads evfd without a lock, ordered before this by the
// eventfd itself (release runs only after Read has seen Close's write),
// which the race detector cannot see.
func (p *Poller) release() {
	if p.released {
		return
	}
	p.released = true
	for _, fd := range p.fds {
		_ = unix.Close(fd)
	}
	if p.epf != nil {
		_ = p.epf.Close()
	} else if p.epfd >= 0 {
		_ = unix.Close(p.epfd)
	}
	if p.evfd >= 0 {
		_ = unix.Close(p.evfd)
	}
}
