package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestContentSection(t *testing.T) {
	base := "default_profile: p\nprofiles:\n  p: {}\n"
	dir := t.TempDir()
	cfg, err := Parse([]byte(base), filepath.Join(dir, "s.yaml"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Content.Enabled || cfg.Content.HostNames || cfg.Content.RememberHours != 6 || len(cfg.Content.PhraseFiles) != 0 {
		t.Fatalf("defaults: %+v", cfg.Content)
	}
	cfg, err = Parse([]byte(base+"content:\n  enabled: false\n  remember_hours: 12\n  phrase_files:\n    - local/gambling.txt\n    - /etc/schoolgate/games.txt\n  host_names: true\n"),
		filepath.Join(dir, "s.yaml"), dir)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Content
	if c.Enabled || !c.HostNames || c.RememberHours != 12 || len(c.PhraseFiles) != 2 ||
		c.PhraseFiles[0] != filepath.Join(dir, "local/gambling.txt") || c.PhraseFiles[1] != "/etc/schoolgate/games.txt" ||
		c.PhraseLines[0] != 8 || c.PhraseLines[1] != 9 {
		t.Fatalf("decoded: %+v", c)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"content:\n  remember_hours: 0\n", "content.remember_hours 0 out of range"},
		{"content:\n  enabled: maybe\n", "content.enabled"},
		{"content:\n  host_names: 1.5\n", "content.host_names"},
		{"content:\n  phrase_files: [\"\"]\n", "content.phrase_files: empty entry"},
		{"content:\n  phrase_file: [x]\n", "phrase_file"},
	} {
		_, err := Parse([]byte(base+tc.yaml), "s.yaml", "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestCheckPhraseFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("games.txt", "3 zorblax\nnope\n")
	write("s.yaml", "default_profile: p\nprofiles:\n  p: {}\ncontent:\n  phrase_files: [games.txt, missing.txt]\n")
	_, _, err := Check(filepath.Join(dir, "s.yaml"))
	msg := fmt.Sprint(err)
	if !strings.Contains(msg, filepath.Join(dir, "games.txt")+":2:") || !strings.Contains(msg, "s.yaml:5: content.phrase_files:") {
		t.Fatalf("Check err = %v", err)
	}
}
