//go:build !linux

package realpeer

import (
	"errors"
	"net"
)

// listenUDP needs Linux network namespaces.
func (ns *Namespace) listenUDP(string, string) (*net.UDPConn, error) {
	return nil, errors.New("realpeer: network namespaces need Linux")
}

// removeStaleNamespaces has nothing to do without Linux namespaces.
func removeStaleNamespaces() {}
