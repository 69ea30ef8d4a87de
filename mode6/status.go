package mode6

import "strconv"

// Names of status word fields as ntpq prints them (libntp statestr.c).
var (
	leapNames   = [4]string{"leap_none", "leap_add_sec", "leap_del_sec", "leap_alarm"}
	sourceNames = [10]string{"sync_unspec", "sync_pps", "sync_lf_radio", "sync_hf_radio",
		"sync_uhf_radio", "sync_local", "sync_ntp", "sync_other", "sync_wristwatch", "sync_telephone"}
	sysEventNames = [16]string{"unspecified", "freq_not_set", "freq_set", "spike_detect",
		"freq_mode", "clock_sync", "restart", "panic_stop", "no_sys_peer", "leap_armed",
		"leap_disarmed", "leap_event", "clock_step", "kern", "TAI", "stale_leapsecond_values"}
	selectNames = [8]string{"sel_reject", "sel_falsetick", "sel_excess", "sel_outlier",
		"sel_candidate", "sel_backup", "sel_sys.peer", "sel_pps.peer"}
	peerEventNames = [16]string{"", "mobilize", "demobilize", "unreachable", "reachable",
		"restart", "no_reply", "rate_exceeded", "access_denied", "leap_armed", "sys_peer",
		"clock_event", "bad_auth", "popcorn", "interleave_mode", "interleave_error"}
	clockNames = [7]string{"clk_unspec", "clk_no_reply", "clk_bad_format", "clk_fault",
		"clk_bad_signal", "clk_bad_date", "clk_bad_time"}
)

func name(table []string, i int, prefix string) string {
	if i < len(table) && table[i] != "" {
		return table[i]
	}
	return prefix + "_" + strconv.Itoa(i)
}

func events(n uint8) string {
	switch n {
	case 0:
		return "no events"
	case 1:
		return "1 event"
	}
	return strconv.Itoa(int(n)) + " events"
}

// SystemStatus is the system status word of replies about association 0:
// leap indicator, clock source, event counter and last event.
type SystemStatus struct {
	Leap       uint8 // 2 bits: 0 none, 1 add second, 2 delete second, 3 alarm (unsynchronised)
	Source     uint8 // 6 bits: 0 unspecified, 1 PPS, …, 5 local clock, 6 NTP, …
	EventCount uint8 // 4 bits
	Event      uint8 // 4 bits: last event code
}

// SystemStatusOf decodes a system status word.
func SystemStatusOf(w uint16) SystemStatus {
	return SystemStatus{Leap: uint8(w >> 14), Source: uint8(w>>8) & 0x3f, EventCount: uint8(w>>4) & 0xf, Event: uint8(w) & 0xf}
}

// Word encodes s; fields are masked to their bits.
func (s SystemStatus) Word() uint16 {
	return uint16(s.Leap&3)<<14 | uint16(s.Source&0x3f)<<8 | uint16(s.EventCount&0xf)<<4 | uint16(s.Event&0xf)
}

// LeapName returns ntpq's name of the leap indicator, such as "leap_alarm".
func (s SystemStatus) LeapName() string { return name(leapNames[:], int(s.Leap), "leap") }

// SourceName returns ntpq's name of the clock source, such as "sync_ntp".
func (s SystemStatus) SourceName() string { return name(sourceNames[:], int(s.Source), "sync") }

// EventName returns ntpq's name of the last event, such as "clock_sync".
func (s SystemStatus) EventName() string { return name(sysEventNames[:], int(s.Event), "") }

// String returns the status as ntpq prints it:
// "leap_none, sync_ntp, 1 event, clock_sync".
func (s SystemStatus) String() string {
	return s.LeapName() + ", " + s.SourceName() + ", " + events(s.EventCount) + ", " + s.EventName()
}

// Peer status flags (the high octet of a peer status word).
const (
	PeerConfigured  = 0x80 // conf: configured association
	PeerAuthEnabled = 0x40 // authenb: authentication enabled
	PeerAuthentic   = 0x20 // auth: last packet authentic
	PeerReachable   = 0x10 // reach
	PeerBroadcast   = 0x08 // bcast
)

// PeerStatus is the status word of a peer association: flags, selection
// status, event counter and last event.
type PeerStatus struct {
	Flags      uint8 // PeerConfigured | PeerAuthEnabled | … (bits 7-3 of the high octet)
	Select     uint8 // 3 bits: 0 reject … 6 sys.peer, 7 pps.peer
	EventCount uint8 // 4 bits
	Event      uint8 // 4 bits: last peer event (0 none)
}

// PeerStatusOf decodes a peer status word.
func PeerStatusOf(w uint16) PeerStatus {
	return PeerStatus{Flags: uint8(w>>8) & 0xf8, Select: uint8(w>>8) & 7, EventCount: uint8(w>>4) & 0xf, Event: uint8(w) & 0xf}
}

// Word encodes s; fields are masked to their bits.
func (s PeerStatus) Word() uint16 {
	return uint16(s.Flags&0xf8|s.Select&7)<<8 | uint16(s.EventCount&0xf)<<4 | uint16(s.Event&0xf)
}

// SelectName returns ntpq's name of the selection status, such as
// "sel_sys.peer".
func (s PeerStatus) SelectName() string { return name(selectNames[:], int(s.Select), "sel") }

// EventName returns ntpq's name of the last event, or "" for none.
func (s PeerStatus) EventName() string {
	if s.Event == 0 {
		return ""
	}
	return name(peerEventNames[:], int(s.Event), "")
}

// String returns the status as ntpq prints it:
// "conf, reach, sel_reject, 1 event, reachable".
func (s PeerStatus) String() string {
	out := ""
	for _, f := range [...]struct {
		bit  uint8
		name string
	}{{PeerConfigured, "conf"}, {PeerAuthEnabled, "authenb"}, {PeerAuthentic, "auth"}, {PeerReachable, "reach"}, {PeerBroadcast, "bcast"}} {
		if s.Flags&f.bit != 0 {
			if out != "" {
				out += ", "
			}
			out += f.name
		}
	}
	out += ", " + s.SelectName() + ", " + events(s.EventCount)
	if s.Event != 0 {
		out += ", " + s.EventName()
	}
	return out
}

// ClockStatus is the status word of READCLOCK replies as ntpd 4.2.x
// builds it and ntpq decodes it: an event counter and the current clock
// status code in the low octet.
type ClockStatus struct {
	EventCount uint8 // 4 bits
	Status     uint8 // 4 bits: 0 ok, 1 no reply, 2 bad format, 3 fault, 4 bad signal, 5 bad date, 6 bad time
}

// ClockStatusOf decodes a clock status word.
func ClockStatusOf(w uint16) ClockStatus {
	return ClockStatus{EventCount: uint8(w>>4) & 0xf, Status: uint8(w) & 0xf}
}

// Word encodes s.
func (s ClockStatus) Word() uint16 { return uint16(s.EventCount&0xf)<<4 | uint16(s.Status&0xf) }

// StatusName returns ntpq's name of the clock status, such as
// "clk_no_reply".
func (s ClockStatus) StatusName() string { return name(clockNames[:], int(s.Status), "clk") }

// String returns the status as ntpq prints it: "no events, clk_unspec".
func (s ClockStatus) String() string { return events(s.EventCount) + ", " + s.StatusName() }
