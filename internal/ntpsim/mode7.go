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
	// Dropped without a word (docs/wire-spec.md §1.6): replies, trains, bad
	// versions, sequence, error or MBZ set. A reply to our own reply never
	// goes out, so two servers cannot ping-pong (CVE-2009-3563).
	if hd.Response || hd.More || hd.Version < 1 || hd.Version > 4 || hd.Seq != 0 || hd.Err != 0 || hd.MBZ != 0 {
		return
	}
	if h.Mode7 == Mode7Monlist && !h.AcceptLowPorts && src.Port() < 123 {
		return
	}
	h.init()
	code := checkRequest(&hd, len(req))
	if code == mode7.InfoOK && hd.Code.IsMonitorList() && h.Mode7 == Mode7Monlist {
		h.emit(h.monlist(hd), src, dst, out)
		return
	}
	if code == mode7.InfoOK {
		// monlist on ≥ 4.2.7p26; everything else: only the monitor list
		// is simulated, the other queries find nothing to report.
		code = mode7.InfoErrNoData
	}
	h.emit(h.errorReply(hd, code), src, dst, out)
}

// errorReply returns the (cached) error reply to hd.
func (h *Host) errorReply(hd mode7.Header, code mode7.InfoErr) [][]byte {
	key := replyKey{hd.Version, hd.Impl, hd.Code, code}
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.cache[key]; ok {
		return p
	}
	p := h.Hostile.mangle([][]byte{mode7.AppendErrorReply(nil, hd, code)})
	h.cache[key] = p
	return p
}

// request describes one entry of ntpd's ntp_codes table: whether the code
// needs authentication and which request item sizes it takes (0: none;
// anySize: any non-zero size, where the struct size is not simulated).
type request struct {
	auth  bool
	sizes [2]uint16
}

const anySize = 0xffff

// codes mirrors ntp_request.c's ntp_codes table (4.2.x, built with
// KERNEL_PLL and REFCLOCK) for implementations 2 and 3.
var codes = map[mode7.ReqCode]request{
	mode7.ReqPeerList:      {},
	mode7.ReqPeerListSum:   {},
	mode7.ReqPeerInfo:      {sizes: [2]uint16{8, 32}},
	mode7.ReqPeerStats:     {sizes: [2]uint16{8, 32}},
	mode7.ReqSysInfo:       {},
	mode7.ReqSysStats:      {},
	mode7.ReqIOStats:       {},
	mode7.ReqMemStats:      {},
	mode7.ReqLoopInfo:      {},
	mode7.ReqTimerStats:    {},
	mode7.ReqConfig:        {auth: true, sizes: [2]uint16{anySize, anySize}},
	mode7.ReqUnconfig:      {auth: true, sizes: [2]uint16{anySize, anySize}},
	mode7.ReqSetSysFlag:    {auth: true, sizes: [2]uint16{4, 4}},
	mode7.ReqClrSysFlag:    {auth: true, sizes: [2]uint16{4, 4}},
	mode7.ReqGetRestrict:   {},
	mode7.ReqResAddFlags:   {auth: true, sizes: [2]uint16{anySize, anySize}},
	mode7.ReqResSubFlags:   {auth: true, sizes: [2]uint16{anySize, anySize}},
	mode7.ReqUnrestrict:    {auth: true, sizes: [2]uint16{anySize, anySize}},
	mode7.ReqMonGetList:    {},
	mode7.ReqMonGetList1:   {},
	mode7.ReqResetStats:    {auth: true, sizes: [2]uint16{4, 0}},
	mode7.ReqResetPeer:     {auth: true, sizes: [2]uint16{anySize, anySize}},
	mode7.ReqRereadKeys:    {auth: true},
	mode7.ReqTrustKey:      {auth: true, sizes: [2]uint16{4, 8}},
	mode7.ReqUntrustKey:    {auth: true, sizes: [2]uint16{4, 8}},
	mode7.ReqAuthInfo:      {},
	mode7.ReqTraps:         {},
	mode7.ReqAddTrap:       {auth: true, sizes: [2]uint16{anySize, anySize}},
	mode7.ReqClrTrap:       {auth: true, sizes: [2]uint16{anySize, anySize}},
	mode7.ReqRequestKey:    {auth: true, sizes: [2]uint16{4, 8}},
	mode7.ReqControlKey:    {auth: true, sizes: [2]uint16{4, 8}},
	mode7.ReqGetCtlStats:   {},
	mode7.ReqGetKernel:     {},
	mode7.ReqGetClockInfo:  {sizes: [2]uint16{4, 4}},
	mode7.ReqSetClkFudge:   {auth: true, sizes: [2]uint16{anySize, anySize}},
	mode7.ReqGetClkBugInfo: {sizes: [2]uint16{4, 4}},
	mode7.ReqIfStats:       {auth: true},
	mode7.ReqIfReload:      {auth: true},
}

// checkRequest applies process_private's checks, in its order, to a
// request that passed the sanity checks: implementation, request code,
// item size, data length, authentication. It returns InfoOK when the
// handler would run.
func checkRequest(hd *mode7.Header, length int) mode7.InfoErr {
	switch hd.Impl {
	case mode7.ImplUniv:
		return mode7.InfoErrReq // the universal table is empty
	case mode7.ImplXNTPD, mode7.ImplXNTPDOld:
	default:
		return mode7.InfoErrImpl
	}
	rq, ok := codes[hd.Code]
	if !ok {
		return mode7.InfoErrReq
	}
	size := hd.ItemSize
	sizeOK := size == rq.sizes[0] || size == rq.sizes[1] ||
		(size != 0 && (rq.sizes[0] == anySize || rq.sizes[1] == anySize))
	if !sizeOK {
		return mode7.InfoErrFmt
	}
	if rq.sizes[0] != 0 && int(size)*int(hd.NItems) > length-mode7.HeaderLen {
		return mode7.InfoErrFmt
	}
	if rq.auth {
		return mode7.InfoErrAuth // no request key is configured
	}
	return mode7.InfoOK
}

// monlist returns the reply datagrams for a monitor-list request, built
// once per (version, implementation, code) and cached.
func (h *Host) monlist(req mode7.Header) [][]byte {
	key := replyKey{req.Version, req.Impl, req.Code, mode7.InfoOK}
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
	for start := 0; start < len(clients); start += chunk {
		pkts, err := mode7.AppendMonitorReply(nil, req, clients[start:min(start+chunk, len(clients))])
		if err != nil {
			return nil, err
		}
		if len(pkts) == 1 && len(pkts[0]) == mode7.HeaderLen {
			continue // nothing in this chunk for this implementation
		}
		all = append(all, pkts...)
	}
	if len(all) == 0 {
		return [][]byte{mode7.AppendErrorReply(nil, req, mode7.InfoErrNoData)}, nil
	}
	for _, b := range all[:len(all)-1] {
		b[0] |= 0x40 // only the very last packet ends the train
	}
	return all, nil
}
