package mode6

// Request describes a read-only Mode 6 query. The zero value with Op set
// to OpReadVar is `ntpq -c rv` with sequence 0.
type Request struct {
	// Op is the opcode: OpReadVar, OpReadStat or OpReadClock.
	Op Op
	// Seq is the sequence number the reply must echo. A scanner derives it
	// per target so stale or spoofed replies do not match.
	Seq uint16
	// AssocID selects the association: 0 for the server itself.
	AssocID uint16
	// Version is the version number, 1..4; 0 means 2, what ntp.org's
	// ntpq and nmap send.
	Version uint8
	// Leap is the LI field; servers ignore it. ntp.org's ntpq sends 0,
	// ntpsec's ntpq 3.
	Leap uint8
	// Names lists the variables to read; empty asks for the default set.
	// Each name must be printable ASCII without ',', '=', '"' or blanks.
	Names []string
}

// Header returns the header of r, with defaults applied and Count set to
// the length of the name list (meaningful when Validate accepts r).
func (r Request) Header() Header {
	v := r.Version
	if v == 0 {
		v = 2
	}
	return Header{Leap: r.Leap, Version: v, Op: r.Op, Seq: r.Seq, AssocID: r.AssocID, Count: uint16(r.dataLen())}
}

// dataLen is the length of "a,b,c".
func (r Request) dataLen() int {
	n := 0
	for i, name := range r.Names {
		if i > 0 {
			n++
		}
		n += len(name)
	}
	return n
}

// Len returns the length of the encoded request: the header and the name
// list padded to a multiple of 4 octets.
func (r Request) Len() int { return HeaderLen + (r.dataLen()+3)&^3 }

// Validate reports whether r can be sent: [ErrOpcode] for an opcode that
// is not read-only, [ErrFieldRange] for a version above 4 or LI above 3,
// [ErrName] for a bad name and [ErrLength] for a list longer than 468
// octets.
func (r Request) Validate() error {
	if !r.Op.ReadOnly() {
		return ErrOpcode
	}
	if r.Version > 4 || r.Leap > 3 {
		return ErrFieldRange
	}
	for _, name := range r.Names {
		if !validName(name) {
			return ErrName
		}
	}
	if r.dataLen() > MaxDataLen {
		return ErrLength
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c > '~' || c == ',' || c == '=' || c == '"' {
			return false
		}
	}
	return true
}

// AppendBinary appends the encoded request to b: the header, then the
// names joined by commas (count excludes the padding), then zeros to a
// multiple of 4 octets.
func (r Request) AppendBinary(b []byte) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return b, err
	}
	h := r.Header()
	b = h.appendUnchecked(b)
	for i, name := range r.Names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, name...)
	}
	return append(b, zeros[:(4-int(h.Count)&3)&3]...), nil
}

var zeros [4]byte // padding; never written

// MarshalBinary returns the encoded request.
func (r Request) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, r.Len()))
}

// AppendReadVar appends a READVAR request for association assoc with
// sequence number seq (version 2, LI 0, as ntp.org's ntpq sends it).
// Names select variables; none asks for the default set.
func AppendReadVar(b []byte, seq, assoc uint16, names ...string) ([]byte, error) {
	return Request{Op: OpReadVar, Seq: seq, AssocID: assoc, Names: names}.AppendBinary(b)
}

// Matches reports whether the reply header h answers r: same sequence
// number and opcode. (ntpq tolerates a different association ID.)
func (r Request) Matches(h *Header) bool { return h.Seq == r.Seq && h.Op == r.Op }
