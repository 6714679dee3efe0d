package dnsfilter

import (
	"strings"

	"github.com/miekg/dns"
)

// stripECH removes the ech parameter from HTTPS and SVCB records (RFC 9460)
// and "ech" from their mandatory lists, so that browsers keep sending a
// readable SNI the proxy can filter on. It edits m in place: m must be a
// message this package created (an upstream reply it unpacked itself).
// It reports whether anything changed.
//
// A changed record no longer matches its signature: the RRSIGs that
// covered it go too, and AD is cleared, so that the answer claims nothing
// it cannot back (RFC 4035 §3.2.3). A validator behind the filter then
// finds the HTTPS record of a signed zone unsigned and treats it as
// bogus; the browser connects without ECH, which is the point. Keeping
// ech for queries with DO instead would hand every pupil a switch (set
// DO) that turns the filter's view of the SNI off.
func stripECH(m *dns.Msg) bool {
	changed := false
	for _, sec := range [...]*[]dns.RR{&m.Answer, &m.Ns, &m.Extra} {
		var touched []dns.RR // the changed records' headers
		for _, rr := range *sec {
			var svcb *dns.SVCB
			switch r := rr.(type) {
			case *dns.HTTPS:
				svcb = &r.SVCB
			case *dns.SVCB:
				svcb = r
			default:
				continue
			}
			if stripECHValues(svcb) {
				changed = true
				touched = append(touched, rr)
			}
		}
		if len(touched) > 0 {
			*sec = dropSignatures(*sec, touched)
		}
	}
	if changed {
		m.AuthenticatedData = false
	}
	return changed
}

// dropSignatures removes from sec the RRSIGs that cover the RRsets of
// the records in touched.
func dropSignatures(sec []dns.RR, touched []dns.RR) []dns.RR {
	kept := sec[:0]
	for _, rr := range sec {
		if sig, ok := rr.(*dns.RRSIG); ok && coversAny(sig, touched) {
			continue
		}
		kept = append(kept, rr)
	}
	for i := len(kept); i < len(sec); i++ {
		sec[i] = nil
	}
	return kept
}

func coversAny(sig *dns.RRSIG, rrs []dns.RR) bool {
	for _, rr := range rrs {
		h := rr.Header()
		if sig.TypeCovered == h.Rrtype && strings.EqualFold(sig.Hdr.Name, h.Name) {
			return true
		}
	}
	return false
}

// scrub keeps in an upstream answer only what answers its question
// (RFC 5452 §6, as unbound does): in the answer section, records owned
// by the question's name or a name of its CNAME chain (and a DNAME above
// one of them); in the authority section, the records of the zone the
// last name of the chain is in (its SOA or NS, NSEC/NSEC3 proofs and
// their signatures); nothing in the additional section but OPT. Anything
// else could plant records for names nobody asked about.
func scrub(m *dns.Msg) {
	if len(m.Question) != 1 {
		return
	}
	var chainBuf [8]string
	names := append(chainBuf[:0], m.Question[0].Name)
	// Follow the CNAMEs from the question, in whatever order they come.
	for grown := true; grown && len(names) < 16; {
		grown = false
		for _, rr := range m.Answer {
			c, ok := rr.(*dns.CNAME)
			if !ok || !hasName(names, c.Hdr.Name) || hasName(names, c.Target) {
				continue
			}
			names = append(names, c.Target)
			grown = true
		}
	}
	kept := m.Answer[:0]
	for _, rr := range m.Answer {
		h := rr.Header()
		if hasName(names, h.Name) || h.Rrtype == dns.TypeDNAME && aboveAny(h.Name, names) ||
			h.Rrtype == dns.TypeRRSIG && rr.(*dns.RRSIG).TypeCovered == dns.TypeDNAME && aboveAny(h.Name, names) {
			kept = append(kept, rr)
		}
	}
	clear(m.Answer[len(kept):])
	m.Answer = kept

	last := names[len(names)-1]
	zone := ""
	for _, rr := range m.Ns {
		h := rr.Header()
		if (h.Rrtype == dns.TypeSOA || h.Rrtype == dns.TypeNS) && dns.IsSubDomain(h.Name, last) &&
			(zone == "" || dns.CountLabel(h.Name) > dns.CountLabel(zone)) {
			zone = h.Name
		}
	}
	ns := m.Ns[:0]
	if zone != "" {
		for _, rr := range m.Ns {
			if dns.IsSubDomain(zone, rr.Header().Name) {
				ns = append(ns, rr)
			}
		}
	}
	clear(m.Ns[len(ns):])
	m.Ns = ns

	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	clear(m.Extra[len(extra):])
	m.Extra = extra
}

func hasName(names []string, n string) bool {
	for _, x := range names {
		if strings.EqualFold(x, n) {
			return true
		}
	}
	return false
}

// aboveAny reports whether owner is a proper ancestor of one of names.
func aboveAny(owner string, names []string) bool {
	for _, n := range names {
		if !strings.EqualFold(owner, n) && dns.IsSubDomain(owner, n) {
			return true
		}
	}
	return false
}

func stripECHValues(s *dns.SVCB) bool {
	changed := false
	kept := s.Value[:0]
	for _, kv := range s.Value {
		switch v := kv.(type) {
		case *dns.SVCBECHConfig:
			changed = true
			continue
		case *dns.SVCBMandatory:
			codes := v.Code[:0]
			for _, c := range v.Code {
				if c == dns.SVCB_ECHCONFIG {
					changed = true
					continue
				}
				codes = append(codes, c)
			}
			v.Code = codes
			if len(codes) == 0 {
				// An empty mandatory list is not allowed (RFC 9460 §8).
				continue
			}
		}
		kept = append(kept, kv)
	}
	for i := len(kept); i < len(s.Value); i++ {
		s.Value[i] = nil
	}
	s.Value = kept
	return changed
}
