//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le))

package batchconn

// Poller reads datagrams from many sockets in one goroutine; it exists
// only on 64-bit Linux (PollSupported): elsewhere each socket is read by
// its own Reader.
type Poller struct{}

// PollSupported reports whether NewPoller works on this platform.
const PollSupported = false

// NewPoller returns ErrPollUnsupported on this platform.
func NewPoller([]*Conn, int) (*Poller, error) { return nil, ErrPollUnsupported }

// Read is never called: NewPoller does not return a Poller here.
func (p *Poller) Read([]RecvMsg, []int) (int, error) { return 0, ErrPollUnsupported }

// Close does nothing.
func (p *Poller) Close() error { return nil }

// EnableICMPErrors is not available where there is no Poller.
func (c *Conn) EnableICMPErrors() error { return ErrPollUnsupported }
