//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package batchconn

import (
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
			key := int(p.events[p.next].Fd)
			p.next++
			p.ready--
			if key == len(p.fds) {
				p.release() // the eventfd: Close was called
				return 0, net.ErrClosed
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
			}
			got += k
		}
		if got > 0 {
			return got, nil
		}
	}
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
