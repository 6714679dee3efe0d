// Package classify categorises what no list knows: web pages by their
// text and unknown host names by their words, for the proxy's content
// classifier and `schoolgate classify`.
//
// Pages: Extract streams the visible text of the first part of an HTML
// page (title, meta description, headings, body; never scripts or
// styles), the tokenizer normalises it (case, accents, leetspeak, spacing
// tricks, Arabic/Urdu letter variants) and the Classifier matches the
// words against weighted phrase lists per category in English, French,
// Spanish, German, Polish, Arabic and Urdu (phrases/*.txt, project data,
// extendable with extra files). Context phrases (helpline, addiction,
// education, history, health, news) count against a category, so a page
// about gambling addiction is not a casino. Scores are 0..1 per category;
// a profile's content_threshold (DefaultThreshold when 0) decides.
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
