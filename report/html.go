package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

//go:embed report.html.tmpl
var htmlTemplate string

var tmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":   fmtNum,
	"clock": func(t time.Time) string { return t.Format("15:04") },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format("Mon 2 Jan 15:04")
	},
	"minus": func(d, x int) int { return x - d },
	"plus":  func(d int, x float64) float64 { return x + float64(d) },
	"add":   func(a, b int) int { return a + b },
	"barw": func(n, mx int64) int {
		if mx <= 0 {
			return 0
		}
		return max(2, int(80*n/mx))
	},
	"pct": func(part, whole int64) string {
		if whole == 0 {
			return "0%"
		}
		p := 100 * float64(part) / float64(whole)
		if p > 0 && p < 0.1 {
			return "<0.1%"
		}
		return fmt.Sprintf("%.1f%%", p)
	},
}).Parse(htmlTemplate))

// WriteHTML writes the report as one self-contained HTML page: inline CSS
// and SVG, nothing fetched, so it opens offline and prints. Every string
// from the log is escaped by html/template.
func (r *Report) WriteHTML(w io.Writer) error {
	return tmpl.Execute(w, r.view())
}

type view struct {
	R            *Report
	Period       string
	Single       bool
	BlockedPct   string
	Busiest      string
	BusiestN     int64
	HourChart    barChart
	DayChart     *barChart
	CatChart     hbarChart
	IncUsers     []incUser
	IncGroups    int
	IncHidden    int64
	Repeated     int
	OOHGroups    int
	Users        []*UserSummary
	UsersHidden  int64
	Searches     []*Search
	SearchHidden int64
	MaxBlocked   int64
	MaxOver      int64
	NUsers       int64
	NDevices     int64
	NIncUsers    int64
	NRows        int64
	SeriousList  string
	RepeatRule   string
	HoursDesc    string
	Zone         string
}

type incUser struct {
	Name     string
	Unknown  bool
	Attempts int64
	Rows     []incRow
}

type incRow struct {
	*Incident
	When       string
	Cats       string
	Highlight  bool
	Continuous bool // same user as the row above: name cell left blank on screen
}

func (r *Report) view() view {
	v := view{R: r, Single: r.From.Equal(r.To)}
	if v.Single {
		v.Period = r.From.Format("Monday 2 January 2006")
	} else {
		v.Period = r.From.Format("Mon 2 Jan 2006") + " – " + r.To.Format("Mon 2 Jan 2006")
	}
	v.BlockedPct = "0%"
	if r.Requests > 0 {
		v.BlockedPct = fmt.Sprintf("%.1f%%", 100*float64(r.Blocked)/float64(r.Requests))
	}
	if r.Requests > 0 {
		v.Busiest = fmt.Sprintf("%02d:00", r.BusiestHour)
		v.BusiestN = r.Hours[r.BusiestHour].Allowed + r.Hours[r.BusiestHour].Blocked
	} else {
		v.Busiest = "—"
	}
	v.NUsers = int64(r.DistinctUsers)
	v.NDevices = int64(r.Devices)
	v.NRows = int64(len(r.Users))
	v.SeriousList = strings.Join(r.SeriousCategories, ", ")
	v.RepeatRule = fmt.Sprintf("%d or more attempts within %d minutes", repeatCount, int(repeatWindow/time.Minute))
	v.HoursDesc = r.SchoolHours
	v.Zone = r.From.Location().String()
	v.HourChart = hourChart(r)
	if !v.Single {
		c := dayChart(r)
		v.DayChart = &c
	}
	v.CatChart = catChart(r)

	v.incidents(r.Incidents)
	// Users most worth a look first: incidents, then blocks, then volume.
	users := append([]*UserSummary(nil), r.Users...)
	sort.SliceStable(users, func(i, j int) bool {
		a, b := users[i], users[j]
		if a.Incidents != b.Incidents {
			return a.Incidents > b.Incidents
		}
		if a.Blocked != b.Blocked {
			return a.Blocked > b.Blocked
		}
		return a.Requests > b.Requests
	})
	const maxUserRows = 40
	if len(users) > maxUserRows {
		v.UsersHidden = int64(len(users) - maxUserRows)
		users = users[:maxUserRows]
	}
	v.Users = users
	const maxSearchRows = 40
	v.Searches = r.Searches
	if len(v.Searches) > maxSearchRows {
		v.SearchHidden = int64(len(v.Searches) - maxSearchRows)
		v.Searches = v.Searches[:maxSearchRows]
	}
	for _, h := range r.TopBlocked {
		v.MaxBlocked = max(v.MaxBlocked, h.Count)
	}
	for _, h := range r.OverBlocking {
		v.MaxOver = max(v.MaxOver, h.Count)
	}
	return v
}

// incidents groups the incident rows by person for the page, at most
// maxIncidentRows of them (a page that still opens and prints).
func (v *view) incidents(incidents []*Incident) {
	var cur *incUser
	const maxIncidentRows = 1000
	for i, in := range incidents {
		if i == maxIncidentRows {
			v.IncHidden = int64(len(incidents) - i)
			break
		}
		name := in.User
		if name == "" {
			name = "(unknown user) — device " + in.IP
		}
		if cur == nil || cur.Name != name {
			v.IncUsers = append(v.IncUsers, incUser{Name: name, Unknown: in.User == ""})
			v.NIncUsers++
			cur = &v.IncUsers[len(v.IncUsers)-1]
		}
		cur.Attempts += in.Count
		when := in.First.Format("Mon 2 Jan 15:04")
		if in.Last.Sub(in.First) >= time.Minute {
			if in.Last.Format(time.DateOnly) == in.First.Format(time.DateOnly) {
				when += "–" + in.Last.Format("15:04")
			} else {
				when += " – " + in.Last.Format("Mon 2 Jan 15:04")
			}
		}
		cur.Rows = append(cur.Rows, incRow{Incident: in, When: when, Cats: strings.Join(in.Categories.Names(), ", "),
			Highlight: in.Repeated || in.OutOfHours > 0, Continuous: len(cur.Rows) > 0})
		v.IncGroups++
		if in.Repeated {
			v.Repeated++
		}
		if in.OutOfHours > 0 {
			v.OOHGroups++
		}
	}
}

// Charts are drawn here as plain geometry; the template only places it.

type barChart struct {
	W, H, Left, Bottom, Top, PlotW, PlotH int
	Bars                                  []bar
	Ticks                                 []tick
	Labels                                []axisLabel
}

type bar struct {
	X, W   float64
	YA, HA float64 // allowed (lower) part
	YB, HB float64 // blocked (upper) part
	Title  string
}

type tick struct {
	Y     float64
	Label string
}

type axisLabel struct {
	X     float64
	Label string
}

func hourChart(r *Report) barChart {
	vals := make([][2]int64, 24)
	labels := make([]string, 24)
	for h, c := range r.Hours {
		vals[h] = [2]int64{c.Allowed, c.Blocked}
		if h%3 == 0 {
			labels[h] = fmt.Sprintf("%02d", h)
		}
		_ = labels
	}
	titles := make([]string, 24)
	for h, c := range r.Hours {
		titles[h] = fmt.Sprintf("%02d:00–%02d:00: %s allowed, %s blocked", h, (h+1)%24, fmtNum(c.Allowed), fmtNum(c.Blocked))
	}
	return stacked(vals, labels, titles, 520)
}

func dayChart(r *Report) barChart {
	vals := make([][2]int64, len(r.Days))
	labels := make([]string, len(r.Days))
	titles := make([]string, len(r.Days))
	for i, d := range r.Days {
		vals[i] = [2]int64{d.Requests - d.Blocked, d.Blocked}
		if t, err := time.Parse(time.DateOnly, d.Day); err == nil {
			labels[i] = t.Format("Mon 2")
		} else {
			labels[i] = d.Day
		}
		titles[i] = fmt.Sprintf("%s: %s requests, %s blocked", d.Day, fmtNum(d.Requests), fmtNum(d.Blocked))
	}
	if len(vals) > 14 {
		for i := range labels {
			if i%7 != 0 {
				labels[i] = ""
			}
		}
	}
	return stacked(vals, labels, titles, 520)
}

func stacked(vals [][2]int64, labels, titles []string, width int) barChart {
	c := barChart{W: width, H: 230, Left: 52, Bottom: 24, Top: 10}
	c.PlotW = c.W - c.Left - 8
	c.PlotH = c.H - c.Bottom - c.Top
	var mx int64
	for _, v := range vals {
		mx = max(mx, v[0]+v[1])
	}
	top, step := niceScale(mx)
	for y := int64(0); y <= top; y += step {
		c.Ticks = append(c.Ticks, tick{Y: float64(c.Top) + float64(c.PlotH)*(1-float64(y)/float64(top)), Label: fmtShort(y)})
	}
	n := len(vals)
	if n == 0 {
		return c
	}
	slot := float64(c.PlotW) / float64(n)
	bw := slot * 0.72
	for i, v := range vals {
		x := float64(c.Left) + slot*float64(i) + (slot-bw)/2
		// A non-zero count stays visible (one request at 23:00 matters).
		ha := visible(float64(c.PlotH)*float64(v[0])/float64(top), v[0])
		hb := visible(float64(c.PlotH)*float64(v[1])/float64(top), v[1])
		base := float64(c.Top + c.PlotH)
		c.Bars = append(c.Bars, bar{X: round1(x), W: round1(bw), YA: round1(base - ha), HA: round1(ha),
			YB: round1(base - ha - hb), HB: round1(hb), Title: titles[i]})
		if labels[i] != "" {
			c.Labels = append(c.Labels, axisLabel{X: round1(x + bw/2), Label: labels[i]})
		}
	}
	return c
}

type hbarChart struct {
	W, H, LabelW int
	Rows         []hbar
}

type hbar struct {
	Y, W    float64
	Label   string
	Count   string
	Serious bool
}

func catChart(r *Report) hbarChart {
	type kv struct {
		c categories.Category
		n int64
	}
	var cs []kv
	for i, n := range r.CatBlocked {
		if n > 0 {
			cs = append(cs, kv{categories.Category(i), n})
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].n != cs[j].n {
			return cs[i].n > cs[j].n
		}
		return cs[i].c < cs[j].c
	})
	if len(cs) > 10 {
		cs = cs[:10]
	}
	c := hbarChart{W: 520, LabelW: 130}
	const rowH = 21
	c.H = max(len(cs), 1)*rowH + 6
	var mx int64 = 1
	for _, x := range cs {
		mx = max(mx, x.n)
	}
	avail := float64(c.W - c.LabelW - 70)
	for i, x := range cs {
		ser := false
		for _, s := range Serious {
			if s == x.c.String() {
				ser = true
			}
		}
		c.Rows = append(c.Rows, hbar{Y: float64(i*rowH + 3), W: round1(math.Max(1, avail*float64(x.n)/float64(mx))),
			Label: x.c.String(), Count: fmtNum(x.n), Serious: ser})
	}
	return c
}

// niceScale returns an axis maximum ≥ mx and a tick step, both round numbers.
func niceScale(mx int64) (top, step int64) {
	if mx <= 0 {
		return 4, 1
	}
	raw := float64(mx) / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	var s float64
	switch f := raw / mag; {
	case f <= 1:
		s = 1
	case f <= 2:
		s = 2
	case f <= 2.5:
		s = 2.5
	case f <= 5:
		s = 5
	default:
		s = 10
	}
	step = int64(math.Max(1, math.Round(s*mag)))
	top = (mx + step - 1) / step * step
	return top, step
}

func visible(h float64, n int64) float64 {
	if n > 0 && h < 2 {
		return 2
	}
	return h
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// fmtNum writes n with thousands separators: 1,234,567.
func fmtNum(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtShort is an axis label: 1500 → 1.5k, 2000000 → 2M.
func fmtShort(n int64) string {
	switch {
	case n >= 1_000_000:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e6), ".0") + "M"
	case n >= 1000:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e3), ".0") + "k"
	}
	return fmt.Sprint(n)
}
