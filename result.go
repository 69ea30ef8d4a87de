package ntpctl

import (
	"errors"
	"net/netip"
	"time"
)

// Errors of a Prober, one per outcome that has no error of its own, for
// errors.Is.
var (
	// ErrNoAnswer is the error of a StatusNoAnswer result.
	ErrNoAnswer = errors.New("ntpctl: no answer")
	// ErrBlocked is the error of a StatusBlocked result, wrapped with the
	// reason.
	ErrBlocked = errors.New("ntpctl: target blocked")
	// ErrRepeated is the error of a StatusRepeated result.
	ErrRepeated = errors.New("ntpctl: target already in flight")
	// ErrSpoofed is the error of a StatusSpoofed result.
	ErrSpoofed = errors.New("ntpctl: datagrams from the target answered other requests or came to another port: spoofing suspected")
	// ErrClosed is the error of a StatusClosed result, wrapped with the
	// ICMP type and code.
	ErrClosed = errors.New("ntpctl: port unreachable (ICMP): no NTP service there")
	// ErrUnreachable is the error of a StatusUnreachable result.
	ErrUnreachable = errors.New("ntpctl: host or network unreachable (ICMP)")
	// ErrProhibited is the error of a StatusProhibited result.
	ErrProhibited = errors.New("ntpctl: communication administratively prohibited (ICMP)")
	// ErrAborted marks the results of targets cut short by Abort, joined
	// to the error of their status; Run returns it after Abort.
	ErrAborted = errors.New("ntpctl: probing aborted")
	// ErrStepNotSent joins the error of a result whose exchange of
	// several requests (a Stepper's) ended before its next request went
	// out: the run stopped, or the request could not be built.
	ErrStepNotSent = errors.New("ntpctl: the exchange ended before its next request went out")
	// ErrRunOnce is returned by a second call of Run on one Prober,
	// while the first runs or after it returned: a Prober runs once.
	ErrRunOnce = errors.New("ntpctl: a Prober runs only once")
)

// Status is the outcome for one target. Each has one name, used alike by
// String, JSON, the error of the status and the counters of Stats.
type Status uint8

// Outcomes. The zero value is reserved, so a result without a status is
// visible.
const (
	_ Status = iota
	// StatusOK ("ok"): a complete reply.
	StatusOK
	// StatusNoAnswer ("no_answer", ErrNoAnswer): nothing came back from
	// the target's address and port, after all retries.
	StatusNoAnswer
	// StatusPartial ("partial"): some of a multi-datagram reply, then
	// silence.
	StatusPartial
	// StatusProtocolError ("protocol_error"): the target answered, but
	// nothing it sent was a usable reply.
	StatusProtocolError
	// StatusServerError ("server_error"): an error reply, such as Mode 7
	// INFO_ERR_NODATA ("monlist disabled") or a Mode 6 error code.
	StatusServerError
	// StatusSendError ("send_error"): the request could not be sent.
	StatusSendError
	// StatusBlocked ("blocked", ErrBlocked): the blocklist forbids the
	// target; nothing was sent.
	StatusBlocked
	// StatusRepeated ("repeated", ErrRepeated): the same target was
	// already in flight, so this repeat was not sent (its replies would be
	// indistinguishable); the first one's result carries the answer.
	StatusRepeated
	// StatusSpoofed ("spoofed", ErrSpoofed): more than
	// Config.MaxMismatched datagrams from the target's address answered
	// another request (another sequence number, opcode, request code or
	// implementation) or arrived on another of the prober's sockets than
	// its request left from: what a forger who does not know the request
	// sends, sweeping sequence numbers or ports. Whatever came back is
	// kept as evidence, and the target is not a finding.
	StatusSpoofed
	// StatusClosed ("closed", ErrClosed): an ICMP port unreachable came
	// back: the host is up and nothing listens on the port, nmap's
	// "closed" (silence is its "open|filtered").
	StatusClosed
	// StatusUnreachable ("unreachable", ErrUnreachable): an ICMP host or
	// network unreachable (or time exceeded) came back from a router.
	StatusUnreachable
	// StatusProhibited ("prohibited", ErrProhibited): an ICMP
	// administratively prohibited came back: a firewall refuses.
	StatusProhibited
	numStatus
)

var statusNames = [numStatus]string{"", "ok", "no_answer", "partial", "protocol_error", "server_error", "send_error",
	"blocked", "repeated", "spoofed", "closed", "unreachable", "prohibited"}

// Statuses returns every status, in order.
func Statuses() []Status {
	out := make([]Status, 0, numStatus-1)
	for s := Status(1); s < numStatus; s++ {
		out = append(out, s)
	}
	return out
}

// String returns the status's name, such as "server_error", or "unknown".
func (s Status) String() string {
	if s.valid() {
		return statusNames[s]
	}
	return "unknown"
}

func (s Status) valid() bool { return s > 0 && s < numStatus }

// Answered reports whether the status means that the target sent
// something back (ok, partial, protocol_error, server_error).
func (s Status) Answered() bool {
	return s == StatusOK || s == StatusPartial || s == StatusProtocolError || s == StatusServerError
}

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, errors.New("ntpctl: unknown status")
	}
	return []byte(statusNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it takes the names
// String returns.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if i > 0 && n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	return errors.New("ntpctl: unknown status " + string(b))
}

// Outcome is what happened to one target, whatever the probe: the part
// of a Result that every probe shares.
type Outcome struct {
	// Target is the address and port probed; replies were accepted only
	// from there.
	Target netip.AddrPort
	// Status is the outcome.
	Status Status
	// Err explains a status other than StatusOK.
	Err error
	// Time is when the first request was sent (for a blocked or repeated
	// target, when it was taken from the sequence).
	Time time.Time
	// Attempts counts requests sent.
	Attempts int
	// RTT is the time from the last request sent before the first reply
	// datagram to that datagram; 0 without a reply.
	RTT time.Duration
	// Packets counts the reply datagrams: those from the target's address
	// and port, on the socket its request left from, that did not answer
	// another request (decodable or not: every one is the amplification
	// evidence). It equals the Packets of the probe's reassembly counts
	// (mode7.ReassemblyStats, mode6.ReassemblyStats).
	Packets int
	// Bytes is the UDP payload octets of those datagrams, as the kernel
	// reported them: a datagram longer than the receive buffer counts in
	// full, where the reassembler saw only what fit.
	Bytes int
	// RequestBytes is the UDP payload size of one request; the requests
	// sent total Attempts × RequestBytes octets.
	RequestBytes int
}

// Answered reports whether the target sent at least one reply datagram.
func (o *Outcome) Answered() bool { return o.Packets > 0 }

// Amplification returns Bytes ÷ RequestBytes, the bandwidth
// amplification factor of the UDP payloads, or 0.
func (o *Outcome) Amplification() float64 {
	if o.RequestBytes == 0 {
		return 0
	}
	return float64(o.Bytes) / float64(o.RequestBytes)
}

// Result is the outcome of probing one target, with the value the probe
// put together: a mode7.Reply for MonList, a mode6.Reply for ReadVar.
type Result[R any] struct {
	Outcome
	// Value is what the probe's assembler collected: for a target that
	// answered, whatever it sent; the zero value otherwise.
	Value R
}
