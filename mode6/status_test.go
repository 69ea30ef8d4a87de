package mode6_test

import (
	"testing"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
)

func TestSystemStatus(t *testing.T) {
	for w, want := range map[uint16]string{
		0x0615: "leap_none, sync_ntp, 1 event, clock_sync",
		0xc016: "leap_alarm, sync_unspec, 1 event, restart", // ntpq -c rv against ntpsec
		0xc516: "leap_alarm, sync_local, 1 event, restart",
		0x0664: "leap_none, sync_ntp, 6 events, freq_mode",
		0x4000: "leap_add_sec, sync_unspec, no events, unspecified",
		0x89ff: "leap_del_sec, sync_telephone, 15 events, stale_leapsecond_values",
		0x3f00: "leap_none, sync_63, no events, unspecified",
		0x0a0e: "leap_none, sync_10, no events, TAI",
	} {
		s := mode6.SystemStatusOf(w)
		assert.Equal(t, want, s.String(), "%04x", w)
	}
	s := mode6.SystemStatusOf(0xc016)
	assert.Equal(t, mode6.SystemStatus{Leap: 3, Source: 0, EventCount: 1, Event: 6}, s)
	assert.Equal(t, "leap_alarm", s.LeapName())
	assert.Equal(t, "restart", s.EventName())
}

func TestPeerStatus(t *testing.T) {
	for w, want := range map[uint16]string{
		0x9014: "conf, reach, sel_reject, 1 event, reachable", // ntpsec ntpq rv &1
		0xf624: "conf, authenb, auth, reach, sel_sys.peer, 2 events, reachable",
		0xc011: "conf, authenb, sel_reject, 1 event, mobilize",
		0x0000: ", sel_reject, no events",
		0x0800: "bcast, sel_reject, no events",
		0x1735: "reach, sel_pps.peer, 3 events, restart",
		0x14fa: "reach, sel_candidate, 15 events, sys_peer",
	} {
		assert.Equal(t, want, mode6.PeerStatusOf(w).String(), "%04x", w)
	}
	p := mode6.PeerStatusOf(0x9614)
	assert.Equal(t, uint8(mode6.PeerConfigured|mode6.PeerReachable), p.Flags)
	assert.Equal(t, "sel_sys.peer", p.SelectName())
	assert.Equal(t, "", mode6.PeerStatusOf(0x9600).EventName())
}

func TestClockStatus(t *testing.T) {
	assert.Equal(t, "no events, clk_unspec", mode6.ClockStatusOf(0).String())
	assert.Equal(t, "2 events, clk_no_reply", mode6.ClockStatusOf(0x21).String())
	assert.Equal(t, "1 event, clk_9", mode6.ClockStatusOf(0x19).String())
}

func TestStatusWordsRoundTrip(t *testing.T) {
	for w := range 1 << 16 {
		assert.Equal(t, uint16(w), mode6.SystemStatusOf(uint16(w)).Word())
		assert.Equal(t, uint16(w), mode6.PeerStatusOf(uint16(w)).Word())
		assert.Equal(t, uint16(w&0xff), mode6.ClockStatusOf(uint16(w)).Word())
	}
}
