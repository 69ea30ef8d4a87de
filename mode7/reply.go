package mode7

// AppendErrorReply appends the reply ntpd sends for an error (req_ack):
// the bare 8-octet header with the response bit, sequence 0, the
// request's version, implementation and code, and code in the err nibble.
func AppendErrorReply(b []byte, req Header, code InfoErr) []byte {
	h := Header{Response: true, Version: req.Version & 7, Impl: req.Impl, Code: req.Code, Err: code & 15}
	return h.appendUnchecked(b)
}

// AppendMonitorReply encodes the reply ntpd 4.2.6 sends to the monitor-list
// request req for the given entries (newest first), and appends one
// datagram per packet to pkts. It reuses the capacity of pkts' spare
// elements, so a caller that keeps pkts between calls allocates nothing.
//
// It packetises as ntpd's more_pkt/flush_pkt do: the item size follows the
// request code and implementation ([MonitorItemSize]); IPv6 entries are
// left out for implementation 2; each packet carries as many whole items
// as fit in 500 octets; sequence numbers count from 0 and every packet but
// the last has the more bit; the last packet is never empty; at most 128
// packets are produced and the rest of the list is lost. With no entry to
// send the reply is INFO_ERR_NODATA. The list is not cut at
// [MaxMonitorEntries]: that is the server's policy, not the encoder's.
//
// It returns [ErrRequestCode] when req is not a monitor-list request, and
// an entry's encoding error.
func AppendMonitorReply(pkts [][]byte, req Header, entries []MonitorEntry) ([][]byte, error) {
	size := MonitorItemSize(req.Code, req.Impl)
	if size == 0 {
		return pkts, ErrRequestCode
	}
	perPacket := MaxDataLen / size
	v4only := size == ItemSizeMonitor1V4 || size == ItemSizeMonitorV4
	h := Header{Response: true, Version: req.Version & 7, Impl: req.Impl, Code: req.Code, ItemSize: uint16(size)}
	start := len(pkts)
	var cur []byte
	var err error
	for i := range entries {
		e := &entries[i]
		if v4only && !e.Addr.Is4() {
			continue
		}
		if cur != nil && int(h.NItems) == perPacket {
			if h.Seq == MaxSeq {
				break
			}
			h.More = true
			h.appendUnchecked(cur[:0]) // rewrite the header in place
			h.Seq++
			cur = nil
		}
		if cur == nil {
			pkts = nextBuf(pkts)
			cur = append(pkts[len(pkts)-1][:0], make([]byte, HeaderLen)...)
			h.NItems, h.More = 0, false
		}
		if cur, err = e.AppendItem(cur, size); err != nil {
			return pkts[:start], err
		}
		h.NItems++
		pkts[len(pkts)-1] = cur
	}
	if cur == nil {
		pkts = nextBuf(pkts)
		pkts[len(pkts)-1] = AppendErrorReply(pkts[len(pkts)-1][:0], req, InfoErrNoData)
		return pkts, nil
	}
	h.More = false
	h.appendUnchecked(cur[:0])
	return pkts, nil
}

// nextBuf extends pkts by one element, reusing a spare element's array.
func nextBuf(pkts [][]byte) [][]byte {
	if len(pkts) < cap(pkts) {
		pkts = pkts[:len(pkts)+1]
		pkts[len(pkts)-1] = pkts[len(pkts)-1][:0]
		return pkts
	}
	return append(pkts, make([]byte, 0, MaxPacketLen))
}
