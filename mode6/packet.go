package mode6

// Packet is a decoded reply fragment: its header and its data.
type Packet struct {
	Header
	// Data holds the Count octets of data. After DecodeFromBytes it
	// aliases the decoded buffer.
	Data []byte
	// Trailer holds what follows the data in the datagram: padding
	// (which ntpsec fills with stale octets) and, for authenticated
	// replies, key ID and MAC. It aliases the decoded buffer.
	Trailer []byte
}

// DecodeFromBytes decodes a reply datagram into p. p.Data and p.Trailer
// refer to b: copy them before b is reused.
//
// It checks the length ([ErrShort]), the mode ([ErrMode]), the response
// bit ([ErrNotResponse]), the version 1..4 ([ErrVersion]), that count is
// at most 468 ([ErrLength]) and that the datagram holds count octets
// ([ErrTruncated]). It does not demand padding to 4 octets, which ntpq
// does; see Reassembler.StrictPadding.
//
// A well-formed error reply (E bit) decodes completely and returns its
// code as a [ServerError]. On any other error Data and Trailer are nil and
// the header fields are unspecified.
func (p *Packet) DecodeFromBytes(b []byte) error {
	p.Data, p.Trailer = nil, nil
	if err := p.Header.UnmarshalBinary(b); err != nil {
		return err
	}
	switch {
	case !p.Response:
		return ErrNotResponse
	case p.Version < 1 || p.Version > 4:
		return ErrVersion
	case p.Count > MaxDataLen:
		return ErrLength
	case int(p.Count) > len(b)-HeaderLen:
		return ErrTruncated
	}
	end := HeaderLen + int(p.Count)
	p.Data = b[HeaderLen:end:end]
	p.Trailer = b[end:len(b):len(b)]
	if p.Error {
		return ServerError(p.Status >> 8)
	}
	return nil
}

// AppendBinary appends the encoded fragment: header, data and zero
// padding to a multiple of 4 octets (Trailer is not written). Count is
// taken from len(Data); it returns [ErrLength] for more than 468 octets
// and [ErrFieldRange] for header fields that do not fit.
func (p *Packet) AppendBinary(b []byte) ([]byte, error) {
	if len(p.Data) > MaxDataLen {
		return b, ErrLength
	}
	h := p.Header
	h.Count = uint16(len(p.Data))
	b, err := h.AppendBinary(b)
	if err != nil {
		return b, err
	}
	b = append(b, p.Data...)
	return append(b, zeros[:(4-len(p.Data)&3)&3]...), nil
}

// MarshalBinary returns the encoded fragment.
func (p *Packet) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, HeaderLen+len(p.Data)+3))
}

// AssocStatus is one association in the binary list a READSTAT of
// association 0 returns: its ID and its peer status word.
type AssocStatus struct {
	AssocID uint16
	Status  PeerStatus
}

// AppendAssocStatuses appends the (association ID, status) pairs of a
// READSTAT reply's data to dst; a trailing partial pair is ignored.
func AppendAssocStatuses(dst []AssocStatus, data []byte) []AssocStatus {
	for ; len(data) >= 4; data = data[4:] {
		dst = append(dst, AssocStatus{
			AssocID: uint16(data[0])<<8 | uint16(data[1]),
			Status:  PeerStatusOf(uint16(data[2])<<8 | uint16(data[3])),
		})
	}
	return dst
}
