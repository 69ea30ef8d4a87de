package ntpctl

import "net/netip"

// flightMap maps targets to their flights: open addressing with linear
// probing over a power-of-two table, indexed by the flight's keyed hash,
// which the prober computes once per target anyway. It does what a Go map
// does here at a third of the cost, because the table stays compact and
// lookups compare a 64-bit hash before touching the flight.
type flightMap[R any] struct {
	slots []slot[R]
	n     int
}

type slot[R any] struct {
	h uint64
	f *flight[R]
}

func newFlightMap[R any](capacity int) flightMap[R] {
	size := 16
	for size < 2*capacity {
		size <<= 1
	}
	return flightMap[R]{slots: make([]slot[R], size)}
}

func (m *flightMap[R]) len() int { return m.n }

// get returns the flight of target t, whose hash is h.
func (m *flightMap[R]) get(t netip.AddrPort, h uint64) *flight[R] {
	mask := uint64(len(m.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &m.slots[i]
		if s.f == nil {
			return nil
		}
		if s.h == h && s.f.target == t {
			return s.f
		}
	}
}

// put adds f, whose target is not in the map.
func (m *flightMap[R]) put(f *flight[R]) {
	if 2*(m.n+1) > len(m.slots) {
		m.grow()
	}
	mask := uint64(len(m.slots) - 1)
	i := f.hash & mask
	for m.slots[i].f != nil {
		i = (i + 1) & mask
	}
	m.slots[i] = slot[R]{f.hash, f}
	m.n++
}

// remove deletes f, shifting the entries after it back so probes still
// find them (no tombstones).
func (m *flightMap[R]) remove(f *flight[R]) {
	mask := uint64(len(m.slots) - 1)
	i := f.hash & mask
	for m.slots[i].f != f {
		if m.slots[i].f == nil {
			return
		}
		i = (i + 1) & mask
	}
	m.slots[i] = slot[R]{}
	m.n--
	for j := (i + 1) & mask; m.slots[j].f != nil; j = (j + 1) & mask {
		home := m.slots[j].h & mask
		// Move j back to i when its home is not cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			m.slots[i], m.slots[j] = m.slots[j], slot[R]{}
			i = j
		}
	}
}

func (m *flightMap[R]) grow() {
	old := m.slots
	m.slots = make([]slot[R], 2*len(old))
	m.n = 0
	for _, s := range old {
		if s.f != nil {
			m.put(s.f)
		}
	}
}

// all yields every flight.
func (m *flightMap[R]) all(yield func(*flight[R]) bool) {
	for _, s := range m.slots {
		if s.f != nil && !yield(s.f) {
			return
		}
	}
}
