package mode7

import (
	"iter"
	"slices"
)

// MonitorList is a lazy view of monitor-list items: the raw items of one
// layout, each decoded into a [MonitorEntry] only when it is asked for. It
// is the cheap way through a long reply: [Reassembler.List] hands one out
// over the reassembler's own buffer without decoding anything, and At or
// All decode one entry at a time, on the caller's stack.
//
// A MonitorList obtained from DecodeFromBytes or [Reassembler.List]
// borrows the octets it was made from, as those names say; Clone returns
// one that owns a copy. The zero value is an empty list.
type MonitorList struct {
	data []byte
	size int
}

// DecodeFromBytes makes l a view of the items in data, of the given
// monitor-list item size (72, 48, 40, 32, 24 or 20 octets). l refers to
// data: copy it (or Clone l) before data is reused. It returns
// [ErrItemSize] for any other size and [ErrLength] when len(data) is not a
// multiple of it; l is then empty.
func (l *MonitorList) DecodeFromBytes(data []byte, itemSize int) error {
	*l = MonitorList{}
	if !IsMonitorItemSize(itemSize) {
		return ErrItemSize
	}
	if len(data)%itemSize != 0 {
		return ErrLength
	}
	l.data, l.size = data[:len(data):len(data)], itemSize
	return nil
}

// Len returns the number of entries.
func (l MonitorList) Len() int {
	if l.size == 0 {
		return 0
	}
	return len(l.data) / l.size
}

// ItemSize returns the item size of the layout, or 0 for an empty list
// that has none.
func (l MonitorList) ItemSize() int { return l.size }

// Item returns the raw octets of item i, or nil when i is out of range.
// They alias l's buffer.
func (l MonitorList) Item(i int) []byte {
	if i < 0 || i >= l.Len() {
		return nil
	}
	return l.data[i*l.size : (i+1)*l.size : (i+1)*l.size]
}

// At decodes entry i, as [MonitorEntry.UnmarshalBinary] does; the value
// owns nothing of l. It panics when i is not in [0, Len()), as indexing a
// slice does.
func (l MonitorList) At(i int) (e MonitorEntry) {
	e.decodeAt(l.data, i, l.size) // At inlines: e is the caller's, not a copy
	return e
}

// DecodeAt decodes entry i into e, as At does, without copying an entry
// value: the fastest way to walk the list. It panics when i is not in
// [0, Len()).
func (l MonitorList) DecodeAt(i int, e *MonitorEntry) { e.decodeAt(l.data, i, l.size) }

// decodeAt decodes item i of data, of the given size, into e.
func (e *MonitorEntry) decodeAt(data []byte, i, size int) {
	if size == ItemSizeMonitor1 {
		e.decodeMonitor1(data[i*ItemSizeMonitor1:(i+1)*ItemSizeMonitor1:(i+1)*ItemSizeMonitor1], true)
		return
	}
	if size == 0 || i < 0 || i >= len(data)/size {
		panic("mode7: MonitorList.At index out of range")
	}
	_ = e.UnmarshalBinary(data[i*size : (i+1)*size])
}

// All yields the entries in order with their index, decoding each as it
// goes, without allocating.
func (l MonitorList) All() iter.Seq2[int, MonitorEntry] {
	return func(yield func(int, MonitorEntry) bool) {
		n := l.Len()
		for i := range n {
			if !yield(i, l.At(i)) {
				return
			}
		}
	}
}

// AppendEntries appends every entry, decoded, to dst.
func (l MonitorList) AppendEntries(dst []MonitorEntry) []MonitorEntry {
	n := l.Len()
	dst = slices.Grow(dst, n)
	at := len(dst)
	dst = dst[:at+n]
	decodeItems(dst[at:], l.data, l.size)
	return dst
}

// Clone returns a copy of l that owns its octets.
func (l MonitorList) Clone() MonitorList {
	if l.Len() == 0 {
		return MonitorList{size: l.size}
	}
	return MonitorList{data: slices.Clone(l.data), size: l.size}
}
