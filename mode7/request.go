package mode7

import "strconv"

// ReqCode is a Mode 7 request code (ntp_request.h REQ_*).
type ReqCode uint8

// Request codes defined for implementations 2 and 3. Only the read-only
// queries among them can be built with [Request]; see [ReqCode.ReadOnly].
const (
	ReqPeerList        ReqCode = 0  // REQ_PEER_LIST: peer addresses (info_peer_list)
	ReqPeerListSum     ReqCode = 1  // REQ_PEER_LIST_SUM: peer summaries (info_peer_summary)
	ReqPeerInfo        ReqCode = 2  // REQ_PEER_INFO: details of given peers
	ReqPeerStats       ReqCode = 3  // REQ_PEER_STATS: statistics of given peers
	ReqSysInfo         ReqCode = 4  // REQ_SYS_INFO: system information (info_sys)
	ReqSysStats        ReqCode = 5  // REQ_SYS_STATS: system statistics
	ReqIOStats         ReqCode = 6  // REQ_IO_STATS: I/O statistics
	ReqMemStats        ReqCode = 7  // REQ_MEM_STATS: memory statistics
	ReqLoopInfo        ReqCode = 8  // REQ_LOOP_INFO: clock loop information
	ReqTimerStats      ReqCode = 9  // REQ_TIMER_STATS: timer statistics
	ReqConfig          ReqCode = 10 // REQ_CONFIG: add a peer (state-changing)
	ReqUnconfig        ReqCode = 11 // REQ_UNCONFIG: remove a peer (state-changing)
	ReqSetSysFlag      ReqCode = 12 // REQ_SET_SYS_FLAG (state-changing)
	ReqClrSysFlag      ReqCode = 13 // REQ_CLR_SYS_FLAG (state-changing)
	ReqMonitor         ReqCode = 14 // REQ_MONITOR (obsolete, state-changing)
	ReqNoMonitor       ReqCode = 15 // REQ_NOMONITOR (obsolete, state-changing)
	ReqGetRestrict     ReqCode = 16 // REQ_GET_RESTRICT: restriction list
	ReqResAddFlags     ReqCode = 17 // REQ_RESADDFLAGS (state-changing)
	ReqResSubFlags     ReqCode = 18 // REQ_RESSUBFLAGS (state-changing)
	ReqUnrestrict      ReqCode = 19 // REQ_UNRESTRICT (state-changing)
	ReqMonGetList      ReqCode = 20 // REQ_MON_GETLIST: monitor list, 48-octet items
	ReqResetStats      ReqCode = 21 // REQ_RESET_STATS (state-changing)
	ReqResetPeer       ReqCode = 22 // REQ_RESET_PEER (state-changing)
	ReqRereadKeys      ReqCode = 23 // REQ_REREAD_KEYS (state-changing)
	ReqDoDirtyHack     ReqCode = 24 // REQ_DO_DIRTY_HACK (obsolete)
	ReqDontDirtyHack   ReqCode = 25 // REQ_DONT_DIRTY_HACK (obsolete)
	ReqTrustKey        ReqCode = 26 // REQ_TRUSTKEY (state-changing)
	ReqUntrustKey      ReqCode = 27 // REQ_UNTRUSTKEY (state-changing)
	ReqAuthInfo        ReqCode = 28 // REQ_AUTHINFO: authentication statistics
	ReqTraps           ReqCode = 29 // REQ_TRAPS: trap list
	ReqAddTrap         ReqCode = 30 // REQ_ADD_TRAP (state-changing)
	ReqClrTrap         ReqCode = 31 // REQ_CLR_TRAP (state-changing)
	ReqRequestKey      ReqCode = 32 // REQ_REQUEST_KEY (state-changing)
	ReqControlKey      ReqCode = 33 // REQ_CONTROL_KEY (state-changing)
	ReqGetCtlStats     ReqCode = 34 // REQ_GET_CTLSTATS: control message statistics
	ReqGetLeapInfo     ReqCode = 35 // REQ_GET_LEAPINFO (unused)
	ReqGetClockInfo    ReqCode = 36 // REQ_GET_CLOCKINFO: reference clock details
	ReqSetClkFudge     ReqCode = 37 // REQ_SET_CLKFUDGE (state-changing)
	ReqGetKernel       ReqCode = 38 // REQ_GET_KERNEL: kernel PLL information
	ReqGetClkBugInfo   ReqCode = 39 // REQ_GET_CLKBUGINFO: reference clock debug data
	ReqSetPrecision    ReqCode = 41 // REQ_SET_PRECISION (unused)
	ReqMonGetList1     ReqCode = 42 // REQ_MON_GETLIST_1: monitor list, 72-octet items
	ReqHostnameAssocID ReqCode = 43 // REQ_HOSTNAME_ASSOCID
	ReqIfStats         ReqCode = 44 // REQ_IF_STATS: interface statistics
	ReqIfReload        ReqCode = 45 // REQ_IF_RELOAD (state-changing)
)

var reqNames = [...]string{
	0: "REQ_PEER_LIST", 1: "REQ_PEER_LIST_SUM", 2: "REQ_PEER_INFO", 3: "REQ_PEER_STATS",
	4: "REQ_SYS_INFO", 5: "REQ_SYS_STATS", 6: "REQ_IO_STATS", 7: "REQ_MEM_STATS",
	8: "REQ_LOOP_INFO", 9: "REQ_TIMER_STATS", 10: "REQ_CONFIG", 11: "REQ_UNCONFIG",
	12: "REQ_SET_SYS_FLAG", 13: "REQ_CLR_SYS_FLAG", 14: "REQ_MONITOR", 15: "REQ_NOMONITOR",
	16: "REQ_GET_RESTRICT", 17: "REQ_RESADDFLAGS", 18: "REQ_RESSUBFLAGS", 19: "REQ_UNRESTRICT",
	20: "REQ_MON_GETLIST", 21: "REQ_RESET_STATS", 22: "REQ_RESET_PEER", 23: "REQ_REREAD_KEYS",
	24: "REQ_DO_DIRTY_HACK", 25: "REQ_DONT_DIRTY_HACK", 26: "REQ_TRUSTKEY", 27: "REQ_UNTRUSTKEY",
	28: "REQ_AUTHINFO", 29: "REQ_TRAPS", 30: "REQ_ADD_TRAP", 31: "REQ_CLR_TRAP",
	32: "REQ_REQUEST_KEY", 33: "REQ_CONTROL_KEY", 34: "REQ_GET_CTLSTATS", 35: "REQ_GET_LEAPINFO",
	36: "REQ_GET_CLOCKINFO", 37: "REQ_SET_CLKFUDGE", 38: "REQ_GET_KERNEL", 39: "REQ_GET_CLKBUGINFO",
	41: "REQ_SET_PRECISION", 42: "REQ_MON_GETLIST_1", 43: "REQ_HOSTNAME_ASSOCID",
	44: "REQ_IF_STATS", 45: "REQ_IF_RELOAD",
}

// String returns the ntp_request.h name of c, such as "REQ_MON_GETLIST_1".
func (c ReqCode) String() string {
	if int(c) < len(reqNames) && reqNames[c] != "" {
		return reqNames[c]
	}
	return "REQ_" + strconv.Itoa(int(c))
}

// ReadOnly reports whether c is a query that reads state, needs no request
// data and changes nothing on the server: the monitor lists (20, 42), peer
// list and summary, system information and statistics, I/O, memory,
// timer, loop, kernel and interface statistics, control statistics,
// authentication statistics and the restriction list. Configuration, key,
// trap and reset codes are not read-only, and neither are the queries that
// need request items (peer info and statistics, clock info).
func (c ReqCode) ReadOnly() bool {
	switch c {
	case ReqPeerList, ReqPeerListSum, ReqSysInfo, ReqSysStats, ReqIOStats, ReqMemStats,
		ReqLoopInfo, ReqTimerStats, ReqGetRestrict, ReqMonGetList, ReqAuthInfo,
		ReqGetCtlStats, ReqGetKernel, ReqMonGetList1, ReqIfStats:
		return true
	}
	return false
}

// IsMonitorList reports whether c asks for the monitor list
// ([ReqMonGetList] or [ReqMonGetList1]).
func (c ReqCode) IsMonitorList() bool { return c == ReqMonGetList || c == ReqMonGetList1 }

// Request sizes a client may send. Every size carries the 8-octet header
// followed by zeros; ntpd 4.2.x accepts any request of at least 8 octets.
const (
	// RequestLenMin is the bare header, the smallest request ntpd 4.2.x
	// answers.
	RequestLenMin = HeaderLen
	// RequestLen is the size nmap, masscan, zgrab2 and Metasploit send:
	// the header, the 32-octet data area of 1999-era ntpd and an 8-octet
	// timestamp slot. It is the default.
	RequestLen = 48
	// RequestLenNTPDC is what ntpdc 4.2.x and zmap's probe send
	// (REQ_LEN_NOMAC: header, 176-octet data area, timestamp).
	RequestLenNTPDC = 192
)

// Request describes a read-only Mode 7 query. Build one with
// [NewRequest] to get the usual defaults, then change fields as needed.
type Request struct {
	// Code is the request code; it must be read-only ([ReqCode.ReadOnly]).
	Code ReqCode
	// Impl is the implementation number: ImplUniv, ImplXNTPDOld or
	// ImplXNTPD. Its zero value is ImplUniv, which ntpd answers with
	// INFO_ERR_REQ; [NewRequest] sets ImplXNTPD.
	Impl Impl
	// Version is the version number, 1..4; 0 means 2, the version ntpdc,
	// nmap and masscan send.
	Version uint8
	// Size is the request length: RequestLenMin, RequestLen or
	// RequestLenNTPDC; 0 means RequestLen (48 octets).
	Size int
}

// NewRequest returns the request that ntpdc's first attempt and most
// scanners send for code: version 2, implementation 3, 48 octets.
func NewRequest(code ReqCode) Request {
	return Request{Code: code, Impl: ImplXNTPD, Version: 2, Size: RequestLen}
}

// Header returns the header that starts r, with defaults applied.
func (r Request) Header() Header {
	v := r.Version
	if v == 0 {
		v = 2
	}
	return Header{Version: v, Impl: r.Impl, Code: r.Code}
}

// Len returns the number of octets r encodes to, with defaults applied.
func (r Request) Len() int {
	if r.Size == 0 {
		return RequestLen
	}
	return r.Size
}

// Validate reports whether r can be sent: [ErrRequestCode] for a code
// that is not read-only, [ErrFieldRange] for a version, implementation or
// size outside the allowed values.
func (r Request) Validate() error {
	if !r.Code.ReadOnly() {
		return ErrRequestCode
	}
	if r.Version > 4 || (r.Impl != ImplUniv && r.Impl != ImplXNTPDOld && r.Impl != ImplXNTPD) {
		return ErrFieldRange
	}
	switch r.Len() {
	case RequestLenMin, RequestLen, RequestLenNTPDC:
		return nil
	}
	return ErrFieldRange
}

// AppendBinary appends the encoded request to b: the header (R, M, A,
// sequence, err, item count, MBZ and item size all zero) padded with
// zeros to the request size.
func (r Request) AppendBinary(b []byte) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return b, err
	}
	b = r.Header().appendUnchecked(b)
	return append(b, zeros[:r.Len()-HeaderLen]...), nil
}

// zeros is the padding of the longest request; it is never written.
var zeros [RequestLenNTPDC - HeaderLen]byte

// MarshalBinary returns the encoded request.
func (r Request) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, r.Len()))
}

// AppendRequest appends the encoding of r to b; it is [Request.AppendBinary]
// as a function, for symmetry with the other Append functions.
func AppendRequest(b []byte, r Request) ([]byte, error) { return r.AppendBinary(b) }

// Matches reports whether the reply header h answers r: same
// implementation and request code. (Mode 7 has no request identifier; a
// client also checks the source address and port.)
func (r Request) Matches(h *Header) bool { return h.Impl == r.Impl && h.Code == r.Code }
