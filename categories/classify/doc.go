// Package classify categorises what no list knows: web pages by their
// text and unknown host names by their words, for the proxy's content
// classifier and `schoolgate classify`.
//
// Pages: extract streams the visible text of the first part of an HTML
// page with the zone of each piece (title and description, headings,
// links, form labels, body) and the page's shape signals (password field,
// magnet link, RTA label, form, prices); the tokenizer normalises it
// (case, accents, leetspeak, spacing tricks, Arabic/Urdu letter
// variants) and the Classifier matches the words against weighted phrase
// lists per category and signal lists (help, teaching, commerce, age
// gate) in 13 languages (phrases/*.txt, project data, extendable with
// extra files). Each phrase counts once, by its best zone (features.go).
// A category's score is the geometric mean of a hand formula and a logistic
// regression over the page's features (model.go), trained by
// go run ./categories/classify/train into the embedded model.txt. Scores
// are 0..1 per category; a profile's content_threshold (DefaultThreshold
// when 0) decides. The evaluation set (testdata/train, testdata/heldout,
// rendered by go run ./categories/classify/evalgen) is measured by the
// tests; the held-out part is never tuned on.
//
// Hosts: the Segmenter splits a label into dictionary words by dynamic
// programming over word costs (words.txt), so "penistone",
// "expertsexchange" and "therapist" read as the innocent words they are;
// HostClassifier scores the words against a small vocabulary
// (hostwords.txt) and gives a category only above HostThreshold. It is
// meant for hosts the category database leaves unclassified and never
// overrides a list entry.
//
// The package has no metrics of its own; the proxy counts what it does
// with the scores.
package classify
