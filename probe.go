package ntpctl

import (
	"errors"
	"net/netip"
	"time"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
)

// A Probe describes one kind of exchange: the request sent to each
// target, and how the datagrams that come back are put together. The
// prober knows nothing else about the protocol. A Probe must be safe for
// concurrent use; its assemblers are used by one goroutine at a time.
type Probe[R any] interface {
	// AppendRequest appends the request datagram for target to b. seq is
	// the sequence number the prober derived for this target from its
	// secret key (Mode 6 requests carry it, Mode 7 has none).
	AppendRequest(b []byte, target netip.AddrPort, seq uint16) ([]byte, error)
	// NewAssembler returns a new assembler. The prober keeps assemblers
	// and resets them for each target they serve.
	NewAssembler() Assembler[R]
}

// An Assembler collects one target's reply datagrams.
type Assembler[R any] interface {
	// Reset prepares the assembler for the reply of target to a request
	// with sequence number seq.
	Reset(target netip.AddrPort, seq uint16)
	// Add consumes one datagram from the target's address and port; b is
	// only valid during the call. It returns how the datagram was taken
	// and whether the reply is finished (complete, or ended by an error
	// reply).
	Add(b []byte) (c Class, done bool)
	// Result returns what was collected, owned by the caller, with the
	// status it amounts to (StatusOK, StatusPartial, StatusProtocolError
	// or StatusServerError) and the error behind it.
	Result() (R, Status, error)
}

// Class says how an assembler took a datagram.
type Class uint8

const (
	// Accepted datagrams are part of the reply (error replies included).
	Accepted Class = iota
	// Duplicate datagrams repeat a part already held.
	Duplicate
	// Unmatched datagrams answer another request (sequence number,
	// opcode, implementation or request code differ): stale or spoofed.
	Unmatched
	// Malformed datagrams do not decode.
	Malformed
	// Dropped datagrams decode and match but contradict the reply or
	// exceed the assembler's caps.
	Dropped
)

// Status is the outcome for one target.
type Status uint8

// Outcomes. The zero value is reserved, so a result without a status is
// visible.
const (
	_ Status = iota
	// StatusOK: a complete reply.
	StatusOK
	// StatusNoAnswer: nothing came back from the target's address and port
	// (after all retries).
	StatusNoAnswer
	// StatusPartial: some of a multi-datagram reply, then silence.
	StatusPartial
	// StatusProtocolError: the target answered, but nothing it sent was a
	// usable reply.
	StatusProtocolError
	// StatusServerError: an error reply, such as Mode 7 INFO_ERR_NODATA
	// ("monlist disabled") or a Mode 6 error code.
	StatusServerError
	// StatusSendError: the request could not be sent.
	StatusSendError
	// StatusBlocked: the blocklist forbids the target; nothing was sent.
	StatusBlocked
	// StatusDuplicate: the same target was already in flight, so this
	// repeat was not sent (its replies would be indistinguishable); the
	// first one's result carries the answer.
	StatusDuplicate
)

var statusNames = [...]string{"", "ok", "no-answer", "partial", "protocol-error", "server-error", "send-error",
	"blocked", "duplicate"}

// String returns the status's name, such as "server-error".
func (s Status) String() string {
	if int(s) < len(statusNames) && s != 0 {
		return statusNames[s]
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) {
	if s == 0 || int(s) >= len(statusNames) {
		return nil, errors.New("ntpctl: unknown status")
	}
	return []byte(statusNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if i > 0 && n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	return errors.New("ntpctl: unknown status " + string(b))
}

// Result is the outcome of probing one target.
type Result[R any] struct {
	// Target is the address and port probed; replies were accepted only
	// from there.
	Target netip.AddrPort
	// Status is the outcome.
	Status Status
	// Value is what the probe's assembler collected (for StatusOK and
	// StatusPartial, and whatever there was otherwise).
	Value R
	// Err explains a status other than StatusOK.
	Err error
	// Time is when the first request was sent.
	Time time.Time
	// Attempts counts requests sent.
	Attempts int
	// RTT is the time from the last request sent before the first reply
	// datagram to that datagram; 0 without a reply.
	RTT time.Duration
	// Packets and Bytes count the datagrams from the target's address and
	// port that were not answers to another request, and their UDP
	// payload octets: the amplification evidence.
	Packets, Bytes int
	// RequestBytes is the UDP payload size of one request; the requests
	// sent total Attempts × RequestBytes octets.
	RequestBytes int
}

// Amplification returns Bytes ÷ RequestBytes, the bandwidth
// amplification factor of the UDP payloads, or 0.
func (r *Result[R]) Amplification() float64 {
	if r.RequestBytes == 0 {
		return 0
	}
	return float64(r.Bytes) / float64(r.RequestBytes)
}

// MonListProbe sends Mode 7 REQ_MON_GETLIST_1 (monlist), the query behind
// the NTP Monitor report, and reassembles the monitor list. Replies match
// a target when they carry the request's implementation and code.
type MonListProbe struct {
	// Request is sent to every target. Its zero fields take
	// mode7.NewRequest(mode7.ReqMonGetList1)'s values: Code 0 means
	// MON_GETLIST_1 and then Impl 0 means implementation 3 (to send
	// implementation 0, set Code too); Version 0 means 2; Size 0 means
	// 48 octets.
	Request mode7.Request
	// MaxEntries caps the monitor entries kept per target; 0 means
	// mode7.DefaultMaxEntries.
	MaxEntries int
}

// MonList returns the monlist probe with its defaults.
func MonList() *MonListProbe { return &MonListProbe{} }

func (p *MonListProbe) request() mode7.Request {
	r, def := p.Request, mode7.NewRequest(mode7.ReqMonGetList1)
	if r.Code == 0 {
		r.Code = def.Code
		if r.Impl == 0 {
			r.Impl = def.Impl
		}
	}
	if r.Version == 0 {
		r.Version = def.Version
	}
	if r.Size == 0 {
		r.Size = def.Size
	}
	return r
}

// AppendRequest implements Probe.
func (p *MonListProbe) AppendRequest(b []byte, _ netip.AddrPort, _ uint16) ([]byte, error) {
	return p.request().AppendBinary(b)
}

// NewAssembler implements Probe.
func (p *MonListProbe) NewAssembler() Assembler[mode7.Reply] {
	return &monAssembler{req: p.request(), r: mode7.Reassembler{MaxEntries: p.MaxEntries}}
}

type monAssembler struct {
	req mode7.Request
	r   mode7.Reassembler
}

func (a *monAssembler) Reset(netip.AddrPort, uint16) { a.r.ResetFor(a.req) }

func (a *monAssembler) Add(b []byte) (Class, bool) {
	err := a.r.Add(b)
	var c Class
	switch err.(type) {
	case nil, mode7.InfoErr:
		c = Accepted
	default:
		switch {
		case errors.Is(err, mode7.ErrDuplicate):
			c = Duplicate
		case errors.Is(err, mode7.ErrMismatch):
			c = Unmatched
		case errors.Is(err, mode7.ErrSequence), errors.Is(err, mode7.ErrCapacity):
			c = Dropped
		default:
			c = Malformed
		}
	}
	return c, a.r.Done()
}

func (a *monAssembler) Result() (mode7.Reply, Status, error) {
	rep := a.r.Reply()
	var ie mode7.InfoErr
	switch {
	case rep.Complete:
		return rep, StatusOK, nil
	case errors.As(rep.Err, &ie):
		return rep, StatusServerError, rep.Err
	case rep.Accepted > 0:
		return rep, StatusPartial, rep.Err
	}
	return rep, StatusProtocolError, rep.Err
}

// ReadVarProbe sends a Mode 6 READVAR request (`ntpq -c rv`), the query
// behind the NTP Version report, and reassembles and parses the variable
// list. Replies match a target when they carry the sequence number the
// prober derived for it and the READVAR opcode.
type ReadVarProbe struct {
	// AssocID selects the association; 0 is the server itself.
	AssocID uint16
	// Names selects variables; empty asks for the default set.
	Names []string
	// Version is the request's version number; 0 means 2.
	Version uint8
}

// ReadVar returns the probe for `ntpq -c rv`.
func ReadVar() *ReadVarProbe { return &ReadVarProbe{} }

// VersionReply is a reassembled READVAR reply with its variables parsed.
type VersionReply struct {
	mode6.Reply
	// Vars are the variables in wire order, parsed from Data.
	Vars mode6.Vars
	// Parse reports what parsing had to repair.
	Parse mode6.ParseStats
}

func (p *ReadVarProbe) request(seq uint16) mode6.Request {
	return mode6.Request{Op: mode6.OpReadVar, Seq: seq, AssocID: p.AssocID, Version: p.Version, Names: p.Names}
}

// AppendRequest implements Probe.
func (p *ReadVarProbe) AppendRequest(b []byte, _ netip.AddrPort, seq uint16) ([]byte, error) {
	return p.request(seq).AppendBinary(b)
}

// NewAssembler implements Probe.
func (p *ReadVarProbe) NewAssembler() Assembler[*VersionReply] { return &varAssembler{} }

type varAssembler struct{ r mode6.Reassembler }

func (a *varAssembler) Reset(_ netip.AddrPort, seq uint16) { a.r.Reset(seq, mode6.OpReadVar) }

func (a *varAssembler) Add(b []byte) (Class, bool) {
	err := a.r.Add(b)
	var c Class
	switch err.(type) {
	case nil, mode6.ServerError:
		c = Accepted
	default:
		switch {
		case errors.Is(err, mode6.ErrDuplicate):
			c = Duplicate
		case errors.Is(err, mode6.ErrMismatch):
			c = Unmatched
		case errors.Is(err, mode6.ErrOverlap), errors.Is(err, mode6.ErrSequence), errors.Is(err, mode6.ErrCapacity),
			errors.Is(err, mode6.ErrTooManyFragments), errors.Is(err, mode6.ErrTooManyDatagrams):
			c = Dropped
		default:
			c = Malformed
		}
	}
	return c, a.r.Done()
}

func (a *varAssembler) Result() (*VersionReply, Status, error) {
	v := &VersionReply{Reply: a.r.Reply()}
	v.Vars, v.Parse = mode6.ParseVars(v.Data)
	var se mode6.ServerError
	switch {
	case v.Complete:
		return v, StatusOK, nil
	case errors.As(v.Err, &se):
		return v, StatusServerError, v.Err
	case v.Fragments > 0:
		return v, StatusPartial, v.Err
	}
	return v, StatusProtocolError, v.Err
}
