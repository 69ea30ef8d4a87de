package ntpsim

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/ntpctl/ntpctl/mode6"
)

// mode3 answers a client request (mode 3) with a server reply (mode 4),
// as ntpd's fast_xmit does: the request's version and poll, the origin
// timestamp the request's transmit one, and the system's leap indicator,
// stratum, precision, root delay and dispersion, reference ID and time
// (from System).
func (h *Host) mode3(req []byte, src netip.AddrPort, dst netip.Addr, out *outbox) {
	if h.NoTime || len(req) < 48 {
		return
	}
	h.init()
	if !h.NoMRU {
		h.heard(src, 3, req[0]>>3&7)
	}
	now := mode6.TimestampOf(h.now())
	// Built in the outbox's scratch room, which send copies from.
	if len(out.scratch) == 0 {
		out.scratch = append(out.scratch, make([]byte, 0, mode6.MaxPacketLen))
	}
	b := append(out.scratch[0][:0], h.timeTemplate()...)
	out.scratch[0] = b
	b[0] = b[0]&0xc0 | req[0]&0x38 | 4 // the request's version, mode 4
	b[2] = max(req[2], 6)              // poll: the client's, at least ntpd's minpoll
	copy(b[24:32], req[40:48])         // origin: the request's transmit timestamp
	binary.BigEndian.PutUint64(b[32:], uint64(now))
	binary.BigEndian.PutUint64(b[40:], uint64(now))
	h.emit(h.Hostile.mangle(out.scratch[:1]), src, dst, out)
}

// timeTemplate is the host's mode 4 reply without its per-request
// fields, built once from its system variables.
func (h *Host) timeTemplate() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.time != nil {
		return h.time
	}
	b := make([]byte, 48)
	b[0] = byte(h.Status>>14) << 6
	get := func(name string) string { v, _ := h.System.Lookup(name); return v }
	stratum, err := strconv.Atoi(get("stratum"))
	if err != nil || stratum < 0 || stratum > 16 {
		stratum = 16
	}
	b[1] = byte(stratum)
	if p, err := strconv.Atoi(get("precision")); err == nil && p >= -128 && p <= 127 {
		b[3] = byte(int8(p))
	}
	short := func(ms string) uint32 {
		f, err := strconv.ParseFloat(ms, 64)
		if err != nil || !(f >= 0 && f < 65536e3) {
			return 0
		}
		return uint32(f / 1e3 * 65536)
	}
	binary.BigEndian.PutUint32(b[4:], short(get("rootdelay")))
	disp := get("rootdisp")
	if disp == "" {
		disp = get("rootdispersion")
	}
	binary.BigEndian.PutUint32(b[8:], short(disp))
	ref := get("refid")
	if a, err := netip.ParseAddr(ref); err == nil && a.Is4() && stratum > 1 {
		a4 := a.As4()
		copy(b[12:16], a4[:])
	} else {
		copy(b[12:16], ref)
	}
	if ts, err := mode6.ParseTimestamp(get("reftime")); err == nil {
		binary.BigEndian.PutUint64(b[16:], uint64(ts))
	}
	h.time = b
	return b
}
