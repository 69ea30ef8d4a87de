package ntpctl

import (
	"net"
	"net/netip"
	"time"
)

// Config configures a Prober. The zero value works; each field says what
// its zero value means.
type Config struct {
	// Rate caps the requests sent per second, retries included; tokens are
	// taken per batch, with bursts of at most 1% of a second's worth.
	// 0 means no cap. Limiter, when set, takes its place.
	Rate int
	// Limiter, when set, caps this Prober's requests together with those
	// of the other Probers that share it (see RateLimiter); Rate is then
	// ignored.
	Limiter *RateLimiter
	// BatchSize is the most datagrams per sendmmsg/recvmmsg call; 0 means
	// 64.
	BatchSize int
	// Concurrency caps the targets in flight (sent, not yet finished); it
	// bounds the prober's memory (about 1.3 KiB per silent target). A
	// silent target holds its place for Retries × RetryInterval +
	// Timeout, so a Rate of r requests a second needs about r × that in
	// flight: 4096 with the default waits allows about 2000. 0 means 4096.
	Concurrency int
	// Timeout is how long to wait for a first reply after a request; 0
	// means 2 s.
	Timeout time.Duration
	// Quiet is how long to wait for more of a multi-datagram reply after
	// its last datagram; 0 means 500 ms.
	Quiet time.Duration
	// MaxDuration caps how long a target may keep sending once it has
	// answered, so a server that drips datagrams just inside Quiet cannot
	// hold a place in flight; a target cut off by it is finished with
	// what it sent and counted in Stats.OverCap. 0 means 10 s.
	MaxDuration time.Duration
	// Retries is the number of extra requests sent to a silent target;
	// 0 means none.
	Retries int
	// RetryInterval is the wait before a silent target is asked again;
	// 0 means Timeout.
	RetryInterval time.Duration
	// MaxPackets and MaxBytes cap the datagrams and UDP payload octets
	// taken from one target; a target that reaches a cap is finished at
	// once and the rest is dropped. 0 means 256 datagrams and 128 KiB.
	MaxPackets, MaxBytes int
	// Sockets is the number of UDP sockets per address family, each on
	// its own port (the kernel's random ephemeral ports): every target is
	// sent from, and its replies accepted only on, the one its keyed hash
	// picks. A forged reply must guess that port as well as, for Mode 6,
	// the sequence number: 1024 sockets add 10 bits to Mode 6's 16, and
	// are Mode 7's only defence besides the mismatch cap. Requests wait
	// briefly to be sent together per socket, so that sendmmsg still
	// carries several. 0 means 1024; 1 means one port, as zmap uses.
	Sockets int
	// MaxMismatched ends a target as StatusSpoofed once more than this
	// many datagrams from its address answered another request or
	// arrived on another socket than its request left from: a genuine
	// server sends none, a forger sweeping sequence numbers (65,536 for
	// Mode 6) or ports sends many. 0 means 8; a negative value means
	// none is tolerated.
	MaxMismatched int
	// Senders is the number of sending goroutines per address family,
	// each serving a share of the sockets: sendmmsg calls then run on that
	// many cores at once, while the run loop prepares the next batches
	// (under a Rate cap a sender has one batch out at a time, so that
	// requests leave when their tokens say). 0 means 1; about one per
	// core is the most that helps.
	Senders int
	// ReadBuffer and WriteBuffer size the sockets' kernel buffers; 0
	// means 4 MiB.
	ReadBuffer, WriteBuffer int
	// LocalAddr4 and LocalAddr6 are the local addresses to send from; the
	// zero Addr means any.
	LocalAddr4, LocalAddr6 netip.Addr
	// Port is used for targets whose port is 0; 0 means 123.
	Port uint16
	// Blocklist decides which targets may be probed; nil means the zero
	// Blocklist (IANA special-purpose ranges and loopback blocked).
	Blocklist *Blocklist
	// ListenUDP opens the sockets, Sockets "udp4" and Sockets "udp6"
	// ones per prober when targets of that family appear; nil means
	// net.ListenUDP on the local address. Tests use it to open sockets in
	// a network namespace.
	ListenUDP func(network string, laddr *net.UDPAddr) (*net.UDPConn, error)
	// Now is the clock for timeouts and RTTs; nil means time.Now.
	Now func() time.Time
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.BatchSize, 64)
	def(&c.Sockets, 1024)
	def(&c.Senders, 1)
	c.Senders = min(c.Senders, c.Sockets)
	def(&c.Concurrency, 4096)
	def(&c.MaxPackets, 256)
	def(&c.MaxBytes, 128<<10)
	def(&c.ReadBuffer, 4<<20)
	def(&c.WriteBuffer, 4<<20)
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Quiet <= 0 {
		c.Quiet = 500 * time.Millisecond
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 10 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = c.Timeout
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	switch {
	case c.MaxMismatched == 0:
		c.MaxMismatched = 8
	case c.MaxMismatched < 0:
		c.MaxMismatched = 0
	}
	if c.Port == 0 {
		c.Port = 123
	}
	if c.Blocklist == nil {
		c.Blocklist = &Blocklist{}
	}
	if c.ListenUDP == nil {
		c.ListenUDP = net.ListenUDP
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Limiter == nil {
		c.Limiter = NewRateLimiter(float64(c.Rate), c.BatchSize)
	}
	return c
}

// rateCapped reports whether requests are rate limited.
func (c *Config) rateCapped() bool { return c.Limiter.limited() }
