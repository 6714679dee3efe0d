package lines

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// readAll reads every line of s through a 16-byte buffer with next, and
// says what it got: each line, [long] for a dropped one, and the error
// that ended the reading.
func readAll(t *testing.T, s string, next func(*Reader) ([]byte, bool, error)) string {
	t.Helper()
	r := NewReader(strings.NewReader(s), 16)
	var out []string
	for i := 0; i < 100; i++ {
		line, tooLong, err := next(r)
		switch {
		case tooLong:
			out = append(out, "[long]")
		case len(line) > 0:
			out = append(out, strings.TrimSuffix(string(line), "\n"))
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				out = append(out, "error: "+err.Error())
			}
			return strings.Join(out, "|")
		}
	}
	t.Fatal("no end")
	return ""
}

func TestNext(t *testing.T) {
	long := strings.Repeat("x", 40)
	next := func(max int) func(*Reader) ([]byte, bool, error) {
		return func(r *Reader) ([]byte, bool, error) {
			line, err := r.Next(max)
			return line, false, err
		}
	}
	for _, tt := range []struct {
		name, in string
		max      int
		want     string
	}{
		{"short lines", "a\nbb\n", 0, "a|bb"},
		{"no newline at the end", "a\nbb", 0, "a|bb"},
		{"empty", "", 0, ""},
		{"a line longer than the buffer, gathered whole", "a\n" + long + "\nb\n", 0, "a|" + long + "|b"},
		{"the long line is the last, without a newline", "a\n" + long, 0, "a|" + long},
		{"within the limit", long + "\n", 41, long},
		{"over the limit", "a\n" + long + "\nb\n", 30, "a|error: " + ErrTooLong.Error()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := readAll(t, tt.in, next(tt.max)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNextFit(t *testing.T) {
	long := strings.Repeat("x", 40)
	fit := func(r *Reader) ([]byte, bool, error) { return r.NextFit() }
	for _, tt := range []struct{ name, in, want string }{
		{"short lines", "a\nbb\n", "a|bb"},
		{"a long line is dropped, the next read", "a\n" + long + "\nb\n", "a|[long]|b"},
		{"a long last line without a newline", "a\n" + long, "a|[long]"},
		{"a line that just fits", strings.Repeat("y", 15) + "\n", strings.Repeat("y", 15)},
		{"a line one byte over", strings.Repeat("y", 16) + "\nz\n", "[long]|z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := readAll(t, tt.in, fit); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEachFit(t *testing.T) {
	long := strings.Repeat("x", 40)
	for _, tt := range []struct{ name, in, want string }{
		{"numbered, endings cut", "a\r\nbb\n\nc", "1:a 2:bb 3: 4:c"},
		{"a long line skipped and numbered", "a\n" + long + "\nb\n", "1:a 2:[long] 3:b"},
		{"empty", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := EachFit(strings.NewReader(tt.in), 16, func(n int, b []byte) {
				got = append(got, fmt.Sprintf("%d:%s", n, b))
			}, func(n int) {
				got = append(got, fmt.Sprintf("%d:[long]", n))
			})
			if err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Errorf("got %q, want %q", s, tt.want)
			}
		})
	}
}
