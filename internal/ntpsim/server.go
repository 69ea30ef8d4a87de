// Package ntpsim is a simulated ntpd on UDP, for tests, benchmarks and the
// scanner's lab. One Server bound to a wildcard address stands for many
// hosts: it answers each request from the exact address the request was
// sent to, with the behaviour configured for that address.
//
// The Mode 7 half answers monlist as ntpd 4.2.6 does (packetisation,
// sequence numbers, more bit, the 600-entry cap, item layout by request
// code and implementation, error replies; byte for byte the captured
// replies given the same client table), as ntpd ≥ 4.2.7p26 with
// "enable mode7" does (INFO_ERR_NODATA), or not at all, as ntpsec and a
// default ntpd 4.2.8 do. [Hostile] adds the misbehaviour of broken and
// malicious servers. Every reply is built with the mode7 package's
// encoders.
//
// The simulator only ever binds the addresses its caller gives it; tests
// and the lab give it loopback addresses.
package ntpsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/ntpctl/ntpctl/internal/batchconn"
)

// Config says which host answers at which address.
type Config struct {
	// Hosts maps the address a request was sent to to the host simulated
	// there.
	Hosts map[netip.Addr]*Host
	// Default answers at addresses that are not in Hosts; nil means those
	// addresses are silent.
	Default *Host
}

// Stats counts what a Server did.
type Stats struct {
	Requests uint64 // datagrams received
	Replies  uint64 // datagrams sent
	Ignored  uint64 // datagrams that got no answer (silent host, dropped request)
	Errors   uint64 // failed writes
}

// Server is a simulated ntpd listening on one UDP socket.
type Server struct {
	conn  *batchconn.Conn
	other *batchconn.Conn // for replies from another port

	mu      sync.RWMutex
	hosts   map[netip.Addr]*Host
	deflt   *Host
	closed  atomic.Bool
	done    chan struct{}
	serving atomic.Bool

	requests, replies, ignored, errs atomic.Uint64
}

// Listen binds a simulated server to address on network ("udp4" or
// "udp6"), for example "0.0.0.0:0" to answer for every 127.x.y.z address
// on one ephemeral port. Call Serve (or use Start) to answer requests.
func Listen(network, address string, cfg Config) (*Server, error) {
	if network != "udp4" && network != "udp6" {
		return nil, fmt.Errorf("ntpsim: network %q: want udp4 or udp6", network)
	}
	ua, err := net.ResolveUDPAddr(network, address)
	if err != nil {
		return nil, fmt.Errorf("ntpsim: %w", err)
	}
	c, err := net.ListenUDP(network, ua)
	if err != nil {
		return nil, fmt.Errorf("ntpsim: %w", err)
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	oa := &net.UDPAddr{IP: ua.IP}
	oc, err := net.ListenUDP(network, oa)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("ntpsim: %w", err)
	}
	s := &Server{
		conn:  batchconn.New(c),
		other: batchconn.New(oc),
		hosts: make(map[netip.Addr]*Host, len(cfg.Hosts)),
		deflt: cfg.Default,
		done:  make(chan struct{}),
	}
	for a, h := range cfg.Hosts {
		s.hosts[a.Unmap()] = h
	}
	if err := s.conn.EnableDst(); err != nil {
		s.Close()
		return nil, fmt.Errorf("ntpsim: destination addresses: %w", err)
	}
	return s, nil
}

// Start is Listen followed by Serve in a new goroutine. The server stops
// when ctx is done or Close is called.
func Start(ctx context.Context, network, address string, cfg Config) (*Server, error) {
	s, err := Listen(network, address, cfg)
	if err != nil {
		return nil, err
	}
	go s.Serve(ctx) //nolint:errcheck // the error is the close
	return s, nil
}

// Addr returns the address and port the server is bound to.
func (s *Server) Addr() netip.AddrPort { return s.conn.LocalAddrPort() }

// Port returns the UDP port the server answers on.
func (s *Server) Port() uint16 { return s.Addr().Port() }

// SetHost makes h answer at addr (nil removes it). It is safe to call
// while the server runs.
func (s *Server) SetHost(addr netip.Addr, h *Host) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		delete(s.hosts, addr.Unmap())
		return
	}
	s.hosts[addr.Unmap()] = h
}

func (s *Server) host(addr netip.Addr) *Host {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if h, ok := s.hosts[addr]; ok {
		return h
	}
	return s.deflt
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	return Stats{
		Requests: s.requests.Load(),
		Replies:  s.replies.Load(),
		Ignored:  s.ignored.Load(),
		Errors:   s.errs.Load(),
	}
}

// Close stops the server and releases its sockets. It waits for Serve to
// return if it is running.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := errors.Join(s.conn.Close(), s.other.Close())
	if s.serving.Load() {
		<-s.done
	}
	return err
}

const readBatch = 32

// Serve answers requests until ctx is done or Close is called. It returns
// nil after a Close and the read error otherwise.
func (s *Server) Serve(ctx context.Context) error {
	if s.serving.Swap(true) {
		return errors.New("ntpsim: Serve called twice")
	}
	defer close(s.done)
	stop := context.AfterFunc(ctx, func() { _ = s.conn.Close(); _ = s.other.Close(); s.closed.Store(true) })
	defer stop()

	msgs := make([]batchconn.Message, readBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 2048)}
		msgs[i].OOB = make([]byte, s.conn.OOBSize())
	}
	out := outbox{conn: s.conn}
	local := s.conn.LocalAddrPort().Addr()
	for {
		n, err := s.conn.ReadBatch(msgs)
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("ntpsim: read: %w", err)
		}
		for i := range n {
			m := &msgs[i]
			s.requests.Add(1)
			src := batchconn.AddrPort(m.Addr)
			dst := s.conn.Dst(m.OOB[:m.NN])
			if !dst.IsValid() {
				dst = local
			}
			before := out.len()
			if h := s.host(dst); h != nil {
				h.handle(m.Buffers[0][:m.N], src, dst, &out)
			}
			if out.len() == before {
				s.ignored.Add(1)
			}
		}
		s.flush(&out)
	}
}

// flush sends what the handlers queued.
func (s *Server) flush(o *outbox) {
	for _, q := range []struct {
		c *batchconn.Conn
		m []batchconn.Message
	}{{s.conn, o.main}, {s.other, o.other}} {
		if len(q.m) == 0 {
			continue
		}
		n, err := q.c.WriteBatch(q.m)
		s.replies.Add(uint64(n))
		if err != nil {
			s.errs.Add(uint64(len(q.m) - n))
		}
	}
	o.reset()
}

// outbox collects the datagrams the handlers want sent.
type outbox struct {
	main, other []batchconn.Message
	oob         map[netip.Addr][]byte
	conn        *batchconn.Conn
}

func (o *outbox) len() int { return len(o.main) + len(o.other) }

func (o *outbox) reset() {
	clear(o.main)
	clear(o.other)
	o.main, o.other = o.main[:0], o.other[:0]
}

// send queues payload to dst, leaving from src, from the server's port or
// from its other port.
func (o *outbox) send(payload []byte, src netip.Addr, dst netip.AddrPort, otherPort bool) {
	if o.oob == nil {
		o.oob = map[netip.Addr][]byte{}
	}
	oob, ok := o.oob[src]
	if !ok {
		oob = o.conn.SrcOOB(src)
		if len(o.oob) < 1<<16 {
			o.oob[src] = oob
		}
	}
	m := batchconn.Message{
		Buffers: [][]byte{payload},
		OOB:     oob,
		Addr:    net.UDPAddrFromAddrPort(dst),
	}
	if otherPort {
		o.other = append(o.other, m)
	} else {
		o.main = append(o.main, m)
	}
}
