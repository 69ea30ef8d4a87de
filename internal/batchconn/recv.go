package batchconn

import "net/netip"

// RecvMsg is one datagram read by ReadBatchFrom.
type RecvMsg struct {
	Buf  []byte         // where the payload goes; its length is the most read
	OOB  []byte         // where control data goes (for Dst); may be nil
	N    int            // payload octets read into Buf
	Size int            // the datagram's full length: more than N when it did not fit in Buf
	NN   int            // control octets read
	From netip.AddrPort // the sender, IPv4 unmapped; the zero value when the kernel gave no usable address
	// ICMP, when set, says that this message is no datagram but an ICMP
	// error the kernel queued on the socket (IP_RECVERR, Poller only):
	// From is then the destination the failed datagram was sent to, and
	// N, Size and Buf mean nothing.
	ICMP ICMPError
}

// ICMPError is an ICMP (or ICMPv6) error about a datagram a socket sent.
type ICMPError struct {
	Set  bool  // an ICMP error, not a datagram
	V6   bool  // ICMPv6
	Type uint8 // ICMP type: 3 destination unreachable (ICMPv6 1), 11 time exceeded (ICMPv6 3), …
	Code uint8 // ICMP code: 3 port unreachable (ICMPv6 4), 1 host unreachable (ICMPv6 3), 13 prohibited (ICMPv6 1), …
}

// Reader reads batches of datagrams with their sources into preallocated
// messages. On Linux (64-bit) it calls recvmmsg itself and allocates
// nothing per datagram; elsewhere it uses x/net's ReadBatch, which
// allocates the source address of each message.
type Reader struct {
	c    *Conn
	msgs []RecvMsg
	sys  sysReader
}

// NewReader returns a Reader of c for up to n datagrams per call.
func (c *Conn) NewReader(n int) *Reader {
	r := &Reader{c: c, msgs: make([]RecvMsg, n)}
	r.sys.init(c, n)
	return r
}

// Msgs returns the reader's messages: fill in Buf (and OOB) once; after
// Read, the first n of them hold datagrams.
func (r *Reader) Msgs() []RecvMsg { return r.msgs }

// Read blocks until at least one datagram arrives and reads as many as
// are ready, up to len(Msgs()).
func (r *Reader) Read() (int, error) { return r.sys.read(r.c, r.msgs) }

// portable is the x/net path.
type portable struct{ ms []Message }

func (p *portable) read(c *Conn, msgs []RecvMsg) (int, error) {
	if len(p.ms) != len(msgs) {
		p.ms = make([]Message, len(msgs))
	}
	for i := range msgs {
		if len(p.ms[i].Buffers) != 1 {
			p.ms[i].Buffers = make([][]byte, 1)
		}
		p.ms[i].Buffers[0] = msgs[i].Buf
		p.ms[i].OOB = msgs[i].OOB
	}
	n, err := c.ReadBatch(p.ms)
	for i := 0; i < n; i++ {
		msgs[i].N, msgs[i].NN, msgs[i].From = p.ms[i].N, p.ms[i].NN, AddrPort(p.ms[i].Addr)
		msgs[i].Size = msgs[i].N // x/net does not report truncation
		p.ms[i].Addr = nil
	}
	return n, err
}
