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
	const (
		indentHint = "check the indentation of this line against the keys above it"
		escapeHint = `in a "…" string a backslash starts an escape: write \\, or quote with '…'`
	)
	tests := []struct {
		src  string
		want string // "line:col: message"
	}{
		// Bad indentation: yaml.v3 says line 2 (the problem's 0-based line).
		{"a:\n  b: 1\n c: 2\n", "3:2: did not find expected key; " + indentHint},
		{"a: 1\nb:\n  - c\n  - d\n e: 1\n", "5:2: did not find expected key; " + indentHint},
		{"key: |\n  text\n bad: 1\n", "3:2: did not find expected key; " + indentHint},
		{"a:\n  - b\n  c: 1\n", "3:3: did not find expected '-' indicator; " + indentHint},
		{"- a\nb: 1\n", "2:1: did not find expected '-' indicator; " + indentHint},
		{"a: 1\n}\n", "2:1: did not find expected key"},
		// Unclosed quote: at the opening quote, not at the end of the file.
		{"a: 'x\n\nb: 1\n", "1:4: found unexpected end of stream; the string quoted here is not closed"},
		{"a: 1\nb: 'it''s\n  still going\nc: 2\n", "2:4: found unexpected end of stream; the string quoted here is not closed"},
		{"a: 1\n? [x]\n: y\nc: \"unterminated\n", "4:4: found unexpected end of stream; the string quoted here is not closed"},
		// Tabs.
		{"a:\n\tb: 1\n", "2:1: found character that cannot start any token; " + tabHint},
		{"a: 1\n\tb: 2\n", "2:1: found a tab character that violates indentation; " + tabHint},
		// Unclosed flow collections: where the closing bracket is missing.
		{"a: [1, 2\n", "1:4: did not find expected ',' or ']'; the [ here is not closed"},
		{"a: 1\nb: [1, 2\nc: 3\n", "2:4: did not find expected ',' or ']'; the [ here is not closed"},
		{"a: {b: 1,\n  c: 2\nd: 3\n", "2:3: did not find expected ',' or '}'; the { at 1:4 is not closed"},
		{"a:\n  b:\n    c: 1\n  d: [x,\n  e: 1\n", "5:3: did not find expected ',' or ']'; the [ at 4:6 is not closed"},
		// Errors on the first line, which yaml.v3 gives no line for.
		{"a: b: c\n", "1:5: mapping values are not allowed in this context; a value that contains \": \" must be quoted: a: \"b: c\""},
		{"a: @x\n", "1:4: found character that cannot start any token; @ and ` cannot start a plain value: quote the value"},
		{"a: \"x\\qy\"\n", "1:6: found unknown escape character; " + escapeHint + ": 'x\\qy'"},
		{"a: !foo!bar x\n", "1:4: found undefined tag handle"},
		// Others.
		{"x: 1\ny: 2\na: b: c\n", "3:5: mapping values are not allowed in this context; a value that contains \": \" must be quoted: a: \"b: c\""},
		{"a: 1\nb: 2\n  c: 3\n", "3:4: mapping values are not allowed in this context; check the indentation of this line: the line above already has a value"},
		{"a: 1\nb: ]\n", "2:4: did not find expected node content"},
		{"a: 1\nb: *\n", "2:4: did not find expected alphabetic or numeric character; YAML reads * as the start of an alias or an anchor: quote a value that starts with *"},
		{"%YAML 1.1\n%YAML 1.1\n---\na: 1\n", "2:1: found duplicate %YAML directive"},
		{"a: 1\n---\nb: [\n", "3:4: did not find expected node content; the [ here is not closed"},
		{"a: 1\nb: *nowhere\n", "2:4: unknown anchor 'nowhere' referenced; YAML reads *nowhere as an alias: quote a value that starts with *"},
		{"\ufeffa: b: c\n", `1:5: mapping values are not allowed in this context; a value that contains ": " must be quoted: a: "b: c"`}, // the byte order mark is no column
		{"\ufeffa: 1\nb: [\n", "2:4: did not find expected node content; the [ here is not closed"},
		// What YAML reads otherwise than the writer meant, with a hint.
		{"version: 1\nrules:\n  - {path: domain.accounts[*].balance, min: 0}\n",
			`3:28: did not find expected alphabetic or numeric character; inside {…} or […] YAML reads [*] as a list holding an alias: quote the path, e.g. "domain.accounts[*].balance"`},
		{"a:\n  b: *int\n", "2:6: unknown anchor 'int' referenced; pointers are not allowed (use int), and YAML reads *int as an alias: quote a value that starts with *"},
		{"a: {b: 1, c: *User}\n", "1:14: unknown anchor 'User' referenced; pointers are not allowed (use User), and YAML reads *User as an alias: quote a value that starts with *"},
		{"a:\n  tags: []string\n", `2:3: did not find expected key; YAML reads [ as the start of a list: quote the type, "[]string"`},
		{"a:\n  f: []*User\n", `2:3: did not find expected key; YAML reads [ as the start of a list: quote the type, "[]*User"`},
		{"a: {tags: []string}\n", `1:13: did not find expected ',' or '}'; YAML reads [ as the start of a list: quote the type, "[]string"`},
		{"a: {m: map[string]int, n: int}\n", `1:11: did not find expected ',' or '}'; YAML reads [ as the start of a list: quote the type, "map[string]int"`},
		{"doc: Note: it changes\n", `1:10: mapping values are not allowed in this context; a value that contains ": " must be quoted: doc: "Note: it changes"`},
		{"a: {doc: Note: it}\n", `1:14: did not find expected ',' or '}'; inside {…} or […] a value that contains ": " must be quoted`},
		{"a: x\nregex: \"^\\d+$\"\n", "2:10: found unknown escape character; " + escapeHint + ": '^\\d+$'"},
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
	if want := file + ":4003:2: did not find expected key; check the indentation of this line against the keys above it"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
