package contract

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestSyntaxErrorPosition pins the line of YAML syntax errors: the line
// where the problem is, where yaml.v3 itself may say a line before (0-based
// parser marks, marks on the first line dropped) or where it gave up.
func TestSyntaxErrorPosition(t *testing.T) {
	tests := []struct {
		src  string
		want string // "line:col: message"
	}{
		// Bad indentation: yaml.v3 says line 2 (the problem's 0-based line).
		{"a:\n  b: 1\n c: 2\n", "3:1: did not find expected key"},
		{"a: 1\nb:\n  - c\n  - d\n e: 1\n", "5:1: did not find expected key"},
		{"key: |\n  text\n bad: 1\n", "3:1: did not find expected key"},
		{"a:\n  - b\n  c: 1\n", "3:1: did not find expected '-' indicator"},
		{"- a\nb: 1\n", "2:1: did not find expected '-' indicator"},
		{"a: 1\n}\n", "2:1: did not find expected key"},
		// Unclosed quote: at the opening quote, not at the end of the file.
		{"a: 'x\n\nb: 1\n", "1:1: found unexpected end of stream"},
		{"a: 1\nb: 'it''s\n  still going\nc: 2\n", "2:1: found unexpected end of stream"},
		{"a: 1\n? [x]\n: y\nc: \"unterminated\n", "4:1: found unexpected end of stream"},
		// Tabs.
		{"a:\n\tb: 1\n", "2:1: found character that cannot start any token"},
		{"a: 1\n\tb: 2\n", "2:1: found a tab character that violates indentation"},
		// Unclosed flow collections: where the closing bracket is missing.
		{"a: [1, 2\n", "1:1: did not find expected ',' or ']'"},
		{"a: 1\nb: [1, 2\nc: 3\n", "2:1: did not find expected ',' or ']'"},
		{"a: {b: 1,\n  c: 2\nd: 3\n", "2:1: did not find expected ',' or '}'"},
		{"a:\n  b:\n    c: 1\n  d: [x,\n  e: 1\n", "5:1: did not find expected ',' or ']'"},
		// Errors on the first line, which yaml.v3 gives no line for.
		{"a: b: c\n", "1:1: mapping values are not allowed in this context"},
		{"a: @x\n", "1:1: found character that cannot start any token"},
		{"a: \"x\\qy\"\n", "1:1: found unknown escape character"},
		{"a: !foo!bar x\n", "1:1: found undefined tag handle"},
		// Others.
		{"x: 1\ny: 2\na: b: c\n", "3:1: mapping values are not allowed in this context"},
		{"a: 1\nb: 2\n  c: 3\n", "3:1: mapping values are not allowed in this context"},
		{"a: 1\nb: ]\n", "2:1: did not find expected node content"},
		{"a: 1\nb: *\n", "2:1: did not find expected alphabetic or numeric character"},
		{"%YAML 1.1\n%YAML 1.1\n---\na: 1\n", "2:1: found duplicate %YAML directive"},
		{"a: 1\n---\nb: [\n", "3:1: did not find expected node content"},
		{"a: 1\nb: *nowhere\n", "2:1: unknown anchor 'nowhere' referenced"},
		{"\ufeffa: 1\nb: [\n", "2:1: did not find expected node content"},
		// Encoding, checked before yaml.v3, with the exact column.
		{"version: 1\npackage: sh\xffop\n", "2:12: invalid UTF-8 encoding (contract files must be UTF-8)"},
		{"version: 1\ndoc: é\x07\n", "2:7: control character U+0007 is not allowed"},
	}
	for _, tt := range tests {
		_, err := Parse(file, []byte(tt.src))
		var list ErrorList
		if !errors.As(err, &list) || len(list) != 1 {
			t.Errorf("Parse(%q) = %v, want one error", tt.src, err)
			continue
		}
		if got := strings.TrimPrefix(list[0].Error(), file+":"); got != tt.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

// TestSyntaxErrorBigFile makes sure that finding the line stays cheap when
// the problem is far from its context (here, the top-level mapping).
func TestSyntaxErrorBigFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\ntypes:\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  T%d:\n    fields: {a: string, b: int}\n", i)
	}
	b.WriteString(" bad: 1\n")
	_, err := Parse(file, []byte(b.String()))
	if want := file + ":4003:1: did not find expected key"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
