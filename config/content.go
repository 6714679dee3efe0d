package config

import "gopkg.in/yaml.v3"

// content decodes the `content:` section (the content classifier).
func (d *decoder) content(n *yaml.Node) {
	c := &d.cfg.Content
	d.mapping(n, "content", []field{
		{"enabled", func(_, v *yaml.Node) {
			if b, ok := d.boolean(v, "content.enabled"); ok {
				c.Enabled = b
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
				d.addf(resolve(v).Line, "content.remember_hours %d out of range (1 to 744)", n)
				return
			}
			c.RememberHours = n
		}},
	})
}
