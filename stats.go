package ntpctl

import (
	"math"
	"sync/atomic"
	"time"
)

// Stats are a Prober's counters; they may be read while it runs. The
// counts of datagrams by kind (Accepted … Mismatched) are added when
// their target finishes. Their JSON names are the snake_case of the
// field names (see the repository's JSON Schema).
type Stats struct {
	Targets    uint64 `json:"targets"`     // taken from the sequence
	Sent       uint64 `json:"sent"`        // request datagrams the kernel took
	SendErrors uint64 `json:"send_errors"` // requests the kernel refused
	Retried    uint64 `json:"retried"`     // requests that were retries
	// Steps counts the follow-up requests of exchanges of more than one
	// request (the pages of an MRU list after its nonce), retries aside.
	Steps       uint64       `json:"steps,omitempty"`
	Received    uint64       `json:"received"`    // datagrams read from the sockets
	Matched     uint64       `json:"matched"`     // reply datagrams: the sum of the results' Packets
	Accepted    uint64       `json:"accepted"`    // of those, kept in a reply
	Duplicates  uint64       `json:"duplicates"`  // of those, repeating part of a reply
	Malformed   uint64       `json:"malformed"`   // of those, not decodable
	Dropped     uint64       `json:"dropped"`     // of those, contradicting a reply or beyond an assembler's caps
	Mismatched  uint64       `json:"mismatched"`  // from a target in flight, answering another request: stale or forged
	Misdirected uint64       `json:"misdirected"` // from a target in flight, on another socket than its request left from: forged
	ICMP        uint64       `json:"icmp"`        // ICMP errors about requests (port or host unreachable, prohibited)
	Unsolicited uint64       `json:"unsolicited"` // from an address and port with nothing in flight on that socket
	Late        uint64       `json:"late"`        // from a target that had finished
	RecvErrors  uint64       `json:"recv_errors"` // socket read errors (ICMP errors reported on the socket, say)
	OverCap     uint64       `json:"over_cap"`    // targets finished by MaxPackets, MaxBytes or MaxDuration
	InFlight    uint64       `json:"in_flight"`   // targets sent to and not yet finished
	Finished    uint64       `json:"finished"`    // results: the sum of Statuses
	Statuses    StatusCounts `json:"statuses"`    // results by status
	// SendRate is the requests per second over the scan's sending time,
	// from the first request the kernel took to the last (while Run
	// sends, to the latest one), retries included. After a scan at
	// Config.Rate it is close to that rate, however long the scan then
	// waited for replies.
	SendRate float64 `json:"send_rate"`
	// CurrentSendRate is the requests per second over the last second or
	// so, for a progress display; it falls to 0 when sending stops.
	CurrentSendRate float64 `json:"current_send_rate"`
}

// StatusCounts counts results by status; the JSON names are the
// statuses' names.
type StatusCounts struct {
	OK            uint64 `json:"ok"`
	NoAnswer      uint64 `json:"no_answer"`
	Partial       uint64 `json:"partial"`
	ProtocolError uint64 `json:"protocol_error"`
	ServerError   uint64 `json:"server_error"`
	SendError     uint64 `json:"send_error"`
	Blocked       uint64 `json:"blocked"`
	Repeated      uint64 `json:"repeated"`
	Spoofed       uint64 `json:"spoofed"`
	Closed        uint64 `json:"closed"`
	Unreachable   uint64 `json:"unreachable"`
	Prohibited    uint64 `json:"prohibited"`
}

// Add adds the counters of o to s: the statistics of the shards of one
// scan, scanned on several machines, make the scan's. The rates are
// added too, which is right for shards that sent at the same time; for
// shards that ran one after another, compute SendRate again over the
// scan's whole time.
func (s *Stats) Add(o *Stats) {
	for _, f := range [...]struct{ dst, src *uint64 }{
		{&s.Targets, &o.Targets}, {&s.Sent, &o.Sent}, {&s.SendErrors, &o.SendErrors}, {&s.Retried, &o.Retried}, {&s.Steps, &o.Steps},
		{&s.Received, &o.Received}, {&s.Matched, &o.Matched}, {&s.Accepted, &o.Accepted}, {&s.Duplicates, &o.Duplicates},
		{&s.Malformed, &o.Malformed}, {&s.Dropped, &o.Dropped}, {&s.Mismatched, &o.Mismatched}, {&s.Misdirected, &o.Misdirected},
		{&s.ICMP, &o.ICMP}, {&s.Unsolicited, &o.Unsolicited}, {&s.Late, &o.Late}, {&s.RecvErrors, &o.RecvErrors},
		{&s.OverCap, &o.OverCap}, {&s.InFlight, &o.InFlight}, {&s.Finished, &o.Finished},
	} {
		*f.dst += *f.src
	}
	for st := Status(0); st < numStatus; st++ {
		if p := s.Statuses.field(st); p != nil {
			*p += o.Statuses.Get(st)
		}
	}
	s.SendRate += o.SendRate
	s.CurrentSendRate += o.CurrentSendRate
}

// Get returns the count of status s.
func (c *StatusCounts) Get(s Status) uint64 {
	if p := c.field(s); p != nil {
		return *p
	}
	return 0
}

func (c *StatusCounts) field(s Status) *uint64 {
	switch s {
	case StatusOK:
		return &c.OK
	case StatusNoAnswer:
		return &c.NoAnswer
	case StatusPartial:
		return &c.Partial
	case StatusProtocolError:
		return &c.ProtocolError
	case StatusServerError:
		return &c.ServerError
	case StatusSendError:
		return &c.SendError
	case StatusBlocked:
		return &c.Blocked
	case StatusRepeated:
		return &c.Repeated
	case StatusSpoofed:
		return &c.Spoofed
	case StatusClosed:
		return &c.Closed
	case StatusUnreachable:
		return &c.Unreachable
	case StatusProhibited:
		return &c.Prohibited
	}
	return nil
}

// counters are the Stats as the prober keeps them, updated from the run
// loop, the receive goroutines and the sending goroutines.
type counters struct {
	targets, sent, sendErrors, retried, steps, received, matched, accepted, duplicates, malformed, dropped,
	mismatched, misdirected, icmp, unsolicited, late, recvErrors, overCap, inFlight atomic.Uint64
	statuses [numStatus]atomic.Uint64
	rate     atomic.Uint64 // CurrentSendRate, float64 bits
	// started is the UnixNano time of the start of Run; firstSent and
	// lastSent those of the first and the latest batch the kernel took,
	// firstN the requests of the first: SendRate's span.
	started, firstSent, lastSent atomic.Int64
	firstN                       atomic.Uint64
}

// markSent records a batch of n requests the kernel took at now (UnixNano).
func (c *counters) markSent(n int, now int64) {
	if n <= 0 {
		return
	}
	// Several senders stamp their batches: the span is from the earliest
	// to the latest, whatever order the stamps arrive in.
	for {
		first := c.firstSent.Load()
		if first != 0 && first <= now {
			break
		}
		if c.firstSent.CompareAndSwap(first, now) {
			c.firstN.Store(uint64(n))
			break
		}
	}
	for {
		last := c.lastSent.Load()
		if last >= now || c.lastSent.CompareAndSwap(last, now) {
			break
		}
	}
}

// sendRate is the rate of the sent requests from the first batch to the
// last: the requests after the first batch over the time between them
// (so that the socket setup before the first request does not count).
// With one batch only, the span starts at the start of Run. 0 before
// any request.
func (c *counters) sendRate(sent uint64) float64 {
	first, last := c.firstSent.Load(), c.lastSent.Load()
	if sent == 0 || first == 0 {
		return 0
	}
	if n := c.firstN.Load(); last > first && sent > n {
		return float64(sent-n) / time.Duration(last-first).Seconds()
	}
	if start := c.started.Load(); start != 0 && last > start {
		return float64(sent) / time.Duration(last-start).Seconds()
	}
	return 0
}

// finished counts one result of status s.
func (c *counters) finished(s Status) {
	if s.valid() {
		c.statuses[s].Add(1)
	}
}

// tally adds a finished target's datagram counts.
func (c *counters) tally(packets int, t Tally) {
	c.matched.Add(uint64(packets))
	c.accepted.Add(uint64(t.Accepted))
	c.duplicates.Add(uint64(t.Duplicates))
	c.malformed.Add(uint64(t.Malformed))
	c.dropped.Add(uint64(t.Dropped))
	c.mismatched.Add(uint64(t.Mismatched))
}

func (c *counters) snapshot() Stats {
	st := Stats{
		Targets: c.targets.Load(), Sent: c.sent.Load(), SendErrors: c.sendErrors.Load(), Retried: c.retried.Load(), Steps: c.steps.Load(),
		Received: c.received.Load(), Matched: c.matched.Load(), Accepted: c.accepted.Load(),
		Duplicates: c.duplicates.Load(), Malformed: c.malformed.Load(), Dropped: c.dropped.Load(),
		Mismatched: c.mismatched.Load(), Misdirected: c.misdirected.Load(), ICMP: c.icmp.Load(),
		Unsolicited: c.unsolicited.Load(),
		Late:        c.late.Load(),
		RecvErrors:  c.recvErrors.Load(), OverCap: c.overCap.Load(), InFlight: c.inFlight.Load(),
		CurrentSendRate: math.Float64frombits(c.rate.Load()),
	}
	st.SendRate = c.sendRate(st.Sent)
	for s := Status(1); s < numStatus; s++ {
		n := c.statuses[s].Load()
		*st.Statuses.field(s) = n
		st.Finished += n
	}
	return st
}
