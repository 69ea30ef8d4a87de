//go:build !linux

package batchconn

import (
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Dst returns the destination address carried by the control data of a
// received message, or the zero Addr. Off Linux it uses x/net's parser,
// which allocates.
func (c *Conn) Dst(oob []byte) netip.Addr {
	var dst []byte
	if c.v6 {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) == nil {
			dst = cm.Dst
		}
	} else {
		var cm ipv4.ControlMessage
		if cm.Parse(oob) == nil {
			dst = cm.Dst
		}
	}
	a, _ := netip.AddrFromSlice(dst)
	return a.Unmap()
}
