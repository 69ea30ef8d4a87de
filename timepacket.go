package ntpctl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ntpctl/ntpctl/mode6"
)

// The NTP packet of modes 1 to 5 (RFC 5905 §7.3): the 48-octet header a
// client sends in mode 3, as ntpdate -q and sntp do, and a server answers
// in mode 4. The scanner's discovery pass uses it to find NTP servers
// before it sends them control queries.

// TimePacketLen is the length of the NTP packet header, extension fields
// and MAC aside.
const TimePacketLen = 48

// ErrTimePacket reports a datagram that is not an NTP time packet: shorter
// than 48 octets, or of mode 0, 6 or 7.
var ErrTimePacket = errors.New("ntpctl: not an NTP time packet")

// TimePacket is an NTP packet header (RFC 5905 figure 8).
type TimePacket struct {
	Leap      uint8 // leap indicator: 0 none, 1 +1 s, 2 -1 s, 3 unsynchronised
	Version   uint8
	Mode      uint8 // 3 client, 4 server, …
	Stratum   uint8 // 0 unspecified or kiss-o'-death, 1 primary, 2–15 secondary, 16 unsynchronised
	Poll      int8  // log2 seconds between messages
	Precision int8  // log2 seconds of the clock's precision
	// RootDelay and RootDispersion are NTP short formats (16.16 seconds).
	RootDelay, RootDispersion uint32
	// RefID is the reference identifier: a kiss code or clock source
	// (stratum 0 and 1: four ASCII characters), an IPv4 address or the
	// first octets of a hash of an IPv6 address (stratum 2 and up).
	RefID                                [4]byte
	Reference, Origin, Receive, Transmit mode6.Timestamp
}

// DecodeTimePacket decodes the header of an NTP time packet; octets past
// the 48 (extension fields, a MAC) are ignored. It keeps nothing of b.
func DecodeTimePacket(b []byte) (TimePacket, error) {
	var p TimePacket
	if len(b) < TimePacketLen {
		return p, fmt.Errorf("%w: %d octets", ErrTimePacket, len(b))
	}
	p.Leap, p.Version, p.Mode = b[0]>>6, b[0]>>3&7, b[0]&7
	if p.Mode == 0 || p.Mode >= 6 {
		return p, fmt.Errorf("%w: mode %d", ErrTimePacket, p.Mode)
	}
	p.Stratum, p.Poll, p.Precision = b[1], int8(b[2]), int8(b[3])
	p.RootDelay = binary.BigEndian.Uint32(b[4:])
	p.RootDispersion = binary.BigEndian.Uint32(b[8:])
	copy(p.RefID[:], b[12:16])
	p.Reference = mode6.Timestamp(binary.BigEndian.Uint64(b[16:]))
	p.Origin = mode6.Timestamp(binary.BigEndian.Uint64(b[24:]))
	p.Receive = mode6.Timestamp(binary.BigEndian.Uint64(b[32:]))
	p.Transmit = mode6.Timestamp(binary.BigEndian.Uint64(b[40:]))
	return p, nil
}

// AppendBinary appends the 48-octet header of p.
func (p *TimePacket) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, (p.Leap&3)<<6|(p.Version&7)<<3|p.Mode&7, p.Stratum, byte(p.Poll), byte(p.Precision))
	b = binary.BigEndian.AppendUint32(b, p.RootDelay)
	b = binary.BigEndian.AppendUint32(b, p.RootDispersion)
	b = append(b, p.RefID[:]...)
	for _, t := range [...]mode6.Timestamp{p.Reference, p.Origin, p.Receive, p.Transmit} {
		b = binary.BigEndian.AppendUint64(b, uint64(t))
	}
	return b, nil
}

// RootDelayDuration and RootDispersionDuration return the root delay and
// dispersion as durations.
func (p *TimePacket) RootDelayDuration() time.Duration { return shortDuration(p.RootDelay) }

// RootDispersionDuration returns the root dispersion as a duration.
func (p *TimePacket) RootDispersionDuration() time.Duration { return shortDuration(p.RootDispersion) }

func shortDuration(v uint32) time.Duration {
	return time.Duration(uint64(v) * uint64(time.Second) >> 16)
}

// KissCode returns the kiss-o'-death code of a stratum-0 reply (RFC 5905
// §7.4: "DENY", "RSTR", "RATE", …) and whether p is one.
func (p *TimePacket) KissCode() (string, bool) {
	if p.Stratum != 0 {
		return "", false
	}
	return refIDText(p.RefID), true
}

// RefIDString returns the reference identifier as ntpq prints it: the
// four characters of a stratum 0 or 1 server (a kiss code, a clock
// source such as "GPS" or "LOCL"), an IPv4 address from stratum 2 on.
func (p *TimePacket) RefIDString() string {
	if p.Stratum <= 1 {
		return refIDText(p.RefID)
	}
	return netip.AddrFrom4(p.RefID).String()
}

// refIDText is the printable ASCII of an identifier, up to its first NUL;
// other octets become '?'.
func refIDText(id [4]byte) string {
	var b []byte
	for _, c := range id {
		if c == 0 {
			break
		}
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}

// ErrKissOfDeath is the error of a mode 3 probe answered with a
// kiss-o'-death packet of access control (stratum 0, DENY, RSTR or
// RATE); errors.As gives the KissError with its code.
var ErrKissOfDeath = errors.New("ntpctl: kiss-o'-death")

// KissError is a kiss-o'-death reply's code.
type KissError string

func (e KissError) Error() string { return "ntpctl: kiss-o'-death " + string(e) }

// Is makes errors.Is(err, ErrKissOfDeath) true.
func (e KissError) Is(target error) bool { return target == ErrKissOfDeath }

// ClientProbe sends a mode 3 (client) request, as `ntpdate -q` and sntp
// do, the cheap question that finds NTP servers: 48 octets, version 4,
// the transmit timestamp the current second with the target's sequence
// number in its fraction. A reply matches when it is mode 4 and its
// origin timestamp carries that fraction back (RFC 5905's check against
// bogus and replayed packets): a forger who cannot see the request must
// guess 16 keyed bits, as for a Mode 6 sequence number.
type ClientProbe struct {
	// Version is the request's version number; 0 means 4.
	Version uint8
	// Now is the clock for the transmit timestamp's seconds; nil means
	// time.Now.
	Now func() time.Time
}

// Client returns the mode 3 probe with its defaults.
func Client() *ClientProbe { return &ClientProbe{} }

// seqFraction is the transmit timestamp's fraction for sequence number
// seq: the number and its complement.
func seqFraction(seq uint16) uint32 { return uint32(seq)<<16 | uint32(^seq) }

// AppendRequest implements Probe.
func (p *ClientProbe) AppendRequest(b []byte, _ netip.AddrPort, seq uint16) ([]byte, error) {
	v := p.Version
	if v == 0 {
		v = 4
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	t := mode6.TimestampOf(now())
	req := TimePacket{Version: v, Mode: 3, Transmit: t&^0xffffffff | mode6.Timestamp(seqFraction(seq))}
	return req.AppendBinary(b)
}

// NewAssembler implements Probe.
func (p *ClientProbe) NewAssembler() Assembler[TimePacket] { return &clientAssembler{} }

type clientAssembler struct {
	frac  uint32
	got   bool
	reply TimePacket
	tally Tally
	err   error
}

func (a *clientAssembler) Reset(_ netip.AddrPort, seq uint16) {
	*a = clientAssembler{frac: seqFraction(seq)}
}

func (a *clientAssembler) Add(b []byte) (matched, done bool) {
	p, err := DecodeTimePacket(b)
	switch {
	case err != nil:
		if len(b) > 0 && b[0]&7 >= 6 {
			a.tally.Mismatched++ // a control reply: another request's
			return false, a.got
		}
		a.tally.Malformed++
		a.err = err
		return true, a.got
	case p.Mode != 4 || p.Origin.Fraction() != a.frac:
		a.tally.Mismatched++ // not an answer to this request: stale, or forged
		return false, a.got
	case a.got:
		a.tally.Duplicates++
		return true, true
	}
	a.got, a.reply, a.err = true, p, nil
	a.tally.Accepted++
	return true, true
}

func (a *clientAssembler) Tally() Tally { return a.tally }

func (a *clientAssembler) Result() (TimePacket, Status, error) {
	switch {
	case !a.got:
		return a.reply, StatusProtocolError, a.err
	case a.reply.Stratum == 0:
		// Of the kiss codes, those of access control refuse service
		// (RFC 5905 §7.4); the others (INIT: not synchronised yet,
		// STEP, …) are a server's state, an answer all the same.
		switch code, _ := a.reply.KissCode(); code {
		case "DENY", "RSTR", "RATE":
			return a.reply, StatusServerError, KissError(code)
		}
	}
	return a.reply, StatusOK, nil
}
