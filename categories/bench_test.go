package categories

import (
	"github.com/schoolgate/schoolgate/internal/testenv"
	"testing"
)

// The lookup benchmarks run on every public list loaded (about 640,000
// distinct entries); they skip when shared/lists is absent. Compare
// cpu-ns/op rather than ns/op on a shared machine:
//
//	go test -run '^$' -bench 'Lookup$' -benchtime 200ms -count 5 -cpu 1 ./categories

func BenchmarkLookup(b *testing.B) {
	db := loadPublicDB(b)
	cases := []struct{ name, host, path string }{
		{"hit", "www.bet365.com", ""},
		{"hit-exact", "pokerstars.com", ""},
		{"miss", "www.example-unlisted.org", ""},
		{"deep-subdomain", "a.b.c.d.e.f.g.cdn.static.pokerstars.com", ""},
		{"deep-miss", "a.b.c.d.e.f.g.cdn.static.example-unlisted.co.uk", ""},
		{"url-host-path", "www.bbc.co.uk", "/iplayer/episode/b0b0b0b0/some-programme"},
		{"url-miss-path", "www.bet365.com", "/en/sports/football?x=1"},
		// 956 UT1 URL entries under this host
		{"url-many-entries", "docs.google.com", "/presentation/d/e/2PACX-1vQ-not-listed/pub?start=false"},
		{"url-escaped", "docs.google.com", "/presentation/d/%65/2PACX-1vQ-not-listed/pub"},
		// already normal escapes (upper-case, reserved or non-ASCII): no copy
		{"url-escaped-normal", "docs.google.com", "/presentation/d/e/caf%C3%A9/pub?q=a%26b"},
		// the bypass shapes: normalised into a stack buffer
		{"url-dot-segments", "docs.google.com", "/presentation/./d/x/../e/2PACX-1vQ-not-listed/pub"},
		{"url-double-slash", "docs.google.com", "//presentation//d/e/2PACX-1vQ-not-listed/pub"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var sink Set
			start := testenv.ProcessCPU()
			for b.Loop() {
				sink |= db.Lookup(c.host, c.path)
			}
			b.ReportMetric(float64(testenv.ProcessCPU()-start)/float64(b.N), "cpu-ns/op")
			_ = sink
		})
	}
}

func BenchmarkLookupParallel(b *testing.B) {
	db := loadPublicDB(b)
	hosts := []string{"www.bet365.com", "www.example-unlisted.org", "a.b.c.cdn.pokerstars.com", "mail.google.com"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		var sink Set
		for pb.Next() {
			sink |= db.Lookup(hosts[i&3], "")
			i++
		}
		_ = sink
	})
}

func BenchmarkLoadAllLists(b *testing.B) {
	root := sharedLists(b)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		bl := NewBuilder()
		bl.AddEmbedded()
		st := loadAllPublic(b, bl, root)
		n = st.Added
		bl.Build()
	}
	b.ReportMetric(float64(n), "lines")
}

func BenchmarkNormalizeHost(b *testing.B) {
	for _, c := range []struct{ name, in string }{
		{"canonical", "www.some-site.example.co.uk"},
		{"upper-port-dot", "WWW.Some-Site.Example.CO.UK.:443"},
		{"idn-unicode", "www.bücher.de"},
		{"punycode", "www.xn--bcher-kva.de"},
		{"ipv6", "[2001:db8::1]:443"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NormalizeHost(c.in)
			}
		})
	}
}

func BenchmarkSplitTarget(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		SplitTarget("https://www.bet365.com/en/sports?x=1")
	}
}
