// Package batchconn puts one face on x/net's ipv4 and ipv6 packet
// connections: batched reads and writes (recvmmsg/sendmmsg on Linux) of a
// UDP socket of either family, the destination address of each datagram
// received on a wildcard socket, and the source address to send from.
package batchconn

import (
	"errors"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Message is one datagram of a batch; ipv4.Message and ipv6.Message are
// the same type.
type Message = ipv4.Message

var _ ipv4.Message = ipv6.Message{}

// batcher is what *ipv4.PacketConn and *ipv6.PacketConn have in common.
type batcher interface {
	ReadBatch(ms []Message, flags int) (int, error)
	WriteBatch(ms []Message, flags int) (int, error)
}

// ErrPollUnsupported reports that NewPoller does not work on this
// platform (see PollSupported).
var ErrPollUnsupported = errors.New("batchconn: no poller on this platform")

// Conn is a UDP socket with batched I/O.
type Conn struct {
	*net.UDPConn
	v6 bool
	b  batcher
	p4 *ipv4.PacketConn
	p6 *ipv6.PacketConn
}

// New wraps c. The address family is that of c's local address.
func New(c *net.UDPConn) *Conn {
	la, _ := c.LocalAddr().(*net.UDPAddr)
	bc := &Conn{UDPConn: c}
	if la != nil && la.IP.To4() == nil && len(la.IP) == net.IPv6len {
		bc.v6 = true
		bc.p6 = ipv6.NewPacketConn(c)
		bc.b = bc.p6
	} else {
		bc.p4 = ipv4.NewPacketConn(c)
		bc.b = bc.p4
	}
	return bc
}

// IPv6 reports whether the socket is an IPv6 socket.
func (c *Conn) IPv6() bool { return c.v6 }

// LocalAddrPort returns the socket's local address.
func (c *Conn) LocalAddrPort() netip.AddrPort {
	la, _ := c.LocalAddr().(*net.UDPAddr)
	if la == nil {
		return netip.AddrPort{}
	}
	ap := la.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// ReadBatch reads up to len(ms) datagrams; see ipv4.PacketConn.ReadBatch.
func (c *Conn) ReadBatch(ms []Message) (int, error) { return c.b.ReadBatch(ms, 0) }

// WriteBatch writes every message of ms, looping over partial batches.
// A message the kernel refuses (an unroutable source address, say) is
// skipped so the others still go out. It returns how many were written
// and the first error.
func (c *Conn) WriteBatch(ms []Message) (written int, err error) {
	written, _, err = c.WriteBatchFailed(ms, nil)
	return written, err
}

// Failure is a message WriteBatchFailed could not send.
type Failure struct {
	Index int   // its index in the batch
	Err   error // what the kernel said
}

// WriteBatchFailed is WriteBatch that also appends to failed every
// message the kernel refused, so a caller can tell which destinations
// were not sent to. It allocates nothing when failed has room.
func (c *Conn) WriteBatchFailed(ms []Message, failed []Failure) (written int, _ []Failure, err error) {
	for i := 0; i < len(ms); {
		n, werr := c.b.WriteBatch(ms[i:], 0)
		n = max(n, 0) // x/net returns -1 with an error
		i += n
		written += n
		if werr != nil || n == 0 {
			if werr == nil {
				werr = errors.New("batchconn: WriteBatch wrote nothing")
			}
			if err == nil {
				err = werr
			}
			if i < len(ms) {
				failed = append(failed, Failure{i, werr})
			}
			i++ // skip the message that failed
		}
	}
	return written, failed, err
}

// EnableDst asks the kernel for the destination address of every datagram
// received (IP_PKTINFO / IPV6_RECVPKTINFO).
func (c *Conn) EnableDst() error {
	if c.v6 {
		return c.p6.SetControlMessage(ipv6.FlagDst, true)
	}
	return c.p4.SetControlMessage(ipv4.FlagDst, true)
}

// OOBSize returns the control buffer size a read needs to carry the
// destination address.
func (c *Conn) OOBSize() int {
	if c.v6 {
		return len(ipv6.NewControlMessage(ipv6.FlagDst))
	}
	return len(ipv4.NewControlMessage(ipv4.FlagDst))
}

// SrcOOB returns control data that makes a write leave from src.
func (c *Conn) SrcOOB(src netip.Addr) []byte {
	if !src.IsValid() {
		return nil
	}
	if c.v6 {
		return (&ipv6.ControlMessage{Src: src.AsSlice()}).Marshal()
	}
	return (&ipv4.ControlMessage{Src: src.AsSlice()}).Marshal()
}

// AddrPort converts a message address to a netip.AddrPort, unmapping
// IPv4-mapped addresses.
func AddrPort(a net.Addr) netip.AddrPort {
	ua, ok := a.(*net.UDPAddr)
	if !ok || ua == nil {
		return netip.AddrPort{}
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
