package ntpctl

import (
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"net/netip"
)

// MaxPermutation is the largest set a Permutation covers (2^40 indexes;
// the whole IPv4 space is 2^32).
const MaxPermutation = 1 << 40

// ErrShard reports a shard outside 0..count-1, or a count below 1.
var ErrShard = errors.New("ntpctl: invalid shard")

// Permutation visits the indexes 0..n-1 once each in a seeded pseudorandom
// order, the way zmap orders its probes: by walking the cyclic
// multiplicative group of integers modulo a prime p > n from a generator
// and a start chosen by the seed, skipping the values past n. Successive
// indexes are far apart, so probes spread across networks instead of
// hammering one; the same seed gives the same order. It holds a few
// integers whatever n is.
type Permutation struct {
	n, p, g, start uint64
}

// NewPermutation returns the permutation of 0..n-1 for seed.
func NewPermutation(n uint64, seed uint64) (*Permutation, error) {
	if n == 0 || n > MaxPermutation {
		return nil, fmt.Errorf("ntpctl: permutation of %d elements: want 1..2^40", n)
	}
	p := nextPrime(max(n+1, 3))
	factors := primeFactors(p - 1)
	// Generator and start from the seed (splitmix64 spreads nearby seeds).
	s := seed
	pick := func() uint64 {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		return z ^ z>>31
	}
	var g uint64
	for {
		g = 2 + pick()%(p-2) // 2..p-1
		if isGenerator(g, p, factors) {
			break
		}
	}
	return &Permutation{n: n, p: p, g: g, start: 1 + pick()%(p-1)}, nil
}

// Len returns n.
func (pm *Permutation) Len() uint64 { return pm.n }

// All yields every index once.
func (pm *Permutation) All() iter.Seq[uint64] { return pm.shard(0, 1) }

// Shard yields the indexes of shard i of count: the group elements at
// cycle positions i, i+count, i+2·count, …. The shards are disjoint and
// together yield every index once, so count machines can split one scan.
func (pm *Permutation) Shard(i, count int) (iter.Seq[uint64], error) {
	if count < 1 || i < 0 || i >= count {
		return nil, fmt.Errorf("%w: %d of %d", ErrShard, i, count)
	}
	return pm.shard(uint64(i), uint64(count)), nil
}

func (pm *Permutation) shard(i, count uint64) iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		order := pm.p - 1 // cycle length
		if i >= order {
			return
		}
		x := mulmod(pm.start, powmod(pm.g, i, pm.p), pm.p)
		step := powmod(pm.g, count, pm.p)
		for pos := i; pos < order; pos += count {
			if x-1 < pm.n && !yield(x-1) {
				return
			}
			x = mulmod(x, step, pm.p)
		}
	}
}

func mulmod(a, b, m uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return bits.Rem64(hi, lo, m)
}

func powmod(b, e, m uint64) uint64 {
	r := uint64(1)
	b %= m
	for ; e > 0; e >>= 1 {
		if e&1 != 0 {
			r = mulmod(r, b, m)
		}
		b = mulmod(b, b, m)
	}
	return r
}

// isPrime is a deterministic Miller-Rabin test for 64-bit n.
func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for _, q := range []uint64{2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37} {
		if n%q == 0 {
			return n == q
		}
	}
	d, r := n-1, 0
	for d%2 == 0 {
		d /= 2
		r++
	}
	for _, a := range []uint64{2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37} {
		x := powmod(a, d, n)
		if x == 1 || x == n-1 {
			continue
		}
		composite := true
		for range r - 1 {
			x = mulmod(x, x, n)
			if x == n-1 {
				composite = false
				break
			}
		}
		if composite {
			return false
		}
	}
	return true
}

func nextPrime(n uint64) uint64 {
	for !isPrime(n) {
		n++
	}
	return n
}

// primeFactors returns the distinct prime factors of n by trial division
// (n ≤ 2^40, so at most 2^20 divisions).
func primeFactors(n uint64) []uint64 {
	var fs []uint64
	for q := uint64(2); q*q <= n; q++ {
		if n%q == 0 {
			fs = append(fs, q)
			for n%q == 0 {
				n /= q
			}
		}
	}
	if n > 1 {
		fs = append(fs, n)
	}
	return fs
}

// isGenerator reports whether g generates the group modulo prime p.
func isGenerator(g, p uint64, factors []uint64) bool {
	for _, q := range factors {
		if powmod(g, (p-1)/q, p) == 1 {
			return false
		}
	}
	return true
}

// PermuteOptions says how TargetSet.Permuted orders a set. The zero value
// yields every address, with port 0 (the prober's Config.Port), in the
// order of seed 0.
type PermuteOptions struct {
	// Port is the port of every target yielded; 0 leaves it to the
	// prober (Config.Port).
	Port uint16
	// Seed picks the order; the same seed gives the same order, so that
	// machines that share it split one scan.
	Seed uint64
	// Shard and Shards select shard Shard of Shards (0 ≤ Shard < Shards):
	// every Shards-th position of the order, so shards are disjoint and
	// together complete. Shards 0 means 1, the whole set.
	Shard, Shards int
}

// Permuted yields the set's addresses in the order of a seeded
// Permutation, or one shard of it (see PermuteOptions). The set must hold
// at most MaxPermutation addresses. Addresses map to indexes in the set's
// sorted order, so memory stays that of the ranges.
func (s *TargetSet) Permuted(opt PermuteOptions) (iter.Seq[netip.AddrPort], error) {
	port, seed, shard, count := opt.Port, opt.Seed, opt.Shard, opt.Shards
	if count == 0 {
		count = 1
	}
	size := s.Len()
	if !size.IsUint64() || size.Uint64() > MaxPermutation {
		return nil, fmt.Errorf("ntpctl: %s addresses are too many to permute", size)
	}
	if size.Sign() == 0 {
		return func(func(netip.AddrPort) bool) {}, nil
	}
	pm, err := NewPermutation(size.Uint64(), seed)
	if err != nil {
		return nil, err
	}
	idx, err := pm.Shard(shard, count)
	if err != nil {
		return nil, err
	}
	// Cumulative sizes: index i lies in the first range whose end > i.
	ends := make([]uint64, len(s.ranges))
	var total uint64
	for i, r := range s.ranges {
		total += r.Size().Uint64()
		ends[i] = total
	}
	ranges := s.ranges
	return func(yield func(netip.AddrPort) bool) {
		for i := range idx {
			lo, hi := 0, len(ends)
			for lo < hi {
				m := (lo + hi) / 2
				if ends[m] > i {
					hi = m
				} else {
					lo = m + 1
				}
			}
			off := i
			if lo > 0 {
				off -= ends[lo-1]
			}
			if !yield(netip.AddrPortFrom(addrPlus(ranges[lo].First, off), port)) {
				return
			}
		}
	}, nil
}

// addrPlus returns a + n (n fits the range it was taken from).
func addrPlus(a netip.Addr, n uint64) netip.Addr {
	if a.Is4() {
		b := a.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		v += uint32(n)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	b := a.As16()
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 | uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	lo, carry := bits.Add64(lo, n, 0)
	hi += carry
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	return netip.AddrFrom16(b)
}
