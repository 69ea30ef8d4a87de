package mode6

// ReplyBuilder writes a reply the way ntpd's ctl_putdata and ctl_flushpkt
// do (ntp.org 4.2.x and ntpsec alike), so that a simulated server given
// the same variables sends the same octets as the real one:
//
//   - text items are separated by ", " or ",\r\n" (folded where the line
//     would reach 72 characters, never inside an item);
//   - an item that does not fit in the 468-octet data area with 3 octets
//     to spare is cut at an arbitrary octet and continues in the next
//     fragment, which then has the more bit;
//   - the last fragment of a text reply ends with CR LF;
//   - each datagram is padded to a multiple of 4 octets.
//
// The zero value is ready after Reset. A ReplyBuilder is not safe for
// concurrent use.
type ReplyBuilder struct {
	h       Header
	text    []byte // all the data so far
	cuts    []int  // ends of the fragments already closed
	lineLen int
	sent    bool
	isText  bool
	closed  bool
}

// maxBuilt keeps the reply within 16-bit offsets: items that would start
// past it are left out.
const maxBuilt = 0xffff - MaxDataLen

// Reset starts a reply with header h for every fragment (its More,
// Offset and Count are set per fragment).
func (rb *ReplyBuilder) Reset(h Header) {
	*rb = ReplyBuilder{h: h, text: rb.text[:0], cuts: rb.cuts[:0]}
}

// Fragments returns the number of fragments the reply has so far, the
// one being filled included (ntpd's res_frags, which read_mru_list
// compares with the request's frags=).
func (rb *ReplyBuilder) Fragments() int { return len(rb.cuts) + 1 }

func (rb *ReplyBuilder) fragLen() int {
	if len(rb.cuts) == 0 {
		return len(rb.text)
	}
	return len(rb.text) - rb.cuts[len(rb.cuts)-1]
}

// put copies item into the data, cutting fragments as ctl_putdata does:
// while the item and overhead octets do not fit, fill the fragment with
// what fits and close it.
func (rb *ReplyBuilder) put(item []byte, overhead int) {
	for len(item)+overhead+rb.fragLen() > MaxDataLen {
		n := min(len(item), MaxDataLen-rb.fragLen())
		rb.text = append(rb.text, item[:n]...)
		item = item[n:]
		rb.lineLen += n
		rb.cuts = append(rb.cuts, len(rb.text))
	}
	rb.text = append(rb.text, item...)
	rb.lineLen += len(item)
}

// PutVar appends one variable. Variables that would start past 65,067
// octets of data (where 16-bit offsets end) are left out.
func (rb *ReplyBuilder) PutVar(v Var) {
	if rb.closed || len(rb.text) > maxBuilt {
		return
	}
	rb.isText = true
	n := v.itemLen()
	if rb.sent {
		rb.text = separator(rb.text, n, &rb.lineLen)
	}
	var buf [128]byte
	rb.put(v.appendItem(buf[:0]), 3)
	rb.sent = true
}

// PutVars appends every variable of vs.
func (rb *ReplyBuilder) PutVars(vs Vars) {
	for i := range vs {
		rb.PutVar(vs[i])
	}
}

// PutBinary appends binary data (the association list of a READSTAT
// reply): no separators, no trailing CR LF. Data past 16-bit offsets is
// left out.
func (rb *ReplyBuilder) PutBinary(b []byte) {
	if rb.closed {
		return
	}
	rb.put(b[:min(len(b), max(0, 0xffff-len(rb.text)))], 0)
}

// Data returns the reply data written so far, without the trailing
// CR LF a text reply gets when it is closed.
func (rb *ReplyBuilder) Data() []byte { return rb.text }

// AppendPackets closes the reply (later Put calls are ignored until
// Reset) and appends one datagram per fragment to pkts, reusing the
// capacity of pkts' spare elements; calling it again appends the same
// datagrams. Padding octets
// are zero, as ntp.org's ntpd writes them, unless stale is given: then
// each datagram is laid over stale (a 480-octet buffer standing for the
// server's static send buffer, updated in place), so its padding holds
// whatever the previous datagrams left there, as ntpsec sends it.
func (rb *ReplyBuilder) AppendPackets(pkts [][]byte, stale []byte) [][]byte {
	if rb.isText && !rb.closed {
		rb.text = append(rb.text, '\r', '\n')
	}
	rb.closed = true
	start := 0
	bounds := append(rb.cuts, len(rb.text))
	for i, end := range bounds {
		h := rb.h
		h.More = i < len(bounds)-1
		h.Offset, h.Count = uint16(start), uint16(end-start)
		if len(pkts) < cap(pkts) {
			pkts = pkts[:len(pkts)+1]
		} else {
			pkts = append(pkts, make([]byte, 0, MaxPacketLen))
		}
		b := h.appendUnchecked(pkts[len(pkts)-1][:0])
		b = append(b, rb.text[start:end]...)
		pad := (4 - len(b)&3) & 3
		if len(stale) >= len(b)+pad {
			b = append(b, stale[len(b):len(b)+pad]...)
			copy(stale, b)
		} else {
			b = append(b, zeros[:pad]...)
		}
		pkts[len(pkts)-1] = b
		start = end
	}
	return pkts
}

// AppendErrorReply appends the reply a server sends for an error: the
// request's version, opcode, sequence number and association, the E bit,
// code in the high octet of the status word and no data. leap is the
// server's leap indicator.
func AppendErrorReply(b []byte, req Header, leap uint8, code ServerError) []byte {
	h := Header{Leap: leap & 3, Version: req.Version & 7, Response: true, Error: true, Op: req.Op & 0x1f,
		Seq: req.Seq, Status: uint16(code) << 8, AssocID: req.AssocID}
	return h.appendUnchecked(b)
}
