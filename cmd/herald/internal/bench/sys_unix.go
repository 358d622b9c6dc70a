//go:build unix

package bench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// wantFiles is the open-file limit RaiseFileLimit asks for: 100 000 idle
// devices take a socket each in the bench and in the server it spawns
// (which inherits the limit).
const wantFiles = 1 << 18

// RaiseFileLimit raises the soft limit of open files to the hard limit:
// thousands of client sockets need it. Where the process may (root, or
// CAP_SYS_RESOURCE), it raises the hard limit first, to wantFiles or the
// kernel's fs.nr_open if lower. It returns the resulting soft limit; a
// failure leaves the limit as it was.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Max < wantFiles {
		up := syscall.Rlimit{Cur: wantFiles, Max: wantFiles}
		if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n < wantFiles {
				up = syscall.Rlimit{Cur: n, Max: n}
			}
		}
		if up.Max > l.Max && syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return up.Cur, nil
		}
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
