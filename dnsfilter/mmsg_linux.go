//go:build linux && (amd64 || arm64)

package dnsfilter

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgConn reads and writes batches of IPv4 datagrams with recvmmsg and
// sendmmsg issued as raw system calls, on the socket Go keeps
// non-blocking: when nothing is there to read, RawConn.Read waits in the
// poller as usual.
//
// Raw, because the calls never block and a plain syscall costs more than
// its own entry and exit here: the runtime's sysmon looks every 20 µs for
// a P sitting in a syscall and hands it to another thread, and a sendmmsg
// on loopback runs tens of µs (it delivers each answer). With the server
// on one CPU, each such hand-off is two thread switches, and a syscall
// after an idle moment wakes sysmon from its deep sleep back into its
// 20 µs rhythm: in bench/dns/run.sh sysmon was ~8% of a cache hit's CPU.
// No sockaddr is allocated either (x/net's ReadBatch makes a
// *net.UDPAddr per packet).
type mmsgConn struct {
	rc     syscall.RawConn
	rd, wr mmsgBufs
}

// mmsghdr is struct mmsghdr: Go lays it out as C does on these
// architectures (a 56-byte msghdr, the 4-byte length, padding to 64).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

type mmsgBufs struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
}

func newMmsgBufs(n int) mmsgBufs {
	return mmsgBufs{make([]mmsghdr, n), make([]unix.Iovec, n), make([]unix.RawSockaddrInet4, n)}
}

// set points header i at b and at its address slot.
func (m *mmsgBufs) set(i int, b []byte) {
	m.iovs[i] = unix.Iovec{}
	if len(b) > 0 {
		m.iovs[i].Base = &b[0]
	}
	m.iovs[i].SetLen(len(b))
	m.hdrs[i] = mmsghdr{hdr: unix.Msghdr{Name: (*byte)(unsafe.Pointer(&m.names[i])),
		Namelen: unix.SizeofSockaddrInet4, Iov: &m.iovs[i]}}
	m.hdrs[i].hdr.SetIovlen(1)
}

func newBatchConn(c *net.UDPConn, n int) (batchConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &mmsgConn{rc: rc, rd: newMmsgBufs(n), wr: newMmsgBufs(n)}, nil
}

func (c *mmsgConn) readBatch(ms []udpMsg) (int, error) {
	k := min(len(ms), len(c.rd.hdrs))
	for i := range k {
		c.rd.set(i, ms[i].buf[:cap(ms[i].buf)])
	}
	n, err := c.call(c.rc.Read, unix.SYS_RECVMMSG, c.rd.hdrs[:k])
	for i := range n {
		h := &c.rd.hdrs[i]
		ms[i].n = int(h.n)
		ms[i].addr = netip.AddrPort{}
		if sa := &c.rd.names[i]; h.hdr.Namelen >= unix.SizeofSockaddrInet4 && sa.Family == unix.AF_INET {
			p := (*[2]byte)(unsafe.Pointer(&sa.Port))
			ms[i].addr = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
		}
	}
	return n, err
}

func (c *mmsgConn) writeBatch(ms []udpMsg) (int, error) {
	k := min(len(ms), len(c.wr.hdrs))
	for i := range k {
		a := ms[i].addr.Addr().Unmap()
		if !a.Is4() { // cannot happen on an IPv4 socket: send those before
			if i == 0 {
				return 0, errors.New("sending to " + ms[i].addr.String() + ": not an IPv4 address")
			}
			k = i
			break
		}
		c.wr.set(i, ms[i].buf[:ms[i].n])
		sa := &c.wr.names[i]
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(ms[i].addr.Port()>>8), byte(ms[i].addr.Port())
	}
	return c.call(c.rc.Write, unix.SYS_SENDMMSG, c.wr.hdrs[:k])
}

// call runs recvmmsg or sendmmsg on hdrs through the RawConn's Read or
// Write, which waits in the poller while the socket is not ready.
func (c *mmsgConn) call(io func(func(uintptr) bool) error, trap uintptr, hdrs []mmsghdr) (int, error) {
	if len(hdrs) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := io(func(fd uintptr) bool {
		for {
			r, _, e := unix.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			n, errno = int(r), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}
