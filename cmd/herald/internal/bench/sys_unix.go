//go:build unix

package bench

import "syscall"

// RaiseFileLimit raises the soft limit of open files to the hard limit:
// thousands of client sockets need it. It returns the resulting soft limit;
// a failure leaves the limit as it was.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur >= l.Max {
		return uint64(l.Cur), nil
	}
	want := l
	want.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return uint64(l.Cur), err
	}
	return uint64(want.Cur), nil
}

// smallRecvBuf is a net.Dialer Control that shrinks the socket's receive
// buffer before connecting, so that a device that never reads fills it fast.
func smallRecvBuf(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
	})
	if err != nil {
		return err
	}
	return serr
}
