package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/policy"
)

const classifyUsage = `usage: schoolgate classify [-config FILE] [-profile P] [-json] [-phrases FILE]... FILE...

Scores saved web pages as the proxy's content classifier would: the first
64 KiB of each page, its visible text (title, description, headings, body;
not scripts or styles), normalised and matched against the phrase lists.
Prints the score per category, the phrases that drove it, the categories
over the profile's content_threshold and the verdict the profile gives a
page in those categories.

  -profile P     the profile whose threshold and rules apply (default: the
                 config's default_profile)
  -json          one JSON object per file, one per line
  -phrases FILE  an extra phrase file ("WEIGHT PHRASE" lines; named after its
                 category or starting with "category: NAME"), added to the
                 embedded lists and the config's content.phrase_files; may be
                 repeated
  -config FILE   the config (default: the embedded default config)

FILE may be a path, a file:// URL, or - for stdin. A page that does not start
with '<' is read as plain text. Exit status: 0 whatever the verdicts; 1 when a
file cannot be read or the config cannot be loaded; 2 for bad usage.
`

// classifyHost stands for the page's host when the profile's rules decide:
// .invalid never matches a list or a rule's domains (RFC 6761).
const classifyHost = "classified-page.invalid"

// classifyUser is the one user of the snapshot classify compiles, so that
// the chosen profile applies.
const classifyUser = "schoolgate-classify"

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// classifyOutput is one file's result; the JSON form is docs/contract.md §1's.
type classifyOutput struct {
	File       string             `json:"file"`
	Profile    string             `json:"profile"`
	Threshold  float64            `json:"threshold"`
	Clear      float64            `json:"clear_evidence"` // the score that blocks (classify.ClearEvidence)
	Categories []string           `json:"categories"`     // over the threshold (docs/contract.md)
	Unsure     []string           `json:"unsure"`         // of those, the ones short of clear evidence: allowed and logged`
	Scores     map[string]float64 `json:"scores"`
	Phrases    []string           `json:"phrases"`
	Verdict    string             `json:"verdict"`
	Rule       string             `json:"rule"`
	Reason     string             `json:"reason"`
	Matches    []classifyMatch    `json:"matches"`
	Words      int                `json:"words"`
}

type classifyMatch struct {
	Category string  `json:"category"`
	Phrase   string  `json:"phrase"`
	Count    int     `json:"count"`
	Effect   float64 `json:"effect"` // negative: context that counted against
}

func runClassify(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("classify", classifyUsage, stderr)
	cfgPath := configFlag(fs, configUsage)
	profile := fs.String("profile", "", "profile")
	asJSON := fs.Bool("json", false, "JSON output")
	var extra stringList
	fs.Var(&extra, "phrases", "extra phrase file")

	files, err := parseInterspersed(fs, args)
	if err != nil {
		return parseStatus(err)
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "schoolgate classify: no FILE given (a saved page, or - for stdin)")
		fmt.Fprint(stderr, classifyUsage)
		return 2
	}
	c, status := newClassifyRun(*cfgPath, *profile, extra, stderr)
	if c == nil {
		return status
	}
	out := bufio.NewWriter(stdout)
	for _, f := range files {
		res, err := classifyFile(c.cl, f, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "schoolgate classify: %v\n", err)
			status = 1
			continue
		}
		o, err := c.judge(f, res)
		if err == nil {
			err = writeClassifyOutput(out, o, *asJSON)
		}
		if err != nil {
			fmt.Fprintf(stderr, "schoolgate classify: %v\n", err)
			return 1
		}
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "schoolgate classify: writing output: %v\n", err)
		return 1
	}
	return status
}

// classifyRun is what `classify` scores and decides pages with.
type classifyRun struct {
	cl        *classify.Classifier
	profile   string
	threshold float64
	dec       *classifyDecider
}

// newClassifyRun loads the config and the phrase files (the config's
// content.phrase_files, then -phrases); on failure it has said why and
// returns nil and the exit status.
func newClassifyRun(cfgPath, profile string, extra []string, stderr io.Writer) (*classifyRun, int) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate classify: loading config:\n%v\n", err)
		return nil, 1
	}
	if profile == "" {
		profile = cfg.DefaultProfile
	}
	p, ok := cfg.Profiles[profile]
	if !ok {
		fmt.Fprintf(stderr, "schoolgate classify: unknown profile %q (profiles: %s)\n", profile, profileNames(cfg))
		return nil, 2
	}
	cl, err := classify.New(append(append([]string{}, cfg.Content.PhraseFiles...), extra...)...)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate classify: %v\n", err)
		return nil, 1
	}
	threshold := p.ContentThreshold
	if threshold <= 0 {
		threshold = classify.DefaultThreshold
	}
	return &classifyRun{cl: cl, profile: profile, threshold: threshold,
		dec: &classifyDecider{cfg: cfg, profile: profile, snaps: map[categories.Set]*policy.Snapshot{}}}, 0
}

// judge decides the page scored res as the proxy decides: only clear
// evidence blocks (docs/classifier.md).
func (c *classifyRun) judge(file string, res *classify.Result) (classifyOutput, error) {
	sure, unsure := res.Judge(c.threshold)
	over := res.Over(c.threshold)
	d, err := c.dec.decide(sure, time.Now())
	if err != nil {
		return classifyOutput{}, err
	}
	o := newClassifyOutput(file, c.profile, c.threshold, res, over, d)
	o.Clear, o.Unsure = round3(classify.ClearEvidence(c.threshold)), unsure.Names()
	return o, nil
}

func writeClassifyOutput(out *bufio.Writer, o classifyOutput, asJSON bool) error {
	if !asJSON {
		writeClassifyHuman(out, o)
		return nil
	}
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	out.Write(b)
	out.WriteByte('\n')
	return nil
}

func profileNames(cfg *config.Config) string {
	var ns []string
	for n := range cfg.Profiles {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

// classifyFile reads the first part of a page (as much as the proxy
// sniffs) and scores it.
func classifyFile(cl *classify.Classifier, name string, stdin io.Reader) (*classify.Result, error) {
	var r io.Reader
	switch {
	case name == "-":
		r = stdin
	default:
		path := name
		if strings.HasPrefix(name, "file:") {
			u, err := url.Parse(name)
			if err != nil || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
				return nil, fmt.Errorf("%s: only file:///path URLs of local files can be classified", name)
			}
			path = u.Path
		} else if strings.Contains(name, "://") {
			return nil, fmt.Errorf("%s: classify reads saved pages; save the page and give its file (or a file:// URL)", name)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("reading page: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return nil, fmt.Errorf("reading page %s: is a directory", path)
		}
		r = f
	}
	br := bufio.NewReaderSize(r, 4096)
	head, err := br.Peek(512)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if looksHTML(head) {
		res, err := cl.ScoreHTML(br, classify.DefaultExtractLimit)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return res, nil
	}
	w := cl.Writer()
	if _, err := io.Copy(w, io.LimitReader(br, classify.DefaultExtractLimit)); err != nil {
		w.Result()
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return w.Result(), nil
}

// looksHTML reports whether a page starts like markup (after a BOM and
// white space).
func looksHTML(head []byte) bool {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	head = bytes.TrimLeft(head, " \t\r\n\f")
	return len(head) > 0 && head[0] == '<'
}

// classifyDecider asks the policy what the profile does with a page in a
// set of categories: a snapshot of the config whose database puts a
// placeholder host in exactly those categories, decided for a user of the
// profile. It is the same Decide the proxy uses, so schedules, rule order
// and `unclassified` rules apply as they would.
type classifyDecider struct {
	cfg     *config.Config
	profile string
	snaps   map[categories.Set]*policy.Snapshot
}

func (c *classifyDecider) decide(cats categories.Set, now time.Time) (policy.Decision, error) {
	s, ok := c.snaps[cats]
	if !ok {
		b := categories.NewBuilder()
		for _, cat := range categories.All() {
			if cats.Has(cat) {
				b.Add(classifyHost, cat)
			}
		}
		var err error
		s, err = policy.Compile(c.cfg, b.Build(), []config.User{{Name: classifyUser, Profile: c.profile}})
		if err != nil {
			return policy.Decision{}, fmt.Errorf("compiling the policy: %w", err)
		}
		c.snaps[cats] = s
	}
	return s.Decide(policy.Args{User: classifyUser, Host: classifyHost, Time: now}), nil
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func newClassifyOutput(file, profile string, threshold float64, r *classify.Result, over categories.Set, d policy.Decision) classifyOutput {
	o := classifyOutput{
		File:       file,
		Profile:    profile,
		Threshold:  threshold,
		Categories: over.Names(),
		Scores:     map[string]float64{},
		Phrases:    []string{},
		Matches:    []classifyMatch{},
		Verdict:    d.Verdict.String(),
		Rule:       d.Rule,
		Reason:     d.Reason,
		Words:      r.Words,
	}
	for i, v := range r.Scores {
		if v > 0 {
			o.Scores[categories.Category(i).String()] = round3(v)
		}
	}
	seen := map[string]bool{}
	for _, m := range r.Matches {
		o.Matches = append(o.Matches, classifyMatch{Category: m.Category.String(), Phrase: m.Phrase, Count: m.Count, Effect: round3(m.Effect)})
		// phrases: what drove the categories over the threshold (or, when
		// none is, the best scoring one), strongest first
		if m.Effect > 0 && !seen[m.Phrase] && (over.Has(m.Category) || over.Empty()) {
			seen[m.Phrase] = true
			o.Phrases = append(o.Phrases, m.Phrase)
		}
	}
	return o
}

// writeClassifyHuman prints a result for a technician:
//
//	page.html: BLOCK for student — gambling 0.98 (threshold 0.60), rule student#2: category gambling is blocked for student
//	  gambling    0.98  + online casino ×2 (+4.08)  + free spins (+3.00)  − gambling addiction (−6.00)
func writeClassifyHuman(w *bufio.Writer, o classifyOutput) {
	fmt.Fprintf(w, "%s: %s for %s", o.File, strings.ToUpper(o.Verdict), o.Profile)
	if len(o.Categories) == 0 {
		fmt.Fprintf(w, " — no category over the threshold %.2f", o.Threshold)
	} else {
		parts := make([]string, len(o.Categories))
		for i, c := range o.Categories {
			parts[i] = fmt.Sprintf("%s %.2f", c, o.Scores[c])
		}
		fmt.Fprintf(w, " — %s (threshold %.2f, clear evidence %.2f)", strings.Join(parts, ", "), o.Threshold, o.Clear)
	}
	if len(o.Unsure) > 0 {
		parts := make([]string, len(o.Unsure))
		for i, c := range o.Unsure {
			parts[i] = fmt.Sprintf("%s %.2f", c, o.Scores[c])
		}
		fmt.Fprintf(w, "; unsure, so allowed: %s", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, ", rule %s: %s\n", o.Rule, o.Reason)
	// every category a phrase spoke for, even when context cancelled it
	cats := make([]string, 0, len(o.Scores))
	seen := map[string]bool{}
	for _, m := range o.Matches {
		if !seen[m.Category] {
			seen[m.Category] = true
			cats = append(cats, m.Category)
		}
	}
	sort.Slice(cats, func(i, j int) bool {
		if o.Scores[cats[i]] != o.Scores[cats[j]] {
			return o.Scores[cats[i]] > o.Scores[cats[j]]
		}
		return cats[i] < cats[j]
	})
	for _, c := range cats {
		fmt.Fprintf(w, "  %-16s %.2f ", c, o.Scores[c])
		// the evidence first, then the context against it
		for _, positive := range []bool{true, false} {
			n, limit := 0, 6
			if !positive {
				limit = 4
			}
			for _, m := range o.Matches {
				if m.Category != c || (m.Effect > 0) != positive {
					continue
				}
				if n == limit {
					w.WriteString("  …")
					break
				}
				n++
				sign := "+"
				if m.Effect < 0 {
					sign = "−"
				}
				times := ""
				if m.Count > 1 {
					times = fmt.Sprintf(" ×%d", m.Count)
				}
				fmt.Fprintf(w, "  %s %s%s (%+.2f)", sign, m.Phrase, times, m.Effect)
			}
		}
		w.WriteByte('\n')
	}
	if len(cats) == 0 {
		fmt.Fprintf(w, "  no phrase of any category found in %d words\n", o.Words)
	}
}
