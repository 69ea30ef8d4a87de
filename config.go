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
	// 0 means no cap.
	Rate int
	// BatchSize is the most datagrams per sendmmsg/recvmmsg call; 0 means
	// 64.
	BatchSize int
	// Concurrency caps the targets in flight (sent, not yet finished); it
	// bounds the prober's memory. 0 means 4096.
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
	// Senders is the number of sockets, each with its own sending
	// goroutine, per address family: sendmmsg calls then run on that many
	// cores at once, while the run loop prepares the next batches (under
	// a Rate cap a socket has one batch out at a time, so that requests
	// leave when their tokens say). Each target is assigned one of them by
	// its keyed hash, and its replies count only when they arrive there.
	// 0 means 1; about one per core is the most that helps.
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
	// ListenUDP opens the sockets, Senders "udp4" and Senders "udp6"
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
	def(&c.Senders, 1)
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
	return c
}
