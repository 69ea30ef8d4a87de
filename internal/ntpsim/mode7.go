package ntpsim

import (
	"net/netip"

	"github.com/ntpctl/ntpctl/mode7"
)

// mode7 answers a Mode 7 request the way ntpd 4.2.6's process_private
// does, for the host's personality.
func (h *Host) mode7(req []byte, src netip.AddrPort, dst netip.Addr, out *outbox) {
	if h.Mode7 == Mode7Silent {
		return
	}
	var hd mode7.Header
	if hd.UnmarshalBinary(req) != nil {
		return
	}
	// Dropped without a word (ntp_request.c; wire spec §1.6): replies,
	// trains, bad versions, sequence, error or MBZ set. A scanner's reply
	// never gets an answer, so two servers cannot ping-pong.
	if hd.Response || hd.More || hd.Version < 1 || hd.Version > 4 || hd.Seq != 0 || hd.Err != 0 || hd.MBZ != 0 {
		return
	}
	if !h.AcceptLowPorts && src.Port() < 123 {
		return
	}
	h.init()
	var code mode7.InfoErr
	switch {
	case hd.Impl == mode7.ImplUniv:
		code = mode7.InfoErrReq
	case hd.Impl != mode7.ImplXNTPD && hd.Impl != mode7.ImplXNTPDOld:
		code = mode7.InfoErrImpl
	case hd.Code.IsMonitorList():
		if hd.ItemSize != 0 {
			code = mode7.InfoErrFmt
			break
		}
		if h.Mode7 == Mode7NoData {
			code = mode7.InfoErrNoData
			break
		}
		h.emit(h.monlist(hd), src, dst, out)
		return
	case hd.Code.ReadOnly():
		// Only the monitor list is simulated; the other queries find
		// nothing to report.
		code = mode7.InfoErrNoData
	case knownCode(hd.Code):
		code = mode7.InfoErrAuth
	default:
		code = mode7.InfoErrReq
	}
	h.emit(h.Hostile.mangle([][]byte{mode7.AppendErrorReply(nil, hd, code)}), src, dst, out)
}

// knownCode reports whether ntpd 4.2.6 has a handler for c.
func knownCode(c mode7.ReqCode) bool {
	return c <= mode7.ReqIfReload && c != 40 && c != mode7.ReqDoDirtyHack && c != mode7.ReqDontDirtyHack &&
		c != mode7.ReqMonitor && c != mode7.ReqNoMonitor && c != mode7.ReqGetLeapInfo &&
		c != mode7.ReqSetPrecision && c != mode7.ReqHostnameAssocID
}

// monlist returns the reply datagrams for a monitor-list request, built
// once per (version, implementation, code) and cached.
func (h *Host) monlist(req mode7.Header) [][]byte {
	key := replyKey{req.Version, req.Impl, req.Code}
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.cache[key]; ok {
		return p
	}
	clients := h.Clients[:min(len(h.Clients), mode7.MaxMonitorEntries)]
	var pkts [][]byte
	var err error
	if h.Hostile.WrapSeq {
		pkts, err = wrapped(req, h.Clients)
	} else {
		pkts, err = mode7.AppendMonitorReply(nil, req, clients)
	}
	if err != nil {
		pkts = [][]byte{mode7.AppendErrorReply(nil, req, mode7.InfoErrNoData)}
	}
	pkts = h.Hostile.mangle(pkts)
	h.cache[key] = pkts
	return pkts
}

// wrapped packetises the whole table in trains of 128 packets whose
// sequence numbers start again at 0; only the very last packet lacks the
// more bit.
func wrapped(req mode7.Header, clients []mode7.MonitorEntry) ([][]byte, error) {
	size := mode7.MonitorItemSize(req.Code, req.Impl)
	chunk := mode7.MaxPackets * (mode7.MaxDataLen / size)
	var all [][]byte
	for start := 0; start < len(clients) || start == 0; start += chunk {
		pkts, err := mode7.AppendMonitorReply(nil, req, clients[start:min(start+chunk, len(clients))])
		if err != nil {
			return nil, err
		}
		if start+chunk < len(clients) {
			pkts[len(pkts)-1][0] |= 0x40
		}
		all = append(all, pkts...)
	}
	return all, nil
}
