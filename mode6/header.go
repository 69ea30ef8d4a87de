package mode6

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Sizes and limits (ntp_control.h, ntpq.c).
const (
	// HeaderLen is the length of the header (CTL_HEADER_LEN).
	HeaderLen = 12
	// MaxDataLen is the most data octets in one fragment (CTL_MAX_DATA_LEN).
	MaxDataLen = 468
	// MaxPacketLen is the largest unauthenticated datagram.
	MaxPacketLen = HeaderLen + MaxDataLen
	// MaxMACLen is the longest key ID and MAC an authenticated reply carries.
	MaxMACLen = 24
	// MaxFragments is the most fragments ntpq 4.2.8 and ntpsec accept
	// (MAXFRAGS).
	MaxFragments = 32
	// MaxReplyLen bounds where reply data may lie (ntpq: MAXFRAGS × 480).
	MaxReplyLen = MaxFragments * MaxPacketLen
	// MaxLineLen is where ntpd folds the variable text (MAXDATALINELEN).
	MaxLineLen = 72
)

// Sentinel errors. Decoders return them bare, so a flood of bad packets
// costs no allocation; match them with [errors.Is].
var (
	// ErrShort reports a datagram shorter than the 12-octet header.
	ErrShort = errors.New("mode6: packet shorter than the header")
	// ErrMode reports a packet whose mode field is not 6.
	ErrMode = errors.New("mode6: not a mode 6 packet")
	// ErrNotResponse reports a packet without the response bit.
	ErrNotResponse = errors.New("mode6: not a response")
	// ErrVersion reports a version number outside 1..4.
	ErrVersion = errors.New("mode6: version outside 1..4")
	// ErrLength reports a count above 468 octets, or request data that
	// does not fit one packet.
	ErrLength = errors.New("mode6: count exceeds the data area")
	// ErrTruncated reports a datagram shorter than its header's count.
	ErrTruncated = errors.New("mode6: datagram shorter than its count")
	// ErrPadding reports a datagram whose length is not a multiple of 4
	// (ntpq drops those; see Reassembler.StrictPadding).
	ErrPadding = errors.New("mode6: datagram not padded to 4 octets")
	// ErrFieldRange reports a value that does not fit its field.
	ErrFieldRange = errors.New("mode6: field value out of range")
	// ErrOpcode reports an opcode that is not a read-only query.
	ErrOpcode = errors.New("mode6: opcode is not a read-only query")
	// ErrName reports a variable name a request cannot carry.
	ErrName = errors.New("mode6: invalid variable name")
	// ErrMismatch reports a fragment of another request (sequence number
	// or opcode).
	ErrMismatch = errors.New("mode6: fragment does not match the request")
	// ErrDuplicate reports a fragment at an offset already held.
	ErrDuplicate = errors.New("mode6: duplicate fragment")
	// ErrOverlap reports a fragment overlapping one already held.
	ErrOverlap = errors.New("mode6: overlapping fragment")
	// ErrEmptyFragment reports a fragment with no data and the more bit.
	ErrEmptyFragment = errors.New("mode6: empty fragment with the more bit")
	// ErrSequence reports a fragment that contradicts the reply: a second
	// last fragment, data past the last one, anything after the reply was
	// done.
	ErrSequence = errors.New("mode6: fragment contradicts the reply")
	// ErrCapacity reports data placed beyond the reassembly buffer.
	ErrCapacity = errors.New("mode6: fragment beyond the reassembly buffer")
	// ErrTooManyFragments reports a reply of more than MaxFragments
	// fragments.
	ErrTooManyFragments = errors.New("mode6: too many fragments")
	// ErrTooManyDatagrams reports a reply that went on past
	// Reassembler.MaxDatagrams datagrams.
	ErrTooManyDatagrams = errors.New("mode6: too many datagrams")
	// ErrIncomplete reports a reply with holes or without its last
	// fragment.
	ErrIncomplete = errors.New("mode6: reply incomplete")
)

// Op is a Mode 6 opcode (ntp_control.h CTL_OP_*).
type Op uint8

// Opcodes. Only READSTAT, READVAR and READCLOCK can be sent with
// [Request], REQ_NONCE with [AppendReqNonce] and READ_MRU with
// [MRURequest]; the others change state, need authentication or are not
// queries.
const (
	OpUnspec       Op = 0  // CTL_OP_UNSPEC: status word only
	OpReadStat     Op = 1  // CTL_OP_READSTAT: association list, or peer variables
	OpReadVar      Op = 2  // CTL_OP_READVAR: system (association 0) or peer variables
	OpWriteVar     Op = 3  // CTL_OP_WRITEVAR (state-changing)
	OpReadClock    Op = 4  // CTL_OP_READCLOCK: reference clock variables
	OpWriteClock   Op = 5  // CTL_OP_WRITECLOCK (state-changing)
	OpSetTrap      Op = 6  // CTL_OP_SETTRAP (state-changing)
	OpAsyncMsg     Op = 7  // CTL_OP_ASYNCMSG: server to trap listener
	OpConfigure    Op = 8  // CTL_OP_CONFIGURE (state-changing)
	OpSaveConfig   Op = 9  // CTL_OP_SAVECONFIG (state-changing)
	OpReadMRU      Op = 10 // CTL_OP_READ_MRU: the MRU list, after a nonce
	OpReadOrdlistA Op = 11 // CTL_OP_READ_ORDLIST_A: interface and restrict lists
	OpReqNonce     Op = 12 // CTL_OP_REQ_NONCE
	OpUnsetTrap    Op = 31 // CTL_OP_UNSETTRAP (state-changing)
)

var opNames = [32]string{
	0: "UNSPEC", 1: "READSTAT", 2: "READVAR", 3: "WRITEVAR", 4: "READCLOCK", 5: "WRITECLOCK",
	6: "SETTRAP", 7: "ASYNCMSG", 8: "CONFIGURE", 9: "SAVECONFIG", 10: "READ_MRU",
	11: "READ_ORDLIST_A", 12: "REQ_NONCE", 31: "UNSETTRAP",
}

// String returns the opcode's name without the CTL_OP_ prefix, such as
// "READVAR".
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "OP_" + strconv.Itoa(int(o))
}

// ReadOnly reports whether o is a query this package builds: READSTAT,
// READVAR or READCLOCK.
func (o Op) ReadOnly() bool { return o == OpReadStat || o == OpReadVar || o == OpReadClock }

// ServerError is the error code of an error reply (E bit set): the high
// octet of the status word (ntp_control.h CERR_*). It implements error;
// match it with [errors.As] or compare it with [errors.Is].
type ServerError uint8

// Error codes.
const (
	CErrUnspec     ServerError = 0 // CERR_UNSPEC
	CErrPermission ServerError = 1 // CERR_PERMISSION: authentication required or refused
	CErrBadFormat  ServerError = 2 // CERR_BADFMT: malformed request
	CErrBadOp      ServerError = 3 // CERR_BADOP: unknown opcode
	CErrBadAssoc   ServerError = 4 // CERR_BADASSOC: unknown association
	CErrUnknownVar ServerError = 5 // CERR_UNKNOWNVAR: unknown variable name
	CErrBadValue   ServerError = 6 // CERR_BADVALUE: bad value in a write
	CErrRestrict   ServerError = 7 // CERR_RESTRICT: administratively prohibited
)

var cerrNames = [8]string{"CERR_UNSPEC", "CERR_PERMISSION", "CERR_BADFMT", "CERR_BADOP",
	"CERR_BADASSOC", "CERR_UNKNOWNVAR", "CERR_BADVALUE", "CERR_RESTRICT"}

var cerrText = [8]string{"unspecified error", "permission denied", "bad request format",
	"unknown opcode", "unknown association", "unknown variable", "bad value", "administratively prohibited"}

// String returns the code's ntp_control.h name, such as "CERR_BADASSOC".
func (e ServerError) String() string {
	if int(e) < len(cerrNames) {
		return cerrNames[e]
	}
	return "CERR_" + strconv.Itoa(int(e))
}

// Text describes the code in words, such as "unknown association".
func (e ServerError) Text() string {
	if int(e) < len(cerrText) {
		return cerrText[e]
	}
	return "undefined error code"
}

// Error describes e, for example
// "mode6: server error 4 (CERR_BADASSOC): unknown association".
func (e ServerError) Error() string {
	return "mode6: server error " + strconv.Itoa(int(e)) + " (" + e.String() + "): " + e.Text()
}

// Header is the 12-octet Mode 6 header. The mode field is not stored: it
// is always 6.
type Header struct {
	Leap     uint8 // LI, 2 bits: ignored in requests, the server's leap state in replies
	Version  uint8 // VN, 3 bits; requests use 1..4, replies echo the request
	Response bool  // R
	Error    bool  // E: the status word carries an error code
	More     bool  // M: more fragments follow
	Op       Op    // opcode, 5 bits
	Seq      uint16
	Status   uint16
	AssocID  uint16
	Offset   uint16
	Count    uint16
}

// AppendBinary appends the 12 octets of h to b. It returns
// [ErrFieldRange] when a field does not fit its bits.
func (h Header) AppendBinary(b []byte) ([]byte, error) {
	if h.Leap > 3 || h.Version > 7 || h.Op > 31 {
		return b, ErrFieldRange
	}
	return h.appendUnchecked(b), nil
}

func (h Header) appendUnchecked(b []byte) []byte {
	b1 := byte(h.Op)
	if h.Response {
		b1 |= 0x80
	}
	if h.Error {
		b1 |= 0x40
	}
	if h.More {
		b1 |= 0x20
	}
	b = append(b, h.Leap<<6|h.Version<<3|6, b1)
	b = binary.BigEndian.AppendUint16(b, h.Seq)
	b = binary.BigEndian.AppendUint16(b, h.Status)
	b = binary.BigEndian.AppendUint16(b, h.AssocID)
	b = binary.BigEndian.AppendUint16(b, h.Offset)
	return binary.BigEndian.AppendUint16(b, h.Count)
}

// MarshalBinary returns the 12 octets of h.
func (h Header) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, HeaderLen))
}

// UnmarshalBinary decodes the header from the first [HeaderLen] octets of
// b and keeps nothing of b. It returns [ErrShort] for a shorter b and
// [ErrMode] when the mode field is not 6; it checks nothing else.
func (h *Header) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderLen {
		return ErrShort
	}
	_ = b[11]
	if b[0]&7 != 6 {
		return ErrMode
	}
	// Field by field: a composite literal is assembled on the stack octet
	// by octet and copied out with wide loads, which stalls store
	// forwarding.
	h.Leap = b[0] >> 6
	h.Version = b[0] >> 3 & 7
	h.Response = b[1]&0x80 != 0
	h.Error = b[1]&0x40 != 0
	h.More = b[1]&0x20 != 0
	h.Op = Op(b[1] & 0x1f)
	h.Seq = binary.BigEndian.Uint16(b[2:4])
	h.Status = binary.BigEndian.Uint16(b[4:6])
	h.AssocID = binary.BigEndian.Uint16(b[6:8])
	h.Offset = binary.BigEndian.Uint16(b[8:10])
	h.Count = binary.BigEndian.Uint16(b[10:12])
	return nil
}
