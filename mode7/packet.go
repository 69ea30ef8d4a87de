package mode7

import "iter"

// Packet is a decoded reply datagram: its header and its item data.
type Packet struct {
	Header
	// Data holds exactly NItems × ItemSize octets of items. After
	// DecodeFromBytes it aliases the decoded buffer.
	Data []byte
}

// DecodeFromBytes decodes a reply datagram into p. p.Data refers to b:
// copy it before b is reused.
//
// It checks, in this order, what ntpdc checks before it accepts a reply
// packet: the length ([ErrShort]), the mode ([ErrMode]), the response bit
// ([ErrNotResponse]), the version 1..4 ([ErrVersion]), the MBZ nibble and
// the authenticated bit ([ErrReserved]), that item count × item size fits
// both the datagram and the 500-octet data area ([ErrLength]), and that
// items are not of size 0 ([ErrItemSize]). Octets after the items are
// padding and are ignored.
//
// A well-formed reply whose err nibble is set decodes completely and
// returns that code as an [InfoErr], so callers tell "monlist disabled"
// (INFO_ERR_NODATA) from a malformed packet with [errors.As]. On any other
// error the header fields are unspecified and Data is nil.
func (p *Packet) DecodeFromBytes(b []byte) error {
	p.Data = nil
	if err := p.Header.UnmarshalBinary(b); err != nil {
		return err
	}
	switch {
	case !p.Response:
		return ErrNotResponse
	case p.Version < 1 || p.Version > 4:
		return ErrVersion
	case p.MBZ != 0 || p.Auth:
		return ErrReserved
	}
	n := int(p.NItems) * int(p.ItemSize)
	if n > MaxDataLen || n > len(b)-HeaderLen {
		return ErrLength
	}
	if p.NItems > 0 && p.ItemSize == 0 {
		return ErrItemSize
	}
	p.Data = b[HeaderLen : HeaderLen+n : HeaderLen+n]
	if p.Err != InfoOK {
		return p.Err
	}
	return nil
}

// AppendBinary appends the encoded packet to b. It returns [ErrLength]
// unless len(Data) is NItems × ItemSize and at most [MaxDataLen], and
// [ErrFieldRange] when a header field does not fit its bits.
func (p *Packet) AppendBinary(b []byte) ([]byte, error) {
	if len(p.Data) != int(p.NItems)*int(p.ItemSize) || len(p.Data) > MaxDataLen {
		return b, ErrLength
	}
	b, err := p.Header.AppendBinary(b)
	if err != nil {
		return b, err
	}
	return append(b, p.Data...), nil
}

// MarshalBinary returns the encoded packet.
func (p *Packet) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, HeaderLen+len(p.Data)))
}

// Item returns the octets of item i, or nil when i is out of range.
func (p *Packet) Item(i int) []byte {
	s := int(p.ItemSize)
	if i < 0 || i >= int(p.NItems) || (i+1)*s > len(p.Data) {
		return nil
	}
	return p.Data[i*s : (i+1)*s : (i+1)*s]
}

// EntryAt decodes item i as a [MonitorEntry]. It returns [ErrItemSize]
// when the item size is not a monitor-list layout and [ErrLength] when i
// is out of range.
func (p *Packet) EntryAt(i int) (MonitorEntry, error) {
	var e MonitorEntry
	if !IsMonitorItemSize(int(p.ItemSize)) {
		return e, ErrItemSize
	}
	it := p.Item(i)
	if it == nil {
		return e, ErrLength
	}
	err := e.UnmarshalBinary(it)
	return e, err
}

// Entries yields the packet's items decoded as monitor entries, in order,
// without allocating. When the item size is not a monitor-list layout it
// yields a single [ErrItemSize] and stops.
func (p *Packet) Entries() iter.Seq2[MonitorEntry, error] {
	return func(yield func(MonitorEntry, error) bool) {
		if !IsMonitorItemSize(int(p.ItemSize)) {
			yield(MonitorEntry{}, ErrItemSize)
			return
		}
		var e MonitorEntry
		for it := range chunks(p.Data, int(p.ItemSize)) {
			_ = e.UnmarshalBinary(it)
			if !yield(e, nil) {
				return
			}
		}
	}
}

// chunks yields the consecutive size-octet pieces of b, dropping a short
// tail.
func chunks(b []byte, size int) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(b) >= size && size > 0 {
			if !yield(b[:size:size]) {
				return
			}
			b = b[size:]
		}
	}
}
