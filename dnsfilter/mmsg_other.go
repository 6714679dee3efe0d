//go:build !(linux && (amd64 || arm64))

package dnsfilter

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// xnetBatch is batchConn through x/net (recvmmsg/sendmmsg where the
// platform has them, one packet at a time elsewhere).
type xnetBatch struct {
	pc      *ipv4.PacketConn
	in, out []ipv4.Message
}

func newBatchConn(c *net.UDPConn, n int) (batchConn, error) {
	b := &xnetBatch{pc: ipv4.NewPacketConn(c), in: make([]ipv4.Message, n), out: make([]ipv4.Message, n)}
	for i := range n {
		b.in[i].Buffers = make([][]byte, 1)
		b.out[i].Buffers = make([][]byte, 1)
	}
	return b, nil
}

func (b *xnetBatch) readBatch(ms []udpMsg) (int, error) {
	k := min(len(ms), len(b.in))
	for i := range k {
		b.in[i].Buffers[0] = ms[i].buf[:cap(ms[i].buf)]
	}
	n, err := b.pc.ReadBatch(b.in[:k], 0)
	for i := range n {
		ms[i].n = b.in[i].N
		ms[i].addr = netip.AddrPort{}
		if ua, ok := b.in[i].Addr.(*net.UDPAddr); ok {
			ms[i].addr = ua.AddrPort()
		}
	}
	return n, err
}

func (b *xnetBatch) writeBatch(ms []udpMsg) (int, error) {
	k := min(len(ms), len(b.out))
	for i := range k {
		b.out[i].Buffers[0] = ms[i].buf[:ms[i].n]
		b.out[i].Addr = net.UDPAddrFromAddrPort(ms[i].addr)
	}
	return b.pc.WriteBatch(b.out[:k], 0)
}
