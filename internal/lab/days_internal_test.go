package lab

import (
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
)

// TestDays: a lab with Day set keeps the same servers and silences each
// on the days its role says.
func TestDays(t *testing.T) {
	base := build(Config{Seed: 1, Hosts: 300, Prefix: DefaultPrefix}, time.Now())
	roles := map[Role]int{}
	for day := 1; day <= 7; day++ {
		l := build(Config{Seed: 1, Hosts: 300, Prefix: DefaultPrefix, Day: day}, time.Now())
		if len(l.hosts) != len(base.hosts) {
			t.Fatalf("day %d: %d hosts, want %d", day, len(l.hosts), len(base.hosts))
		}
		for i, h := range l.hosts {
			b := base.hosts[i]
			if h.Addr != b.Addr {
				t.Fatalf("day %d: host %d at %v, want %v", day, i, h.Addr, b.Addr)
			}
			answers := h.Kind != Silent
			switch {
			case b.Kind == Silent || b.Kind == Hostile:
				if h.Kind != b.Kind {
					t.Errorf("day %d: %v changed from %v to %v", day, h.Addr, b.Kind, h.Kind)
				}
			case answers != h.Role.Answers(day):
				t.Errorf("day %d: %v (%v) answers %v", day, h.Addr, h.Role, answers)
			case answers && h.Kind != b.Kind:
				t.Errorf("day %d: %v is %v, want %v", day, h.Addr, h.Kind, b.Kind)
			case answers && (h.Sim.NoTime != b.Sim.NoTime || h.Time != b.Time):
				t.Errorf("day %d: %v serves time %v, %v on day 1", day, h.Addr, h.Time, b.Time)
			case !answers && h.Time.Status != ntpctl.StatusNoAnswer:
				t.Errorf("day %d: silent %v answers mode 3: %v", day, h.Addr, h.Time)
			}
			if day == 1 && b.Kind != Silent && b.Kind != Hostile {
				roles[h.Role]++
			}
		}
	}
	for _, r := range []Role{Steady, Fixed, Appears, Flaps, OddDays} {
		if roles[r] == 0 {
			t.Errorf("no server is %v", r)
		}
	}
}
