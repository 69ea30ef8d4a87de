package ntpctl

import "time"

// timer is a deadline for a flight; it is stale when the flight's gen has
// moved on (resent, or recycled).
type timer[R any] struct {
	f   *flight[R]
	gen uint32
	at  time.Time
}

func (t timer[R]) stale() bool { return t.f.gen != t.gen }

// fifo holds timers whose deadlines come in the order they were added
// (a fixed delay after a send): O(1) where a heap would be O(log n).
type fifo[R any] struct {
	buf        []timer[R]
	head, size int
}

func (q *fifo[R]) push(t timer[R], keep int) {
	if q.size == len(q.buf) && q.size >= keep {
		q.compact() // timers of recycled or answered flights pile up with rate × timeout
	}
	if q.size == len(q.buf) {
		nb := make([]timer[R], max(64, 2*len(q.buf)))
		for i := range q.size {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = t
	q.size++
}

// compact drops the timers that can no longer fire: stale ones and those
// of flights that have answered (their quiet timers rule). Order is kept.
func (q *fifo[R]) compact() {
	n := 0
	for i := range q.size {
		t := q.buf[(q.head+i)%len(q.buf)]
		if t.stale() || t.f.stepPackets > 0 || t.f.done { // answering this step: its quiet timer rules
			continue
		}
		q.buf[(q.head+n)%len(q.buf)] = t
		n++
	}
	for i := n; i < q.size; i++ {
		q.buf[(q.head+i)%len(q.buf)] = timer[R]{}
	}
	q.size = n
}

func (q *fifo[R]) peek() (timer[R], bool) {
	if q.size == 0 {
		return timer[R]{}, false
	}
	return q.buf[q.head], true
}

func (q *fifo[R]) pop() {
	q.buf[q.head] = timer[R]{}
	q.head = (q.head + 1) % len(q.buf)
	q.size--
}

// quietHeap holds the quiet timers of flights that have answered, at most
// one per flight: a flight whose deadline moved on is pushed again when
// its old timer pops. It is a binary min-heap by deadline, written out so
// that pushes do not box timers in interfaces.
type quietHeap[R any] []timer[R]

func (h *quietHeap[R]) push(t timer[R]) {
	*h = append(*h, t)
	q := *h
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q[i].at.Before(q[parent].at) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

func (h *quietHeap[R]) pop() timer[R] {
	q := *h
	t := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q[last] = timer[R]{}
	q = q[:last]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < len(q) && q[l].at.Before(q[small].at) {
			small = l
		}
		if r := l + 1; r < len(q) && q[r].at.Before(q[small].at) {
			small = r
		}
		if small == i {
			break
		}
		q[i], q[small] = q[small], q[i]
		i = small
	}
	*h = q
	return t
}
