//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le))

package batchconn

type sysReader struct{ portable }

func (s *sysReader) init(*Conn, int) {}
