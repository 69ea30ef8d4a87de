package mode7

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DefaultMaxBytes is the default cap on the item octets a [Reassembler]
// keeps: 128 packets of 500 octets, the most a reply can legally carry.
const DefaultMaxBytes = MaxPackets * MaxDataLen

// DefaultMaxEntries is the default cap on the monitor entries a
// [Reassembler] keeps: 128 full packets of 72-octet items. ntpd never
// sends more than 600; the cap bounds what a hostile server sending small
// items can make a client hold (each decoded entry takes 80 octets).
const DefaultMaxEntries = MaxPackets * (MaxDataLen / ItemSizeMonitor1)

// ReassemblyStats counts what a [Reassembler] was given. Packets and Bytes
// count the datagrams of the reply, decodable or not: every datagram given
// to Add except those that decode as the reply to another implementation
// or request code (Mismatched). They are the amplification evidence (what
// the server sent in reply to one request).
type ReassemblyStats struct {
	Packets     int // datagrams given to Add, except Mismatched ones
	Bytes       int // their UDP payload octets
	Accepted    int // distinct packets kept
	Duplicates  int // packets whose sequence number was already kept
	Malformed   int // packets that failed to decode or had a bad item size
	Mismatched  int // packets for another implementation or request code
	Conflicting int // packets that contradict the reply: a second last packet, a sequence number past the last, anything after the reply was done, kept packets evicted by the last one
	OverCap     int // packets dropped because a cap on octets or entries was reached
}

// Reassembler collects the packets of one reply by sequence number, in
// any order, the way ntpdc does: the reply is complete when the packet
// without the more bit (sequence L) and every sequence number 0..L have
// arrived. Duplicates are counted and ignored, packets for another
// implementation or request code are rejected, an error code on any packet
// ends the reply, and at most [MaxPackets] packets, MaxBytes item octets
// and MaxEntries monitor entries are kept. Monitor-list items are decoded
// as they arrive.
//
// A Reassembler copies what it keeps, so the datagram buffers passed to
// Add may be reused at once. Reset prepares it for another reply and keeps
// its buffers, so a reused Reassembler allocates nothing. The zero value is
// ready to use; without Reset it accepts the implementation and request
// code of the first packet that decodes. A Reassembler is not safe for
// concurrent use.
type Reassembler struct {
	// MaxBytes caps the item octets kept; 0 (or anything larger) means
	// DefaultMaxBytes, the most a legal reply carries.
	MaxBytes int
	// MaxEntries caps the monitor entries kept; 0 means DefaultMaxEntries.
	MaxEntries int

	bound    bool
	impl     Impl
	code     ReqCode
	version  uint8
	itemSize uint16
	sized    bool

	seen    [2]uint64
	last    int // sequence number of the packet without the more bit, or -1
	maxSeq  int // highest sequence number kept, or -1
	unorder bool
	capped  bool
	// For a monitor list, packet s holds ents[start[s]:start[s]+cnt[s]],
	// decoded as it arrived; for other codes buf[start[s]:start[s]+cnt[s]].
	start  [MaxPackets]uint16
	cnt    [MaxPackets]uint16
	ents   []MonitorEntry
	spare  []MonitorEntry // reordering space
	buf    []byte
	octets int // item octets kept
	nents  int // monitor entries kept

	stats    ReassemblyStats
	err      error // terminal: an InfoErr or ErrNoEnd
	lastDrop error // why the last malformed packet was dropped
	inited   bool
}

// Reset prepares r for the reply to a request with the given
// implementation and code, keeping its buffers and caps.
func (r *Reassembler) Reset(impl Impl, code ReqCode) {
	r.reset()
	r.bound, r.impl, r.code = true, impl, code
}

// ResetFor prepares r for the reply to req.
func (r *Reassembler) ResetFor(req Request) { r.Reset(req.Impl, req.Code) }

func (r *Reassembler) reset() {
	ents, spare := r.ents[:0], r.spare[:0]
	if cap(ents) > 2*DefaultMaxEntries { // do not keep what a hostile reply grew
		ents, spare = nil, nil
	}
	// Field by field: start and cnt (512 octets) are read only for the
	// sequence numbers marked in seen, so they need no clearing.
	r.bound, r.impl, r.code, r.version, r.itemSize, r.sized = false, 0, 0, 0, 0, false
	r.seen = [2]uint64{}
	r.last, r.maxSeq, r.unorder, r.capped = -1, -1, false, false
	r.ents, r.spare, r.buf = ents, spare, r.buf[:0]
	r.octets, r.nents = 0, 0
	r.stats, r.err, r.lastDrop, r.inited = ReassemblyStats{}, nil, nil, true
}

func (r *Reassembler) init() {
	if !r.inited {
		r.last, r.maxSeq, r.inited = -1, -1, true
	}
}

func (r *Reassembler) has(seq uint8) bool { return r.seen[seq>>6]&(1<<(seq&63)) != 0 }

// Add offers one datagram of the reply. It counts the datagram in any
// case (in Packets, or in Mismatched), and returns nil when the packet was kept. Otherwise it returns
// why the packet was dropped: a decoding error ([ErrShort], [ErrLength],
// …), [ErrItemSize], [ErrMismatch], [ErrDuplicate], [ErrSequence] or
// [ErrCapacity]; or the [InfoErr] of an error reply, which ends the reply.
func (r *Reassembler) Add(datagram []byte) error {
	r.init()
	var p Packet
	err := p.DecodeFromBytes(datagram)
	ie, isInfo := err.(InfoErr)
	if err != nil && !isInfo {
		r.count(datagram)
		r.stats.Malformed++
		r.lastDrop = err
		return err
	}
	if !r.bound {
		r.bound, r.impl, r.code = true, p.Impl, p.Code
	}
	if p.Impl != r.impl || p.Code != r.code {
		// Another request's reply (stale or forged): not part of this
		// one, so not in Packets and Bytes.
		r.stats.Mismatched++
		return ErrMismatch
	}
	r.count(datagram)
	s := p.Seq
	if !isInfo && r.has(s) {
		r.stats.Duplicates++
		return ErrDuplicate
	}
	if r.Done() {
		r.stats.Conflicting++
		return ErrSequence
	}
	if r.version == 0 {
		r.version = p.Version
	}
	if isInfo {
		r.err = ie
		return ie
	}
	if p.NItems > 0 {
		if (r.code.IsMonitorList() && !IsMonitorItemSize(int(p.ItemSize))) ||
			(r.sized && p.ItemSize != r.itemSize) {
			r.stats.Malformed++
			r.lastDrop = ErrItemSize
			return ErrItemSize
		}
	}
	switch {
	case !p.More && r.last >= 0, p.More && r.last >= 0 && int(s) > r.last:
		r.stats.Conflicting++
		return ErrSequence
	case !p.More && int(s) < r.maxSeq:
		// ntpd never sends a packet past its last one: those kept above
		// this last packet are strays (from an earlier reply, or forged).
		r.evictAbove(s)
	}
	n := len(p.Data)
	if r.capped || r.octets+n > r.maxBytes() ||
		(r.code.IsMonitorList() && r.nents+int(p.NItems) > r.maxEntries()) {
		// Once a packet is lost to a cap the reply cannot complete; keep
		// nothing more, so no later packet can leave a hole behind it.
		r.capped = true
		r.stats.OverCap++
		return ErrCapacity
	}
	if p.NItems > 0 && !r.sized {
		r.sized, r.itemSize = true, p.ItemSize
	}
	r.octets += n
	if r.code.IsMonitorList() {
		k, at := int(p.NItems), len(r.ents)
		r.ents = slices.Grow(r.ents, k)[:at+k]
		decodeItems(r.ents[at:], p.Data, int(p.ItemSize))
		r.start[s], r.cnt[s] = uint16(at), uint16(k)
		r.nents += k
	} else {
		r.start[s], r.cnt[s] = uint16(len(r.buf)), uint16(n)
		r.buf = append(r.buf, p.Data...)
	}
	r.unorder = r.unorder || int(s) < r.maxSeq
	r.seen[s>>6] |= 1 << (s & 63)
	r.stats.Accepted++
	r.maxSeq = max(r.maxSeq, int(s))
	if !p.More {
		r.last = int(s)
	}
	if r.stats.Accepted == MaxPackets && r.last < 0 {
		r.err = ErrNoEnd
	}
	return nil
}

// count counts a datagram of the reply in Packets and Bytes.
func (r *Reassembler) count(datagram []byte) {
	r.stats.Packets++
	r.stats.Bytes += len(datagram)
}

// evictAbove forgets the packets kept with sequence numbers above s.
func (r *Reassembler) evictAbove(s uint8) {
	for q := int(s) + 1; q <= r.maxSeq; q++ {
		if !r.has(uint8(q)) {
			continue
		}
		r.seen[q>>6] &^= 1 << (q & 63)
		if r.code.IsMonitorList() {
			r.nents -= int(r.cnt[q])
			r.octets -= int(r.cnt[q]) * int(r.itemSize)
		} else {
			r.octets -= int(r.cnt[q])
		}
		r.stats.Accepted--
		r.stats.Conflicting++
	}
	r.maxSeq = -1
	for q := int(s); q >= 0; q-- {
		if r.has(uint8(q)) {
			r.maxSeq = q
			break
		}
	}
	r.unorder = true // Entries rebuilds from the packets still kept
}

func (r *Reassembler) maxBytes() int {
	if r.MaxBytes <= 0 || r.MaxBytes > DefaultMaxBytes {
		return DefaultMaxBytes
	}
	return r.MaxBytes
}

func (r *Reassembler) maxEntries() int {
	if r.MaxEntries <= 0 {
		return DefaultMaxEntries
	}
	return r.MaxEntries
}

// Complete reports whether the last packet and every packet before it
// have been kept and no error reply arrived.
func (r *Reassembler) Complete() bool {
	return r.err == nil && r.last >= 0 && r.stats.Accepted == r.last+1
}

// Done reports whether nothing more can change the outcome: the reply is
// complete, an error reply arrived, or 128 packets arrived without a last
// one. Packets added after that are counted and dropped.
func (r *Reassembler) Done() bool { return r.err != nil || r.Complete() }

// Stats returns the counters so far.
func (r *Reassembler) Stats() ReassemblyStats { return r.stats }

// Impl returns the implementation number the reply is matched against.
func (r *Reassembler) Impl() Impl { return r.impl }

// Code returns the request code the reply is matched against.
func (r *Reassembler) Code() ReqCode { return r.code }

// ItemSize returns the item size of the packets kept, or 0.
func (r *Reassembler) ItemSize() int { return int(r.itemSize) }

// LastSeq returns the sequence number of the last packet, or -1 when it
// has not arrived.
func (r *Reassembler) LastSeq() int {
	if !r.inited {
		return -1
	}
	return r.last
}

// AppendMissing appends the sequence numbers not yet received below the
// last packet (or, while the last packet is unknown, below the highest
// one received).
func (r *Reassembler) AppendMissing(dst []uint8) []uint8 {
	end := r.last
	if end < 0 {
		end = r.maxSeq
	}
	for s := 0; s < end; s++ {
		if !r.has(uint8(s)) {
			dst = append(dst, uint8(s))
		}
	}
	return dst
}

// AppendData appends the item octets of the packets kept, in sequence
// order, for replies to codes other than the monitor lists (whose items
// are decoded as they arrive; see [Reassembler.Entries]).
func (r *Reassembler) AppendData(dst []byte) []byte {
	if r.code.IsMonitorList() {
		return dst
	}
	for s := 0; s <= r.maxSeq; s++ {
		if r.has(uint8(s)) {
			dst = append(dst, r.buf[r.start[s]:int(r.start[s])+int(r.cnt[s])]...)
		}
	}
	return dst
}

// NumEntries returns the number of monitor entries kept.
func (r *Reassembler) NumEntries() int { return r.nents }

// Entries returns the monitor entries kept, in sequence order, including
// those of a partial reply. The slice belongs to r and is valid until the
// next Add or Reset; copy it (or use [Reassembler.AppendEntries] or
// [Reassembler.Reply]) to keep it. Entries allocates nothing once r has
// reordered a reply of the same size before.
func (r *Reassembler) Entries() []MonitorEntry {
	if r.unorder {
		r.spare = r.spare[:0]
		for s := 0; s <= r.maxSeq; s++ {
			if r.has(uint8(s)) {
				at := len(r.spare)
				r.spare = append(r.spare, r.ents[r.start[s]:int(r.start[s])+int(r.cnt[s])]...)
				r.start[s] = uint16(at)
			}
		}
		r.ents, r.spare = r.spare, r.ents
		r.unorder = false
	}
	return r.ents
}

// AppendEntries appends the monitor entries kept to dst in sequence
// order. It returns [ErrMismatch] when the reply is not to a monitor-list
// request.
func (r *Reassembler) AppendEntries(dst []MonitorEntry) ([]MonitorEntry, error) {
	if !r.code.IsMonitorList() {
		return dst, ErrMismatch
	}
	return append(dst, r.Entries()...), nil
}

// Err returns the outcome so far: nil for a complete reply, the [InfoErr]
// of an error reply, [ErrNoEnd], or an error wrapping [ErrIncomplete] that
// names the missing packets (and also wraps [ErrCapacity] when a cap was
// reached, or, when nothing was kept, the reason the last malformed
// packet was dropped).
func (r *Reassembler) Err() error {
	switch {
	case r.err != nil:
		return r.err
	case r.Complete():
		return nil
	case r.capped:
		return fmt.Errorf("%w (%w): %d packets kept, %d octets, %d entries",
			ErrIncomplete, ErrCapacity, r.stats.Accepted, r.octets, r.nents)
	case r.stats.Accepted == 0 && r.lastDrop != nil:
		return fmt.Errorf("%w: no valid packet among %d (last dropped: %w)", ErrIncomplete, r.stats.Packets, r.lastDrop)
	case r.stats.Accepted == 0:
		return fmt.Errorf("%w: no packet", ErrIncomplete)
	}
	var sb strings.Builder
	missing := r.AppendMissing(nil)
	if len(missing) > 0 {
		sb.WriteString(", missing sequence numbers")
		for i, s := range missing {
			if i == 16 {
				sb.WriteString(" …")
				break
			}
			sb.WriteString(" ")
			sb.WriteString(strconv.Itoa(int(s)))
		}
	}
	if r.last < 0 {
		sb.WriteString(", last packet not received")
	}
	return fmt.Errorf("%w: %d packets kept%s", ErrIncomplete, r.stats.Accepted, sb.String())
}

// Reply is a reassembled Mode 7 reply: the monitor entries in sequence
// order, whether the reply is complete, why not, and the counts that
// measure the amplification.
type Reply struct {
	ReassemblyStats
	Impl     Impl
	Code     ReqCode
	Version  uint8 // version of the reply (ntpd echoes the request's)
	ItemSize int
	// Entries are the monitor entries, in sequence order; for a partial
	// reply those of the packets that arrived.
	Entries []MonitorEntry
	// LastSeq is the sequence number of the last packet, -1 if unknown.
	LastSeq int
	// Missing lists the sequence numbers not received below the last
	// packet or, while the last packet is unknown, below the highest one
	// received.
	Missing []uint8
	// Complete reports that every packet arrived and no error reply did.
	Complete bool
	// Err is nil for a complete reply, else the [InfoErr] of an error
	// reply, [ErrNoEnd], or an error wrapping [ErrIncomplete].
	Err error
}

// Reply returns the reply collected so far. Its slices are new: r may be
// reset and reused afterwards.
func (r *Reassembler) Reply() Reply {
	rep := Reply{
		ReassemblyStats: r.stats,
		Impl:            r.impl,
		Code:            r.code,
		Version:         r.version,
		ItemSize:        int(r.itemSize),
		LastSeq:         r.LastSeq(),
		Missing:         r.AppendMissing(nil),
		Complete:        r.Complete(),
		Err:             r.Err(),
	}
	if r.nents > 0 {
		rep.Entries = slices.Clone(r.Entries())
	}
	return rep
}
