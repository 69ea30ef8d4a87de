//go:build linux

package batchconn

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Dst returns the destination address carried by the control data of a
// received message (IP_PKTINFO / IPV6_PKTINFO), or the zero Addr. It
// walks the control messages itself, allocating nothing.
func (c *Conn) Dst(oob []byte) netip.Addr {
	for len(oob) >= unix.SizeofCmsghdr {
		var n uint64
		if unix.SizeofCmsghdr == 16 {
			n = binary.NativeEndian.Uint64(oob[0:8])
		} else {
			n = uint64(binary.NativeEndian.Uint32(oob[0:4]))
		}
		lenSize := unix.SizeofCmsghdr - 8
		level := int32(binary.NativeEndian.Uint32(oob[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[lenSize+4:]))
		if n < unix.SizeofCmsghdr || n > uint64(len(oob)) {
			return netip.Addr{}
		}
		data := oob[unix.SizeofCmsghdr:n]
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: ifindex, spec_dst, addr (the header's destination)
			return netip.AddrFrom4([4]byte(data[8:12]))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo: addr, ifindex
			return netip.AddrFrom16([16]byte(data[0:16])).Unmap()
		}
		next := unix.CmsgSpace(int(n) - unix.SizeofCmsghdr)
		if next <= 0 || next > len(oob) {
			return netip.Addr{}
		}
		oob = oob[next:]
	}
	return netip.Addr{}
}
