package classify

import (
	"strings"
	"testing"

	"github.com/schoolgate/schoolgate/categories"
)

func TestSegment(t *testing.T) {
	tests := []struct{ in, want string }{
		// place names and words that hide an unfortunate word
		{"penistone", "penistone"},
		{"cockburnspath", "cockburnspath"},
		{"analytics", "analytics"},
		{"bethesda", "bethesda"},
		{"alphabet", "alphabet"},
		{"therapist", "therapist"},
		{"scunthorpe", "scunthorpe"},
		{"sussex", "sussex"},
		{"essex", "essex"},
		{"middlesex", "middlesex"},
		{"expertsexchange", "experts exchange"},
		{"classicassets", "classic assets"},
		{"grapesoftheworld", "grapes of the world"},
		// ordinary compounds
		{"bestcasinobonus", "best casino bonus"},
		{"freeporn", "free porn"},
		{"cheapweedonline", "cheap weed online"},
		{"unblockedgames", "unblocked games"},
		{"suicidepreventionlifeline", "suicide prevention lifeline"},
		// letters nothing explains stay together
		{"qzxcasino", "qzx casino"},
		{"", ""},
	}
	seg := DefaultSegmenter()
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := strings.Join(SegmentWords(seg.Segment(tt.in)), " ")
			if got != tt.want {
				t.Errorf("Segment(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSegmentLongInput(t *testing.T) {
	segs := DefaultSegmenter().Segment(strings.Repeat("casino", 100))
	n := 0
	for _, s := range segs {
		n += len(s.Word)
	}
	if n != maxSegInput {
		t.Fatalf("segmented %d bytes, want the first %d", n, maxSegInput)
	}
}

func TestHostClassify(t *testing.T) {
	tests := []struct {
		host string
		want categories.Category // Unclassified: no signal above HostThreshold
	}{
		{"penistone.gov.uk", categories.Unclassified},
		{"www.cockburnspath.org", categories.Unclassified},
		{"analytics.example.com", categories.Unclassified},
		{"bethesda.net", categories.Unclassified},
		{"alphabet.com", categories.Unclassified},
		{"therapist.com", categories.Unclassified},
		{"scunthorpe.gov.uk", categories.Unclassified},
		{"sussex.ac.uk", categories.Unclassified},
		{"essex.police.uk", categories.Unclassified},
		{"expertsexchange.com", categories.Unclassified},
		{"gamblersanonymous.org.uk", categories.Unclassified},
		{"suicidepreventionlifeline.org", categories.Unclassified},
		{"gambling-addiction-help.org", categories.Unclassified},
		{"mathsgames.co.uk", categories.Unclassified},
		{"bethpage.org", categories.Unclassified},
		{"xn--caf-dma.fr", categories.Unclassified},
		{"", categories.Unclassified},
		{"bestcasinobonus.com", categories.Gambling},
		{"live-roulette-online.net", categories.Gambling},
		{"poker77.io", categories.Gambling},
		{"freepornvids.net", categories.Adult},
		{"hotsexcams.co.uk", categories.Adult},
		{"unblock-proxy.site", categories.ProxyAvoidance},
		{"cheapweedonline.co", categories.Drugs},
		{"datingsingles.com", categories.Dating},
	}
	h := DefaultHost()
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			r := h.Classify(tt.host)
			got := categories.Unclassified
			if r.Score >= HostThreshold {
				got = r.Category
			}
			if got != tt.want {
				t.Errorf("Classify(%q) = %v %.2f (words %v, signals %v), want %v",
					tt.host, r.Category, r.Score, r.Words, r.Signals, tt.want)
			}
		})
	}
}

func TestHostVocabularyErrors(t *testing.T) {
	for _, bad := range []string{"gambling casino", "nosuch 2 word", "gambling x word", "gambling -2 word", "context 2 help", "unclassified 1 x",
		"gambling 2 casino\n# " + strings.Repeat("x", 70000)} { // a line too long to read is an error, not the end
		if _, err := NewHostClassifier(NewSegmenter("@1\nword"), bad); err == nil {
			t.Errorf("NewHostClassifier(%q): no error", bad)
		}
	}
}

func FuzzHostClassify(f *testing.F) {
	for _, s := range []string{"bestcasinobonus.com", "www.penistone.gov.uk", "xn--caf-dma.fr", "a..b", "-.-", "", "127.0.0.1",
		"expertsexchange.com.", strings.Repeat("casino", 50) + ".example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		r := DefaultHost().Classify(host)
		if r.Score < 0 || r.Score > 1 {
			t.Fatalf("score %v", r.Score)
		}
		if r.Score == 0 && r.Category != categories.Unclassified {
			t.Fatalf("category %v with score 0", r.Category)
		}
		for _, w := range r.Words {
			if w == "" {
				t.Fatal("empty word")
			}
		}
	})
}
