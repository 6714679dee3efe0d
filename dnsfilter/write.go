package dnsfilter

import (
	"encoding/binary"
	"sync"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// maxUDPResponse caps UDP answers at the DNS flag day 2020 size whatever
// the client advertises, to stay clear of IP fragmentation; bigger answers
// are truncated (TC) and the client retries over TCP.
const maxUDPResponse = 1232

// maxSize is the largest response the client can take (RFC 6891: 512
// without EDNS, or less than 512 advertised).
func (r *request) maxSize() int {
	switch {
	case r.tcp:
		return dns.MaxMsgSize
	case !r.edns:
		return dns.MinMsgSize
	}
	return min(max(r.udpSize, dns.MinMsgSize), maxUDPResponse)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1536); return &b }}

// reply starts an answer to the query. It never modifies the query.
func (s *Server) reply(r *request) *dns.Msg {
	m := new(dns.Msg)
	m.Id = r.id
	m.Response = true
	m.Opcode = r.opcode
	m.RecursionDesired = r.rd
	m.RecursionAvailable = true
	m.CheckingDisabled = r.cd
	m.Question = []dns.Question{r.question}
	return m
}

// opt is the OPT record of an answer to r: with the client subnet echoed
// when a trusted forwarder's ECS named the client, its scope the whole
// source prefix, so that the forwarder keeps the answer for that client
// (or network) only: answers differ by profile (RFC 7871 §7.2.1).
func (r *request) opt() *dns.OPT {
	o := responseOPT(r.do)
	if r.ecsUsed {
		bits := uint8(r.ecs.Bits())
		e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: bits, SourceScope: bits, Address: r.ecs.Addr().AsSlice()}
		if r.ecs.Addr().Is6() {
			e.Family = 2
		}
		o.Option = append(o.Option, e)
	}
	return o
}

func responseOPT(do bool) *dns.OPT {
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(maxUDPResponse)
	if do {
		o.SetDo()
	}
	return o
}

// writeMsg sends m (a message built here) with an OPT record when the
// query had one, truncated to what the client can take.
func (s *Server) writeMsg(r *request, m *dns.Msg) {
	if r.edns && m.IsEdns0() == nil {
		m.Extra = append(m.Extra, r.opt())
	}
	if !r.tcp {
		m.Truncate(r.maxSize())
	}
	bp := bufPool.Get().(*[]byte)
	b, err := m.PackBuffer((*bp)[:0])
	if err != nil {
		bufPool.Put(bp)
		s.writeMinimal(r, dns.RcodeServerFailure)
		return
	}
	s.write(r, b, m.Rcode)
	if cap(b) <= 1<<16 {
		*bp = b[:0]
	}
	bufPool.Put(bp)
}

// writeMinimal sends a header-only answer with rcode, echoing the
// question when there is exactly one: never bigger than the query, so it
// is safe even towards a stranger.
func (s *Server) writeMinimal(r *request, rcode int) {
	m := new(dns.Msg)
	m.Id = r.id
	m.Response = true
	m.Opcode = r.opcode
	m.RecursionDesired = r.rd
	m.RecursionAvailable = r.client
	m.Rcode = rcode
	if r.qd == 1 && rcode != dns.RcodeFormatError {
		m.Question = []dns.Question{r.question}
	}
	if r.edns && r.client {
		// RFC 6891 §7: an EDNS query gets an OPT record, errors included
		// (and BADVERS lives in it). A stranger gets the bare header.
		m.Extra = []dns.RR{r.opt()}
	}
	b, err := m.Pack()
	if err != nil {
		// Only an unpackable question gets here: answer without it.
		m.Question = nil
		m.Extra = nil
		if m.Rcode > 0xF {
			m.Rcode = dns.RcodeServerFailure
		}
		if b, err = m.Pack(); err != nil {
			return
		}
	}
	s.write(r, b, rcode)
}

// writeEntry sends a cached answer: a copy of its wire form with the
// query's ID, flags and spelling of the name, TTLs decremented, and an OPT
// record when the query had one. No unpacking on this path.
func (s *Server) writeEntry(r *request, e *entry, now int64) {
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], e.wire...)
	binary.BigEndian.PutUint16(b[0:], r.id)
	const rd, cd = 1 << 8, 1 << 4
	flags := binary.BigEndian.Uint16(b[2:]) &^ (rd | cd)
	if r.rd {
		flags |= rd
	}
	if r.cd {
		flags |= cd
	}
	binary.BigEndian.PutUint16(b[2:], flags)
	if r.mixedCase {
		echoSpelling(b, r.question.Name)
	}
	elapsed := uint32(max(now-e.stored, 0))
	for _, off := range e.ttlOffs {
		t := binary.BigEndian.Uint32(b[off:])
		binary.BigEndian.PutUint32(b[off:], t-min(t, elapsed))
	}
	if r.edns {
		if r.ecsUsed {
			b = appendOPTRecord(b, r.opt())
		} else {
			b = appendOPT(b, r.do)
		}
	}
	if len(b) > r.maxSize() {
		s.writeTruncated(r, b, e.rcode)
	} else {
		s.write(r, b, e.rcode)
	}
	*bp = b[:0]
	bufPool.Put(bp)
}

// echoSpelling writes the client's spelling of the question name over
// the cached (lower-case) one, for resolvers that randomise case (0x20):
// the names differ only in case, so they have the same length. Kept out
// of writeEntry so that its stack frame stays small.
//
//go:noinline
func echoSpelling(b []byte, name string) {
	off, err := skipName(b, 12)
	if err != nil {
		return
	}
	var nb [256]byte
	if n, err := dns.PackDomainName(name, nb[:], 0, nil, false); err == nil && n == off-12 {
		copy(b[12:off], nb[:n])
	}
}

// appendOPTRecord appends o (the slow way, for OPTs with options) and
// counts it in ARCOUNT.
//
//go:noinline
func appendOPTRecord(b []byte, o *dns.OPT) []byte {
	var buf [512]byte
	n, err := dns.PackRR(o, buf[:], 0, nil, false)
	if err != nil {
		return appendOPT(b, o.Do())
	}
	b = append(b, buf[:n]...)
	binary.BigEndian.PutUint16(b[10:], binary.BigEndian.Uint16(b[10:])+1)
	return b
}

// appendOPT appends an EDNS OPT record (RFC 6891) and counts it in ARCOUNT.
func appendOPT(b []byte, do bool) []byte {
	var ttl uint32
	if do {
		ttl = 1 << 15
	}
	b = append(b, 0, byte(dns.TypeOPT>>8), byte(dns.TypeOPT), byte(maxUDPResponse>>8), byte(maxUDPResponse&0xff),
		byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), 0, 0)
	binary.BigEndian.PutUint16(b[10:], binary.BigEndian.Uint16(b[10:])+1)
	return b
}

// writeTruncated is the rare slow path of writeEntry: an answer too big
// for the client's UDP size.
func (s *Server) writeTruncated(r *request, b []byte, rcode int) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		s.writeMinimal(r, dns.RcodeServerFailure)
		return
	}
	s.writeMsg(r, m)
}

// write sends the answer. The query is counted and logged just before,
// so that a client (or a test) that has its answer also finds the log
// line queued and the metrics counted.
func (s *Server) write(r *request, b []byte, rcode int) {
	r.answered, r.rcode, r.bytes = true, rcode, len(b)
	s.finish(r)
	if _, err := r.w.Write(b); err != nil {
		s.logger.Debug("writing dns answer", zap.Error(err))
	}
}
