package mode6

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ReassemblyStats counts what a [Reassembler] was given. Packets and Bytes
// count the datagrams of the reply, decodable or not: every datagram given
// to Add except those that decode as the reply to another request
// (Mismatched). They are the amplification evidence.
type ReassemblyStats struct {
	Packets     int // datagrams given to Add that were not Mismatched: the reply's datagrams, decodable or not
	Bytes       int // their UDP payload octets
	Fragments   int // fragments kept
	Duplicates  int // fragments at an offset already held
	Overlaps    int // fragments overlapping one held
	Malformed   int // datagrams that failed to decode (short, truncated, unpadded in strict mode, empty with the more bit)
	Mismatched  int // fragments of another sequence number or opcode
	Conflicting int // a second last fragment, data past the last one, anything after the reply was done
	OverCap     int // fragments placed beyond the buffer, or past MaxFragments
}

// Span is a range of octets [Start, End) of the reply data.
type Span struct{ Start, End int }

type frag struct{ off, end int }

// Reassembler collects the fragments of one reply by offset, with ntpq's
// rules (getresponse): the sequence number and opcode must match the
// request; an error reply ends the reply at once; duplicates and overlaps
// are dropped and counted; a second last fragment is dropped; data is
// placed by offset, never by arrival; at most MaxFragments fragments are
// held and no data is placed past MaxBytes. The reply is complete when the
// last fragment (M clear) has arrived and the fragments cover 0 up to its
// end without holes; fragments held past that end are dropped as strays.
// Only the count octets of a fragment are read.
//
// Where ntpq fails the whole query (a truncated datagram, data past its
// buffer), the Reassembler only drops and counts the datagram and keeps
// waiting: on the Internet a bad datagram may be a stray or forged one,
// and the genuine reply may still come.
//
// It copies what it keeps; Reset keeps its buffer, so a reused
// Reassembler allocates nothing. The zero value accepts the sequence
// number and opcode of the first fragment; call Reset to bind them to a
// request. A Reassembler is not safe for concurrent use.
type Reassembler struct {
	// StrictPadding drops datagrams whose length is not a multiple of 4,
	// as ntpq does ("Response packet not padded"). Off by default:
	// captures sometimes lose the padding.
	StrictPadding bool
	// MaxFragments caps the fragments held; 0 means MaxFragments.
	MaxFragments int
	// MaxBytes caps where data may lie; 0 (or more than MaxReplyLen) means
	// MaxReplyLen, ntpq's buffer.
	MaxBytes int
	// MaxDatagrams ends the reply with ErrTooManyDatagrams after this many
	// datagrams of any kind (ntpsec's client gives up after 2 × MAXFRAGS);
	// 0 means no limit.
	MaxDatagrams int

	bound   bool
	seq     uint16
	op      Op
	frags   [MaxFragments]frag // sorted by offset
	nfrags  int
	buf     []byte
	sawLast bool
	lastEnd int
	status  uint16
	assoc   uint16
	leap    uint8
	version uint8

	stats     ReassemblyStats
	datagrams int   // given to Add, of any kind (MaxDatagrams)
	err       error // terminal: a ServerError or ErrTooManyFragments
	lastDrop  error
}

// Reset prepares r for the reply to a request with the given sequence
// number and opcode, keeping its buffer and options.
func (r *Reassembler) Reset(seq uint16, op Op) {
	*r = Reassembler{StrictPadding: r.StrictPadding, MaxFragments: r.MaxFragments, MaxBytes: r.MaxBytes,
		MaxDatagrams: r.MaxDatagrams, buf: r.buf[:0], bound: true, seq: seq, op: op}
}

// ResetFor prepares r for the reply to req.
func (r *Reassembler) ResetFor(req Request) { r.Reset(req.Seq, req.Op) }

func (r *Reassembler) maxFrags() int {
	if r.MaxFragments <= 0 || r.MaxFragments > MaxFragments {
		return MaxFragments
	}
	return r.MaxFragments
}

func (r *Reassembler) maxBytes() int {
	if r.MaxBytes <= 0 || r.MaxBytes > MaxReplyLen {
		return MaxReplyLen
	}
	return r.MaxBytes
}

// Add offers one datagram of the reply. It counts the datagram in any
// case and returns nil when the fragment was kept; otherwise why it was
// dropped (a decoding error, [ErrPadding], [ErrEmptyFragment],
// [ErrMismatch], [ErrDuplicate], [ErrOverlap], [ErrSequence],
// [ErrCapacity]), or what ended the reply: the [ServerError] of an error
// reply or [ErrTooManyFragments].
func (r *Reassembler) Add(datagram []byte) error {
	r.datagrams++
	var p Packet
	err := p.DecodeFromBytes(datagram)
	se, isErr := err.(ServerError)
	decoded := err == nil || isErr
	if decoded && !r.bound {
		r.bound, r.seq, r.op = true, p.Seq, p.Op
	}
	// Another request's reply (stale or forged) is not part of this one,
	// so it is not in Packets and Bytes.
	mismatched := decoded && (p.Seq != r.seq || p.Op != r.op)
	if mismatched {
		r.stats.Mismatched++
	} else {
		r.stats.Packets++
		r.stats.Bytes += len(datagram)
	}
	if r.MaxDatagrams > 0 && r.datagrams > r.MaxDatagrams {
		if !r.Done() {
			r.err = ErrTooManyDatagrams
		}
		if !mismatched {
			r.stats.Conflicting++
		}
		return ErrTooManyDatagrams
	}
	if mismatched {
		return ErrMismatch
	}
	if !decoded {
		return r.malformed(err)
	}
	if isErr {
		if r.Done() {
			r.stats.Conflicting++
			return ErrSequence
		}
		r.err = se
		r.status, r.assoc, r.leap, r.version = p.Status, p.AssocID, p.Leap, p.Version
		return se
	}
	if r.StrictPadding && len(datagram)%4 != 0 {
		return r.malformed(ErrPadding)
	}
	if p.Count == 0 && p.More {
		return r.malformed(ErrEmptyFragment)
	}
	off, end := int(p.Offset), int(p.Offset)+int(p.Count)
	if end > r.maxBytes() {
		r.stats.OverCap++
		return ErrCapacity
	}
	// Where it goes among the fragments held, sorted by offset.
	i := 0
	for i < r.nfrags && r.frags[i].off < off {
		i++
	}
	switch {
	case i < r.nfrags && r.frags[i].off == off:
		r.stats.Duplicates++
		return ErrDuplicate
	case r.Done(), !p.More && r.sawLast:
		r.stats.Conflicting++
		return ErrSequence
	case (i > 0 && r.frags[i-1].end > off) || (i < r.nfrags && r.frags[i].off < end):
		r.stats.Overlaps++
		return ErrOverlap
	case r.sawLast && end > r.lastEnd:
		r.stats.Conflicting++
		return ErrSequence
	}
	if !p.More {
		// Nothing lies past the last fragment: fragments held beyond it
		// are strays (an earlier reply's, or forged) and go.
		for r.nfrags > i && r.frags[r.nfrags-1].off >= end {
			r.nfrags--
			r.stats.Fragments--
			r.stats.Conflicting++
		}
	}
	if r.nfrags >= r.maxFrags() {
		r.stats.OverCap++ // counted: every datagram of the reply is in one count
		r.err = ErrTooManyFragments
		return ErrTooManyFragments
	}
	copy(r.frags[i+1:r.nfrags+1], r.frags[i:r.nfrags])
	r.frags[i] = frag{off, end}
	r.nfrags++
	if len(r.buf) < end {
		r.buf = slices.Grow(r.buf, end-len(r.buf))[:end]
	}
	copy(r.buf[off:end], p.Data)
	r.stats.Fragments++
	if r.version == 0 {
		r.version = p.Version
	}
	r.assoc = p.AssocID
	if !p.More {
		r.sawLast, r.lastEnd = true, end
		r.status, r.leap = p.Status, p.Leap
	}
	return nil
}

func (r *Reassembler) malformed(err error) error {
	r.stats.Malformed++
	r.lastDrop = err
	return err
}

// covered returns the end of the run of fragments that starts at offset 0
// without holes (0 when the first fragment is missing).
func (r *Reassembler) covered() int {
	end := 0
	for i := 0; i < r.nfrags && r.frags[i].off == end; i++ {
		end = r.frags[i].end
	}
	return end
}

// Complete reports whether the last fragment arrived and the fragments
// cover the whole reply, and no error reply arrived.
func (r *Reassembler) Complete() bool {
	return r.err == nil && r.sawLast && r.covered() == r.lastEnd
}

// Done reports whether nothing more can change the outcome: the reply is
// complete, an error reply arrived, or too many fragments did.
func (r *Reassembler) Done() bool { return r.err != nil || r.Complete() }

// Stats returns the counters so far.
func (r *Reassembler) Stats() ReassemblyStats { return r.stats }

// Seq returns the sequence number the reply is matched against.
func (r *Reassembler) Seq() uint16 { return r.seq }

// Op returns the opcode the reply is matched against.
func (r *Reassembler) Op() Op { return r.op }

// Status returns the status word of the last fragment (or of the error
// reply), which ntpq takes as the reply's status.
func (r *Reassembler) Status() uint16 { return r.status }

// AssocID returns the association ID of the reply.
func (r *Reassembler) AssocID() uint16 { return r.assoc }

// Data returns the reply data from offset 0 up to the first hole (all of
// it when the reply is complete). The slice belongs to r and is valid
// until the next Add or Reset.
func (r *Reassembler) Data() []byte { return r.buf[:r.covered()] }

// AppendHoles appends the ranges of missing data below the end of the
// last fragment (or, while it is unknown, below the end of the highest
// fragment held).
func (r *Reassembler) AppendHoles(dst []Span) []Span {
	at := 0
	for i := 0; i < r.nfrags; i++ {
		if r.frags[i].off > at {
			dst = append(dst, Span{at, r.frags[i].off})
		}
		at = r.frags[i].end
	}
	if r.sawLast && r.lastEnd > at {
		dst = append(dst, Span{at, r.lastEnd})
	}
	return dst
}

// Err returns the outcome so far: nil for a complete reply, the
// [ServerError] of an error reply, [ErrTooManyFragments], or an error
// wrapping [ErrIncomplete] that describes the holes (and, when nothing was
// kept, wraps why the last datagram was dropped).
func (r *Reassembler) Err() error {
	switch {
	case r.err != nil:
		return r.err
	case r.Complete():
		return nil
	case r.nfrags == 0 && r.lastDrop != nil:
		return fmt.Errorf("%w: no valid fragment among %d (last dropped: %w)", ErrIncomplete, r.stats.Packets, r.lastDrop)
	case r.nfrags == 0:
		return fmt.Errorf("%w: no fragment", ErrIncomplete)
	}
	var sb strings.Builder
	for i, h := range r.AppendHoles(nil) {
		if i == 0 {
			sb.WriteString(", missing octets")
		}
		if i == 8 {
			sb.WriteString(" …")
			break
		}
		sb.WriteString(" " + strconv.Itoa(h.Start) + "-" + strconv.Itoa(h.End))
	}
	if !r.sawLast {
		sb.WriteString(", last fragment not received")
	}
	return fmt.Errorf("%w: %d fragments kept%s", ErrIncomplete, r.nfrags, sb.String())
}

// Reply is a reassembled Mode 6 reply: its data, status and association,
// whether it is complete, and the counts that measure the amplification.
type Reply struct {
	ReassemblyStats
	Op      Op
	Seq     uint16
	Version uint8  // version of the reply (servers echo the request's)
	Leap    uint8  // LI of the last fragment: the server's leap state
	Status  uint16 // status word of the last fragment or of the error reply
	AssocID uint16
	// Data is the reply data from offset 0 up to the first hole: all of it
	// for a complete reply.
	Data []byte
	// Holes lists the missing ranges.
	Holes []Span
	// Complete reports that every fragment arrived and no error reply did.
	Complete bool
	// Err is nil for a complete reply, else the [ServerError] of an error
	// reply, [ErrTooManyFragments], or an error wrapping [ErrIncomplete].
	Err error
	// Vars are the variables of a text reply, parsed from Data with
	// [ParseVars] in wire order: the replies to READVAR, READCLOCK,
	// READ_MRU and, for an association (AssocID not 0), READSTAT. Nil for
	// other replies and for text replies without data.
	Vars Vars
	// Parse reports what parsing Vars had to repair.
	Parse ParseStats
}

// IsText reports whether the replies to op are variable text (name=value
// lists), as opposed to binary data: READVAR, READCLOCK and READ_MRU, and
// READSTAT of an association (assoc not 0; of association 0 it is the
// binary association list).
func (o Op) IsText(assoc uint16) bool {
	return o == OpReadVar || o == OpReadClock || o == OpReadMRU || (o == OpReadStat && assoc != 0)
}

// Reply returns the reply collected so far, with the variables of a text
// reply parsed (see Reply.Vars). Its slices are new: r may be reset and
// reused afterwards. A text reply of up to 1,024 octets and 64 variables
// (the READVAR replies of ntpd and ntpsec) costs one allocation, which
// holds Data, the text the names and values slice, and Vars, all kept
// alive together; larger ones, and those with octets ParseVars drops,
// cost two. They belong to the Reply alone:
// Data is capped at its length, so appending to it cannot reach the
// text.
func (r *Reassembler) Reply() Reply {
	rep := r.reply()
	data := r.Data()
	if !rep.Op.IsText(rep.AssocID) || len(data) == 0 {
		rep.Data = slices.Clone(data)
		return rep
	}
	// Commas bound the items from above (parseVars counts those outside
	// quotes); an item past the room given only makes Vars grow.
	buf, dst := replyRoom(len(data), bytes.Count(data, comma)+1)
	rep.Data = buf[:copy(buf, data):len(data)]
	rep.Vars, rep.Parse = parseVars(data, buf[len(data):], dst)
	return rep
}

var comma = []byte{','}

// The rooms of a text Reply: Data, its text (as long as Data) and Vars
// in one allocation, in a few sizes around what servers send (a system
// READVAR reply of ntpd or ntpsec is 345–374 octets of 19 variables, a
// peer's 500–700 octets of about 30), each a size class of the
// allocator. The variables come first, so the collector scans the
// pointers there and stops before the octets.
type (
	room10x192 struct {
		vars [10]Var
		text [2 * 192]byte
	}
	room20x384 struct {
		vars [20]Var
		text [2 * 384]byte
	}
	room32x512 struct {
		vars [32]Var
		text [2 * 512]byte
	}
	room32x768 struct {
		vars [32]Var
		text [2 * 768]byte
	}
	room40x1024 struct {
		vars [40]Var
		text [2 * 1024]byte
	}
	room64x1024 struct {
		vars [64]Var
		text [2 * 1024]byte
	}
)

// replyRoom returns room for n octets of data, their text, and items
// variables: the buffer for the first two, and dst for parseVars (nil
// when the variables are allocated apart).
func replyRoom(n, items int) ([]byte, Vars) {
	switch {
	case items <= 10 && n <= 192:
		m := new(room10x192)
		return m.text[:2*n], m.vars[:0]
	case items <= 20 && n <= 384:
		m := new(room20x384)
		return m.text[:2*n], m.vars[:0]
	case items <= 32 && n <= 512:
		m := new(room32x512)
		return m.text[:2*n], m.vars[:0]
	case items <= 32 && n <= 768:
		m := new(room32x768)
		return m.text[:2*n], m.vars[:0]
	case items <= 40 && n <= 1024:
		m := new(room40x1024)
		return m.text[:2*n], m.vars[:0]
	case items <= 64 && n <= 1024:
		m := new(room64x1024)
		return m.text[:2*n], m.vars[:0]
	}
	return make([]byte, 2*n), nil
}

// reply returns the reply without its Data.
func (r *Reassembler) reply() Reply {
	return Reply{
		ReassemblyStats: r.stats,
		Op:              r.op,
		Seq:             r.seq,
		Version:         r.version,
		Leap:            r.leap,
		Status:          r.status,
		AssocID:         r.assoc,
		Holes:           r.AppendHoles(nil),
		Complete:        r.Complete(),
		Err:             r.Err(),
	}
}
