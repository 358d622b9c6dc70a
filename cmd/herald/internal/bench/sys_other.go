//go:build !unix

package bench

import "syscall"

// RaiseFileLimit does nothing on this platform.
func RaiseFileLimit() (uint64, error) { return 0, nil }

// smallRecvBuf leaves the receive buffer as it is on this platform.
func smallRecvBuf(_, _ string, _ syscall.RawConn) error { return nil }
