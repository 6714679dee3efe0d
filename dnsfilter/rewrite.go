package dnsfilter

import "github.com/miekg/dns"

// stripECH removes the ech parameter from HTTPS and SVCB records (RFC 9460)
// and "ech" from their mandatory lists, so that browsers keep sending a
// readable SNI the proxy can filter on. It edits m in place: m must be a
// message this package created (an upstream reply it unpacked itself).
// It reports whether anything changed.
func stripECH(m *dns.Msg) bool {
	changed := false
	for _, sec := range [...][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
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
			}
		}
	}
	return changed
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
