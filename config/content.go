package config

import (
	"errors"

	"gopkg.in/yaml.v3"

	"github.com/schoolgate/schoolgate/categories/classify"
)

// content decodes the `content:` section (the content classifier).
func (d *decoder) content(n *yaml.Node) {
	c := &d.cfg.Content
	d.mapping(n, "content", []field{
		{"enabled", func(_, v *yaml.Node) {
			if b, ok := d.boolean(v, "content.enabled"); ok {
				c.Enabled = b
			}
		}},
		{"host_names", func(_, v *yaml.Node) {
			if b, ok := d.boolean(v, "content.host_names"); ok {
				c.HostNames = b
			}
		}},
		{"phrase_files", func(_, v *yaml.Node) {
			c.PhraseFiles, c.PhraseLines = nil, nil
			for _, it := range d.strList(v, "content.phrase_files") {
				c.PhraseFiles = append(c.PhraseFiles, it.val)
				c.PhraseLines = append(c.PhraseLines, it.line)
			}
		}},
		{"remember_hours", func(_, v *yaml.Node) {
			n, ok := d.integer(v, "content.remember_hours")
			if !ok {
				return
			}
			if n < 1 || n > 24*31 {
				d.addf(deref(v).Line, "content.remember_hours %d out of range (1 to 744)", n)
				return
			}
			c.RememberHours = n
		}},
	})
}

// CheckPhraseFile reports the problems of one content.phrase_files entry:
// each bad line at its own FILE:LINE, a file that cannot be read at the
// config's line.
func CheckPhraseFile(path string, line int, configName string) Problems {
	err := classify.CheckPhraseFile(path)
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var ps Problems
	for _, e := range errs {
		var pe *classify.PhraseError
		if errors.As(e, &pe) {
			ps = append(ps, Problem{File: pe.File, Line: pe.Line, Msg: pe.Msg})
			continue
		}
		ps = append(ps, Problem{File: configName, Line: line, Msg: "content.phrase_files: " + e.Error()})
	}
	return ps
}
