package ntpctl

import (
	"net/netip"

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
	// only valid during the call. matched is false for a datagram that
	// answers another request (another sequence number, opcode, request
	// code or implementation: stale or forged), which is not part of the
	// reply and not counted in the result's Packets; every other datagram,
	// decodable or not, is. done reports that the reply is finished
	// (complete, or ended by an error reply).
	Add(b []byte) (matched, done bool)
	// Result returns what was collected, owned by the caller, with the
	// status it amounts to (StatusOK, StatusPartial, StatusProtocolError
	// or StatusServerError) and the error behind it.
	Result() (R, Status, error)
	// Tally says how the datagrams given to Add were taken; the prober
	// adds it to its Stats when the target finishes.
	Tally() Tally
}

// Tally counts the datagrams an Assembler took for one target, by kind.
// Every datagram is in exactly one count but for error replies, which
// are in none.
type Tally struct {
	Accepted   int // kept as part of the reply
	Duplicates int // repeating (or overlapping) a part already held
	Malformed  int // not decodable
	Mismatched int // answering another request: not part of the reply
	Dropped    int // contradicting the reply, or beyond the assembler's caps
}

// MonListProbe sends Mode 7 REQ_MON_GETLIST_1 (monlist), the query behind
// the NTP Monitor report, and reassembles the monitor list into a
// mode7.Reply. Replies match a target when they carry the request's
// implementation and code.
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

func (a *monAssembler) Add(b []byte) (matched, done bool) {
	before := a.r.Stats().Mismatched
	_ = a.r.Add(b) // the reassembler counts each outcome; Result reports it
	return a.r.Stats().Mismatched == before, a.r.Done()
}

func (a *monAssembler) Tally() Tally {
	s := a.r.Stats()
	return Tally{Accepted: s.Accepted, Duplicates: s.Duplicates, Malformed: s.Malformed, Mismatched: s.Mismatched,
		Dropped: s.Conflicting + s.OverCap}
}

func (a *monAssembler) Result() (mode7.Reply, Status, error) {
	rep := a.r.Reply()
	_, isInfo := rep.Err.(mode7.InfoErr) // as the reassembler keeps it: errors.As would allocate
	return rep, replyStatus(rep.Complete, isInfo, rep.Accepted), rep.Err
}

// replyStatus is the status of a reply: complete, an error reply, some of
// it kept, or nothing usable.
func replyStatus(complete, errorReply bool, kept int) Status {
	switch {
	case complete:
		return StatusOK
	case errorReply:
		return StatusServerError
	case kept > 0:
		return StatusPartial
	}
	return StatusProtocolError
}

// ReadVarProbe sends a Mode 6 READVAR request (`ntpq -c rv`), the query
// behind the NTP Version report, and reassembles the reply into a
// mode6.Reply, whose Vars are the variables parsed. Replies match a
// target when they carry the sequence number the prober derived for it
// and the READVAR opcode.
type ReadVarProbe struct {
	// AssocID selects the association; 0 is the server itself.
	AssocID uint16
	// Names selects variables; empty asks for the default set.
	Names []string
	// Version is the request's version number; 0 means 2.
	Version uint8
	// Op is the request's opcode: 0 means [mode6.OpReadVar];
	// [mode6.OpReadStat] of association 0 asks for the association list
	// (ntpq -c as), whose binary data [mode6.AppendAssocStatuses] decodes.
	Op mode6.Op
}

func (p *ReadVarProbe) op() mode6.Op {
	if p.Op == 0 {
		return mode6.OpReadVar
	}
	return p.Op
}

// ReadVar returns the probe for `ntpq -c rv`.
func ReadVar() *ReadVarProbe { return &ReadVarProbe{} }

func (p *ReadVarProbe) request(seq uint16) mode6.Request {
	return mode6.Request{Op: p.op(), Seq: seq, AssocID: p.AssocID, Version: p.Version, Names: p.Names}
}

// AppendRequest implements Probe.
func (p *ReadVarProbe) AppendRequest(b []byte, _ netip.AddrPort, seq uint16) ([]byte, error) {
	return p.request(seq).AppendBinary(b)
}

// NewAssembler implements Probe.
func (p *ReadVarProbe) NewAssembler() Assembler[mode6.Reply] { return &varAssembler{op: p.op()} }

type varAssembler struct {
	r  mode6.Reassembler
	op mode6.Op
}

func (a *varAssembler) Reset(_ netip.AddrPort, seq uint16) { a.r.Reset(seq, a.op) }

func (a *varAssembler) Add(b []byte) (matched, done bool) {
	before := a.r.Stats().Mismatched
	_ = a.r.Add(b) // the reassembler counts each outcome; Result reports it
	return a.r.Stats().Mismatched == before, a.r.Done()
}

func (a *varAssembler) Tally() Tally {
	s := a.r.Stats()
	return Tally{Accepted: s.Fragments, Duplicates: s.Duplicates + s.Overlaps, Malformed: s.Malformed,
		Mismatched: s.Mismatched, Dropped: s.Conflicting + s.OverCap}
}

func (a *varAssembler) Result() (mode6.Reply, Status, error) {
	rep := a.r.Reply()
	_, isServer := rep.Err.(mode6.ServerError) // as the reassembler keeps it: errors.As would allocate
	return rep, replyStatus(rep.Complete, isServer, rep.Fragments), rep.Err
}
