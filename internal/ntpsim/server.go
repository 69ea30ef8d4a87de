// Package ntpsim is a simulated ntpd on UDP, for tests, benchmarks and the
// scanner's lab. One Server bound to a wildcard address stands for many
// hosts: it answers each request from the exact address the request was
// sent to, with the behaviour configured for that address ([Host]).
//
// The Mode 7 half answers monlist as ntpd 4.2.6 does (packetisation,
// sequence numbers, more bit, the 600-entry cap, item layout by request
// code and implementation, error replies; byte for byte the captured
// replies given the same client table), as ntpd ≥ 4.2.7p26 with
// "enable mode7" does (INFO_ERR_NODATA), or not at all, as ntpsec and a
// default ntpd 4.2.8 do.
//
// The Mode 6 half answers READVAR (system and peer associations, named
// variables), READSTAT and errors as ntpsec 1.2.2 and ntpd 4.2.8 do (byte
// for byte the captured replies given the same variables, ntpsec's stale
// padding included), with variable sets of each daemon generation
// ([NTPsecVars], [NTPdVars], [LegacyVars]).
//
// [Hostile] adds the misbehaviour of broken and malicious servers. Every
// reply is built with the mode7 and mode6 packages' encoders.
//
// The simulator only ever binds the addresses its caller gives it; tests
// and the lab give it loopback addresses.
package ntpsim

import (
	"bytes"
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

	mu    sync.RWMutex
	hosts map[netip.Addr]*Host
	deflt *Host

	shutdown sync.Once
	closed   atomic.Bool
	started  atomic.Bool
	done     chan struct{} // closed when Serve returns
	serveErr atomic.Pointer[error]

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
// when ctx is done or Close is called; Err reports why Serve stopped.
func Start(ctx context.Context, network, address string, cfg Config) (*Server, error) {
	s, err := Listen(network, address, cfg)
	if err != nil {
		return nil, err
	}
	s.started.Store(true) // before the goroutine, so Close waits for it
	go func() { _ = s.serve(ctx) }()
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

// Close stops the server and releases its sockets. If Serve was started,
// Close waits for it to return. Calling Close again does nothing.
func (s *Server) Close() error {
	err := s.stop()
	if s.started.Load() {
		<-s.done
	}
	return err
}

// stop closes the sockets once, whoever asks first (Close or the context).
func (s *Server) stop() (err error) {
	s.shutdown.Do(func() {
		s.closed.Store(true)
		err = errors.Join(s.conn.Close(), s.other.Close())
	})
	return err
}

// Err returns the error that made Serve stop, or nil if it is running or
// was stopped by Close or its context.
func (s *Server) Err() error {
	if p := s.serveErr.Load(); p != nil {
		return *p
	}
	return nil
}

const (
	readBatch = 32
	// maxReadErrors is how many reads in a row may fail (an ICMP error
	// reported on the socket, an interrupted call) before Serve gives up.
	maxReadErrors = 100
)

// Serve answers requests until ctx is done or Close is called, then
// returns nil; it returns an error only when reading keeps failing.
func (s *Server) Serve(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("ntpsim: Serve called twice")
	}
	return s.serve(ctx)
}

func (s *Server) serve(ctx context.Context) (err error) {
	defer close(s.done)
	defer func() {
		if err != nil {
			s.serveErr.Store(&err)
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = s.stop() })
	defer stop()

	rd := s.conn.NewReader(readBatch)
	msgs := rd.Msgs()
	for i := range msgs {
		msgs[i].Buf = make([]byte, 2048)
		msgs[i].OOB = make([]byte, s.conn.OOBSize())
	}
	out := outbox{conn: s.conn}
	local := s.conn.LocalAddrPort().Addr()
	failures := 0
	for {
		n, err := rd.Read()
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if failures++; failures >= maxReadErrors {
				return fmt.Errorf("ntpsim: read: %w", err)
			}
			continue
		}
		failures = 0
		for i := range n {
			m := &msgs[i]
			s.requests.Add(1)
			dst := s.conn.Dst(m.OOB[:m.NN])
			if !dst.IsValid() {
				dst = local
			}
			before := out.len()
			if h := s.host(dst); h != nil {
				h.handle(m.Buf[:m.N], m.From, dst, &out)
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
	pool        []*outMsg // reused message storage
	used        int
	conn        *batchconn.Conn
	tmpl        []byte // control message template
	tmplAt      int    // where the source address sits in it
	// scratch is reusable room for one reply's datagrams: send copies
	// them, so a handler may build the next reply in it at once.
	scratch [][]byte
}

// outMsg is one reusable outgoing message with its own buffers.
type outMsg struct {
	bufs [1][]byte
	buf  []byte // the payload's copy
	addr net.UDPAddr
	ip   [16]byte
	oob  []byte
}

func (o *outbox) len() int { return len(o.main) + len(o.other) }

func (o *outbox) reset() {
	clear(o.main)
	clear(o.other)
	o.main, o.other = o.main[:0], o.other[:0]
	o.used = 0
}

// srcOOB fills m.oob with control data that makes the datagram leave from
// src: a template marshalled once, with the address patched in.
func (o *outbox) srcOOB(m *outMsg, src netip.Addr) []byte {
	if o.tmpl == nil {
		probe := netip.AddrFrom4([4]byte{0xa5, 0x5a, 0xc3, 0x3c})
		if o.conn.IPv6() {
			probe = netip.AddrFrom16([16]byte{0xa5, 0x5a, 0xc3, 0x3c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
		}
		o.tmpl = o.conn.SrcOOB(probe)
		o.tmplAt = bytes.Index(o.tmpl, probe.AsSlice())
	}
	a := src.AsSlice()
	if o.tmplAt < 0 || (o.conn.IPv6() && len(a) != 16) || (!o.conn.IPv6() && len(a) != 4) {
		return o.conn.SrcOOB(src) // no template: marshal each time
	}
	m.oob = append(m.oob[:0], o.tmpl...)
	copy(m.oob[o.tmplAt:], a)
	return m.oob
}

// send queues a copy of payload to dst, leaving from src, from the
// server's port or from its other port. It reuses the storage of earlier
// batches.
func (o *outbox) send(payload []byte, src netip.Addr, dst netip.AddrPort, otherPort bool) {
	if o.used == len(o.pool) {
		o.pool = append(o.pool, &outMsg{})
	}
	m := o.pool[o.used]
	o.used++
	m.buf = append(m.buf[:0], payload...)
	m.bufs[0] = m.buf
	d := dst.Addr()
	if d.Is4() {
		a := d.As4()
		copy(m.ip[:], a[:])
		m.addr.IP = m.ip[:4]
	} else {
		m.ip = d.As16()
		m.addr.IP = m.ip[:]
	}
	m.addr.Port = int(dst.Port())
	msg := batchconn.Message{Buffers: m.bufs[:], OOB: o.srcOOB(m, src), Addr: &m.addr}
	if otherPort {
		o.other = append(o.other, msg)
	} else {
		o.main = append(o.main, msg)
	}
}
