package report

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
)

// CSVHeader is the first row of the CSV report.
var CSVHeader = []string{"user", "profile", "requests", "blocked", "first_seen", "last_seen",
	"top_blocked_category", "incidents", "out_of_hours", "devices", "top_categories"}

// csvTime is the CSV's time format: local time, which spreadsheets parse.
const csvTime = "2006-01-02 15:04:05"

// WriteCSV writes one row per user (RFC 4180). A row for traffic without
// a user names the device: user "(unknown) 10.10.3.4". Cells that a
// spreadsheet would run as a formula get a leading apostrophe.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, u := range r.Users {
		top := ""
		if len(u.TopBlocked) > 0 {
			top = u.TopBlocked[0].Category
		}
		var cats []string
		for _, c := range u.TopCats {
			cats = append(cats, c.Category)
		}
		devices := strings.Join(u.Devices, " ")
		if u.MoreDevices {
			devices += " …"
		}
		row := []string{
			u.Name(), u.Profile,
			strconv.FormatInt(u.Requests, 10), strconv.FormatInt(u.Blocked, 10),
			u.First.Format(csvTime), u.Last.Format(csvTime),
			top, strconv.FormatInt(u.Incidents, 10), strconv.FormatInt(u.OutOfHours, 10),
			devices, strings.Join(cats, " "),
		}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses a cell that a spreadsheet would evaluate (CSV injection):
// one starting with = + - @ or a tab or carriage return.
func csvSafe(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
