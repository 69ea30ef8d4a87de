package mode7

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Sizes and limits of the protocol (ntp_request.h).
const (
	// HeaderLen is the length of the Mode 7 header (REQ_LEN_HDR, RESP_HEADER_SIZE).
	HeaderLen = 8
	// MaxDataLen is the largest data area of one reply packet (RESP_DATA_SIZE).
	MaxDataLen = 500
	// MaxPacketLen is the largest reply datagram ntpd sends.
	MaxPacketLen = HeaderLen + MaxDataLen
	// MaxSeq is the largest sequence number of a reply packet (MAXSEQ).
	MaxSeq = 127
	// MaxPackets is the largest number of packets in one reply.
	MaxPackets = MaxSeq + 1
	// MaxMonitorEntries is the most entries ntpd returns for monlist: its MRU
	// list was capped at 600 entries (MAXMONMEM) and, once the cap was
	// raised, mon_getlist returned the newest 600.
	MaxMonitorEntries = 600
)

// Sentinel errors. Decoders return them bare (so that a flood of bad
// packets costs no allocation); higher layers wrap them with context.
// Match them with [errors.Is].
var (
	// ErrShort reports a datagram shorter than the 8-octet header.
	ErrShort = errors.New("mode7: packet shorter than the header")
	// ErrMode reports a packet whose mode field is not 7.
	ErrMode = errors.New("mode7: not a mode 7 packet")
	// ErrNotResponse reports a packet without the response bit.
	ErrNotResponse = errors.New("mode7: not a response")
	// ErrVersion reports a version number outside 1..4.
	ErrVersion = errors.New("mode7: version outside 1..4")
	// ErrReserved reports a set MBZ nibble, or the authenticated bit in a
	// response (ntpd never sets it there).
	ErrReserved = errors.New("mode7: reserved bits set")
	// ErrLength reports an item count × item size that exceeds the datagram
	// or the 500-octet data area, or an encoder given inconsistent data.
	ErrLength = errors.New("mode7: item count and size exceed the data")
	// ErrItemSize reports an item size that no known layout has, items of
	// size 0, or a reply whose packets disagree on the item size.
	ErrItemSize = errors.New("mode7: unsupported item size")
	// ErrFieldRange reports a value that does not fit its field.
	ErrFieldRange = errors.New("mode7: field value out of range")
	// ErrRequestCode reports a request code that is not read-only.
	ErrRequestCode = errors.New("mode7: request code is not a read-only query")
	// ErrMismatch reports a reply packet for another implementation or
	// request code than the one asked.
	ErrMismatch = errors.New("mode7: packet does not match the request")
	// ErrDuplicate reports a sequence number already received.
	ErrDuplicate = errors.New("mode7: duplicate sequence number")
	// ErrSequence reports a packet that contradicts the train received so
	// far: a second last packet, or a sequence number past the last one.
	ErrSequence = errors.New("mode7: inconsistent sequence number")
	// ErrCapacity reports a packet dropped because the reassembly cap on
	// bytes was reached.
	ErrCapacity = errors.New("mode7: reassembly byte cap reached")
	// ErrIncomplete reports a reply with missing packets or without its
	// last packet.
	ErrIncomplete = errors.New("mode7: reply incomplete")
	// ErrNoEnd reports a reply whose 128 packets all had the more bit set.
	ErrNoEnd = errors.New("mode7: more bit never cleared")
)

// Impl is the implementation number of a Mode 7 packet.
type Impl uint8

// Implementation numbers (ntp_request.h). Only these three were ever
// defined; ntpd answers any other with [InfoErrImpl].
const (
	// ImplUniv is IMPL_UNIV; ntpd defines no request under it.
	ImplUniv Impl = 0
	// ImplXNTPDOld is IMPL_XNTPD_OLD, the pre-IPv6 ntpdc: replies use the
	// short IPv4-only item layouts and leave IPv6 entries out.
	ImplXNTPDOld Impl = 2
	// ImplXNTPD is IMPL_XNTPD, the IPv6-capable ntpdc of ntpd 4.2.x.
	ImplXNTPD Impl = 3
)

// String returns the ntp_request.h name of i.
func (i Impl) String() string {
	switch i {
	case ImplUniv:
		return "IMPL_UNIV"
	case ImplXNTPDOld:
		return "IMPL_XNTPD_OLD"
	case ImplXNTPD:
		return "IMPL_XNTPD"
	}
	return "IMPL_" + strconv.Itoa(int(i))
}

// Known reports whether i is one of the defined implementation numbers.
func (i Impl) Known() bool { return i == ImplUniv || i == ImplXNTPDOld || i == ImplXNTPD }

// InfoErr is the 4-bit error field of a reply (ntp_request.h INFO_ERR_*).
// It implements error, so a decoder can return it and callers can match it
// with [errors.As] or compare it with [errors.Is].
type InfoErr uint8

// Error codes a server puts in the err nibble.
const (
	// InfoOK is INFO_OKAY, no error.
	InfoOK InfoErr = 0
	// InfoErrImpl is INFO_ERR_IMPL: implementation number not supported.
	InfoErrImpl InfoErr = 1
	// InfoErrReq is INFO_ERR_REQ: request code not implemented.
	InfoErrReq InfoErr = 2
	// InfoErrFmt is INFO_ERR_FMT: malformed request.
	InfoErrFmt InfoErr = 3
	// InfoErrNoData is INFO_ERR_NODATA: no data. It is what ntpd ≥ 4.2.7p26
	// answers every monlist request with ("monlist disabled"), and what any
	// ntpd answers when monitoring is off or the list is empty.
	InfoErrNoData InfoErr = 4
	// InfoErrAuth is INFO_ERR_AUTH: authentication failure.
	InfoErrAuth InfoErr = 7
)

var infoErrNames = [16]string{
	0: "INFO_OKAY",
	1: "INFO_ERR_IMPL",
	2: "INFO_ERR_REQ",
	3: "INFO_ERR_FMT",
	4: "INFO_ERR_NODATA",
	7: "INFO_ERR_AUTH",
}

var infoErrText = [16]string{
	0: "no error",
	1: "implementation not supported",
	2: "request code not implemented",
	3: "format error",
	4: "no data available (monlist disabled or list empty)",
	7: "permission denied",
}

// String returns the ntp_request.h name of e, such as "INFO_ERR_NODATA".
func (e InfoErr) String() string {
	if int(e) < len(infoErrNames) && infoErrNames[e] != "" {
		return infoErrNames[e]
	}
	return "INFO_ERR_" + strconv.Itoa(int(e))
}

// Error describes e, for example
// "mode7: server error 4 (INFO_ERR_NODATA): no data available (monlist disabled or list empty)".
func (e InfoErr) Error() string {
	text := "undefined error code"
	if int(e) < len(infoErrText) && infoErrText[e] != "" {
		text = infoErrText[e]
	}
	return "mode7: server error " + strconv.Itoa(int(e)) + " (" + e.String() + "): " + text
}

// Header is the 8-octet Mode 7 header. The mode field is not stored: it is
// always 7.
type Header struct {
	Response bool    // R: the packet is a response
	More     bool    // M: more packets of this reply follow
	Version  uint8   // VN, 3 bits; requests use 1..4, replies echo the request
	Auth     bool    // A: the request carries a MAC
	Seq      uint8   // sequence number within a reply, 7 bits
	Impl     Impl    // implementation number
	Code     ReqCode // request code
	Err      InfoErr // error nibble, 4 bits
	NItems   uint16  // number of items, 12 bits
	MBZ      uint8   // must-be-zero nibble, 4 bits
	ItemSize uint16  // size of one item in octets, 12 bits
}

// AppendBinary appends the 8 octets of h to b. It returns [ErrFieldRange]
// when a field does not fit its bits.
func (h Header) AppendBinary(b []byte) ([]byte, error) {
	if h.Version > 7 || h.Seq > MaxSeq || h.Err > 15 || h.NItems > 0xfff || h.MBZ > 15 || h.ItemSize > 0xfff {
		return b, ErrFieldRange
	}
	return h.appendUnchecked(b), nil
}

func (h Header) appendUnchecked(b []byte) []byte {
	b0 := h.Version<<3 | 7
	if h.Response {
		b0 |= 0x80
	}
	if h.More {
		b0 |= 0x40
	}
	b1 := h.Seq
	if h.Auth {
		b1 |= 0x80
	}
	return append(b, b0, b1, byte(h.Impl), byte(h.Code),
		byte(h.Err)<<4|byte(h.NItems>>8), byte(h.NItems),
		h.MBZ<<4|byte(h.ItemSize>>8), byte(h.ItemSize))
}

// MarshalBinary returns the 8 octets of h.
func (h Header) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, HeaderLen))
}

// UnmarshalBinary decodes the header from the first [HeaderLen] octets of
// b and keeps nothing of b. It returns [ErrShort] when b is shorter than
// the header and [ErrMode] when the mode field is not 7; it checks nothing
// else (see [Packet.DecodeFromBytes] for the checks a reply must pass).
func (h *Header) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderLen {
		return ErrShort
	}
	_ = b[7]
	if b[0]&7 != 7 {
		return ErrMode
	}
	en := binary.BigEndian.Uint16(b[4:6])
	ms := binary.BigEndian.Uint16(b[6:8])
	// Field by field rather than a composite literal: the literal is built
	// octet by octet on the stack and copied with wide loads, which stalls
	// store forwarding and doubled the cost of decoding a packet.
	h.Response = b[0]&0x80 != 0
	h.More = b[0]&0x40 != 0
	h.Version = b[0] >> 3 & 7
	h.Auth = b[1]&0x80 != 0
	h.Seq = b[1] & 0x7f
	h.Impl = Impl(b[2])
	h.Code = ReqCode(b[3])
	h.Err = InfoErr(en >> 12)
	h.NItems = en & 0xfff
	h.MBZ = uint8(ms >> 12)
	h.ItemSize = ms & 0xfff
	return nil
}
