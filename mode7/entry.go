package mode7

import (
	"encoding/binary"
	"net/netip"
)

// Item sizes of the monitor-list layouts ntpd has sent. ntpdc picks the
// layout from the item size of the reply, not from the request code, and
// so does this package.
const (
	// ItemSizeMonitor1 is struct info_monitor_1, the REQ_MON_GETLIST_1
	// reply to implementation 3 (6 items per 440-octet packet).
	ItemSizeMonitor1 = 72
	// ItemSizeMonitor1V4 is the IPv4-only prefix of info_monitor_1 sent to
	// implementation 2.
	ItemSizeMonitor1V4 = 32
	// ItemSizeMonitor is struct info_monitor, the REQ_MON_GETLIST reply to
	// implementation 3.
	ItemSizeMonitor = 48
	// ItemSizeMonitorV4 is the IPv4-only prefix of info_monitor sent to
	// implementation 2.
	ItemSizeMonitorV4 = 24
	// ItemSizeOldMonitor is struct old_info_monitor, the layout of
	// pre-2001 servers, which ntpdc still accepts.
	ItemSizeOldMonitor = 40
	// ItemSizeOldMonitorV4 is the IPv4-only prefix of old_info_monitor.
	ItemSizeOldMonitorV4 = 20
)

// IsMonitorItemSize reports whether n is the item size of a monitor-list
// layout: 72, 48, 40, 32, 24 or 20.
func IsMonitorItemSize(n int) bool {
	switch n {
	case ItemSizeMonitor1, ItemSizeMonitor1V4, ItemSizeMonitor, ItemSizeMonitorV4,
		ItemSizeOldMonitor, ItemSizeOldMonitorV4:
		return true
	}
	return false
}

// MonitorItemSize returns the item size ntpd 4.2.x uses to answer code
// from a client of implementation impl: 72 or 32 for REQ_MON_GETLIST_1,
// 48 or 24 for REQ_MON_GETLIST. It returns 0 for other codes.
func MonitorItemSize(code ReqCode, impl Impl) int {
	switch code {
	case ReqMonGetList1:
		if impl == ImplXNTPDOld {
			return ItemSizeMonitor1V4
		}
		return ItemSizeMonitor1
	case ReqMonGetList:
		if impl == ImplXNTPDOld {
			return ItemSizeMonitorV4
		}
		return ItemSizeMonitor
	}
	return 0
}

// MonitorEntry is one client in a server's monitor (MRU) list.
//
// Field names follow ntpd 4.2.6, the last release line that answered
// monlist. The meaning of the first three counters depends on the server's
// version, which the wire does not carry: for 4.2.6 they are (average
// interval, seconds since the last packet, restriction flags); for 4.2.4
// (smoothed average interval, seconds since the last packet, dropped
// packets); for 1999-era servers (seconds since the last packet, seconds
// since the first, seconds since the last drop). They are passed through
// as raw integers.
//
// A layout without a field leaves it zero, and an encoder ignores the
// fields its layout lacks: the 48/24-octet layouts have no LocalAddr and
// no Flags; the 40/20-octet layouts have neither of those, nor AvgInt and
// Restrict, and they alone carry FirstInt.
type MonitorEntry struct {
	// Addr is the client's address (addr, or addr6 for an IPv6 entry). An
	// IPv4 entry is never an IPv4-mapped IPv6 address.
	Addr netip.Addr
	// LocalAddr is the server's address the client's packets arrived on
	// (daddr / daddr6); only the 72- and 32-octet layouts carry it.
	LocalAddr netip.Addr
	// Port is the client's UDP source port of its last packet.
	Port uint16
	// Mode is the NTP mode of the client's last packet (3 client, 4
	// server, 6/7 queries, …).
	Mode uint8
	// Version is the NTP version of the client's last packet.
	Version uint8
	// Count is the number of packets received from the client.
	Count uint32
	// AvgInt is avg_int, the first counter (see the type's doc).
	AvgInt uint32
	// LastInt is last_int, seconds since the last packet; in the 40/20
	// octet layouts it is lasttime.
	LastInt uint32
	// FirstInt is firsttime, seconds since the first packet; only the
	// 40/20-octet layouts carry it.
	FirstInt uint32
	// Restrict is restr: 4.2.6 restriction flags (RES_*), 4.2.4 count of
	// dropped packets.
	Restrict uint32
	// Flags says how the packet arrived (MDF_UCAST 0x01, MDF_MCAST 0x02,
	// MDF_BCAST 0x04, …); pre-2006 servers wrote it in host byte order.
	Flags uint32
}

// IsIPv6 reports whether e is an IPv6 entry.
func (e *MonitorEntry) IsIPv6() bool { return e.Addr.Is6() }

// UnmarshalBinary decodes e from one item; len(b) selects the layout
// (72, 48, 40, 32, 24 or 20 octets) and any other length returns
// [ErrItemSize]. An entry is IPv6 when any octet of its v6_flag is
// non-zero, whatever the server's byte order; the IPv4 fields of an IPv6
// entry and the IPv6 fields of an IPv4 entry hold stale bytes and are
// ignored. UnmarshalBinary keeps nothing of b.
func (e *MonitorEntry) UnmarshalBinary(b []byte) error {
	switch len(b) {
	case ItemSizeMonitor1:
		e.decodeMonitor1(b, true)
	case ItemSizeMonitor1V4:
		e.decodeMonitor1(b, false)
	case ItemSizeMonitor:
		e.decodeMonitor(b, true)
	case ItemSizeMonitorV4:
		e.decodeMonitor(b, false)
	case ItemSizeOldMonitor:
		e.decodeOld(b, true)
	case ItemSizeOldMonitorV4:
		e.decodeOld(b, false)
	default:
		return ErrItemSize
	}
	return nil
}

// decodeItems decodes len(dst) items of the given monitor-list size from
// data, which holds at least that many. The 72-octet layout, the one every
// monlist amplifier sends, has its own loop.
func decodeItems(dst []MonitorEntry, data []byte, size int) {
	if size != ItemSizeMonitor1 {
		for i := range dst {
			_ = dst[i].UnmarshalBinary(data[i*size : (i+1)*size])
		}
		return
	}
	be := binary.BigEndian
	for i := range dst {
		b := data[i*ItemSizeMonitor1 : (i+1)*ItemSizeMonitor1 : (i+1)*ItemSizeMonitor1]
		e := &dst[i]
		e.AvgInt = be.Uint32(b[0:4])
		e.LastInt = be.Uint32(b[4:8])
		e.Restrict = be.Uint32(b[8:12])
		e.Count = be.Uint32(b[12:16])
		e.Flags = be.Uint32(b[24:28])
		e.Port = be.Uint16(b[28:30])
		e.Mode = b[30]
		e.Version = b[31]
		e.FirstInt = 0
		if be.Uint32(b[32:36]) != 0 {
			e.Addr = netip.AddrFrom16([16]byte(b[40:56]))
			e.LocalAddr = netip.AddrFrom16([16]byte(b[56:72]))
		} else {
			e.Addr = netip.AddrFrom4([4]byte(b[16:20]))
			e.LocalAddr = netip.AddrFrom4([4]byte(b[20:24]))
		}
	}
}

func v6flag(b []byte) bool { return b[0]|b[1]|b[2]|b[3] != 0 }

func (e *MonitorEntry) decodeMonitor1(b []byte, full bool) {
	_ = b[31]
	e.AvgInt = binary.BigEndian.Uint32(b[0:4])
	e.LastInt = binary.BigEndian.Uint32(b[4:8])
	e.Restrict = binary.BigEndian.Uint32(b[8:12])
	e.Count = binary.BigEndian.Uint32(b[12:16])
	e.Flags = binary.BigEndian.Uint32(b[24:28])
	e.Port = binary.BigEndian.Uint16(b[28:30])
	e.Mode = b[30]
	e.Version = b[31]
	e.FirstInt = 0
	if full && v6flag(b[32:36]) {
		e.Addr = netip.AddrFrom16([16]byte(b[40:56]))
		e.LocalAddr = netip.AddrFrom16([16]byte(b[56:72]))
		return
	}
	e.Addr = netip.AddrFrom4([4]byte(b[16:20]))
	e.LocalAddr = netip.AddrFrom4([4]byte(b[20:24]))
}

func (e *MonitorEntry) decodeMonitor(b []byte, full bool) {
	_ = b[23]
	*e = MonitorEntry{
		AvgInt:   binary.BigEndian.Uint32(b[0:4]),
		LastInt:  binary.BigEndian.Uint32(b[4:8]),
		Restrict: binary.BigEndian.Uint32(b[8:12]),
		Count:    binary.BigEndian.Uint32(b[12:16]),
		Port:     binary.BigEndian.Uint16(b[20:22]),
		Mode:     b[22],
		Version:  b[23],
	}
	if full && v6flag(b[24:28]) {
		e.Addr = netip.AddrFrom16([16]byte(b[32:48]))
		return
	}
	e.Addr = netip.AddrFrom4([4]byte(b[16:20]))
}

func (e *MonitorEntry) decodeOld(b []byte, full bool) {
	_ = b[19]
	*e = MonitorEntry{
		LastInt:  binary.BigEndian.Uint32(b[0:4]),
		FirstInt: binary.BigEndian.Uint32(b[4:8]),
		Count:    binary.BigEndian.Uint32(b[8:12]),
		Port:     binary.BigEndian.Uint16(b[16:18]),
		Mode:     b[18],
		Version:  b[19],
	}
	if full && v6flag(b[20:24]) {
		e.Addr = netip.AddrFrom16([16]byte(b[24:40]))
		return
	}
	e.Addr = netip.AddrFrom4([4]byte(b[12:16]))
}

// v6flagHost is the v6_flag of an IPv6 entry as an x86 (little-endian)
// ntpd writes it: the integer 1 in host byte order.
var v6flagHost = [4]byte{1, 0, 0, 0}

// AppendItem appends e encoded in the layout of the given item size (72,
// 48, 40, 32, 24 or 20 octets) and returns [ErrItemSize] for any other
// size. Fields the layout lacks are left out, fields ntpd never writes are
// zero, and an IPv6 entry's v6_flag is written as an x86 ntpd does
// (01 00 00 00). An invalid LocalAddr is written as zeros, so it decodes
// as 0.0.0.0 (or ::). It returns [ErrFieldRange] when Addr is not a valid
// address, when an address has a zone, when an IPv6 entry is asked for in
// an IPv4-only layout, or when a LocalAddr the layout carries is of the
// other address family.
func (e MonitorEntry) AppendItem(b []byte, size int) ([]byte, error) {
	if !IsMonitorItemSize(size) {
		return b, ErrItemSize
	}
	if !e.Addr.IsValid() || e.Addr.Zone() != "" || e.LocalAddr.Zone() != "" {
		return b, ErrFieldRange
	}
	v6 := !e.Addr.Is4()
	full := size == ItemSizeMonitor1 || size == ItemSizeMonitor || size == ItemSizeOldMonitor
	if v6 && !full {
		return b, ErrFieldRange
	}
	hasLocal := size == ItemSizeMonitor1 || size == ItemSizeMonitor1V4
	if hasLocal && e.LocalAddr.IsValid() && e.LocalAddr.Is4() == v6 {
		return b, ErrFieldRange
	}
	be := binary.BigEndian
	var a4, d4 [4]byte
	if !v6 {
		a4 = e.Addr.As4()
		if hasLocal && e.LocalAddr.IsValid() {
			d4 = e.LocalAddr.As4()
		}
	}
	var flag [4]byte
	if v6 {
		flag = v6flagHost
	}
	switch size {
	case ItemSizeMonitor1, ItemSizeMonitor1V4:
		b = be.AppendUint32(b, e.AvgInt)
		b = be.AppendUint32(b, e.LastInt)
		b = be.AppendUint32(b, e.Restrict)
		b = be.AppendUint32(b, e.Count)
		b = append(b, a4[:]...)
		b = append(b, d4[:]...)
		b = be.AppendUint32(b, e.Flags)
		b = be.AppendUint16(b, e.Port)
		b = append(b, e.Mode, e.Version)
		if !full {
			return b, nil
		}
		b = append(b, flag[:]...)
		b = append(b, 0, 0, 0, 0) // unused1
		return appendV6(b, e.Addr, v6, e.LocalAddr, true), nil
	case ItemSizeMonitor, ItemSizeMonitorV4:
		b = be.AppendUint32(b, e.AvgInt)
		b = be.AppendUint32(b, e.LastInt)
		b = be.AppendUint32(b, e.Restrict)
		b = be.AppendUint32(b, e.Count)
		b = append(b, a4[:]...)
		b = be.AppendUint16(b, e.Port)
		b = append(b, e.Mode, e.Version)
		if !full {
			return b, nil
		}
		b = append(b, flag[:]...)
		b = append(b, 0, 0, 0, 0) // unused1
		return appendV6(b, e.Addr, v6, e.LocalAddr, false), nil
	default: // old_info_monitor
		b = be.AppendUint32(b, e.LastInt)
		b = be.AppendUint32(b, e.FirstInt)
		b = be.AppendUint32(b, e.Count)
		b = append(b, a4[:]...)
		b = be.AppendUint16(b, e.Port)
		b = append(b, e.Mode, e.Version)
		if !full {
			return b, nil
		}
		b = append(b, flag[:]...)
		return appendV6(b, e.Addr, v6, e.LocalAddr, false), nil
	}
}

// appendV6 appends addr6 (and daddr6 when withLocal), zero for IPv4 entries.
func appendV6(b []byte, addr netip.Addr, v6 bool, local netip.Addr, withLocal bool) []byte {
	var a6, d6 [16]byte
	if v6 {
		a6 = addr.As16()
		if local.IsValid() {
			d6 = local.As16()
		}
	}
	b = append(b, a6[:]...)
	if withLocal {
		b = append(b, d6[:]...)
	}
	return b
}

// AppendBinary appends e in the 72-octet info_monitor_1 layout.
func (e MonitorEntry) AppendBinary(b []byte) ([]byte, error) {
	return e.AppendItem(b, ItemSizeMonitor1)
}

// MarshalBinary returns e in the 72-octet info_monitor_1 layout.
func (e MonitorEntry) MarshalBinary() ([]byte, error) {
	return e.AppendItem(make([]byte, 0, ItemSizeMonitor1), ItemSizeMonitor1)
}
