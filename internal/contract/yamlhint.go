package contract

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// yaml.v3's messages say what the parser expected, not what the writer
// did. The usual causes in a contract are few: a type or a path that YAML
// reads as something else ([]T as a list, *T as an alias, [*] inside
// {…}), a value with ": " in it, tabs, a string or bracket left open, a
// line indented to no level. syntaxHint recognizes them from the message
// and the text at the problem.

// syntaxHint returns what to do about the problem msg at byte off of line
// (1-based) of lines, or "".
func syntaxHint(msg string, lines [][]byte, line, off int) string {
	text := lineText(lines, line)
	at := byte(0)
	if off < len(text) {
		at = text[off]
	}
	if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok {
		return aliasHint(strings.TrimSuffix(name, "' referenced"))
	}
	if hint := typeHint(msg, text); hint != "" {
		return hint
	}
	switch msg {
	case "found character that cannot start any token":
		switch at {
		case '\t':
			return tabHint
		case '@', '`':
			return "@ and ` cannot start a plain value: quote the value"
		case '%':
			return "% cannot start a plain value: quote the value"
		}
	case "found a tab character that violates indentation":
		return tabHint
	case "mapping values are not allowed in this context":
		return colonHint(text, off)
	case "did not find expected alphabetic or numeric character":
		if at == '*' && off > 0 && text[off-1] == '[' && bytes.HasPrefix(text[off:], []byte("*]")) {
			return fmt.Sprintf("inside {…} or […] YAML reads [*] as a list holding an alias: quote the path, e.g. %q", pathAround(text, off-1))
		}
		if at == '*' || at == '&' {
			return fmt.Sprintf("YAML reads %c as the start of an alias or an anchor: quote a value that starts with %c", at, at)
		}
	case "found unknown escape character":
		return escapeHint(text, off)
	case "found unexpected end of stream":
		if at == '"' || at == '\'' {
			return "the string quoted here is not closed"
		}
	case "did not find expected ',' or ']'", "did not find expected ',' or '}'", "did not find expected node content":
		if at == ':' {
			return colonInFlowHint
		}
		if l, o, ok := unclosed(lines, line); ok {
			if l == line {
				return fmt.Sprintf("the %c here is not closed", lineText(lines, l)[o])
			}
			return fmt.Sprintf("the %c at %d:%d is not closed", lineText(lines, l)[o], l, o+1)
		}
	}
	if (msg == "did not find expected key" || msg == "did not find expected '-' indicator") && startsEntry(text) {
		return "check the indentation of this line against the keys above it"
	}
	return ""
}

const (
	tabHint         = "YAML indents with spaces, not tabs: replace the tab with spaces"
	colonInFlowHint = `inside {…} or […] a value that contains ": " must be quoted`
)

// escapeHint explains a backslash in a double-quoted string at byte off
// of text, which in a contract is most often a regex: single quotes keep
// backslashes as they are.
func escapeHint(text []byte, off int) string {
	const hint = `in a "…" string a backslash starts an escape: write \\, or quote with '…'`
	start := bytes.LastIndexByte(text[:off], '"')
	if start < 0 {
		return hint
	}
	end := closingQuote(text, start)
	if text[end] != '"' {
		return hint
	}
	s := string(text[start+1 : end])
	return hint + ": '" + strings.ReplaceAll(s, "'", "''") + "'"
}

// aliasHint explains an unknown anchor *name, which in a contract is most
// often a pointer type.
func aliasHint(name string) string {
	if builtins[name] || isPlainIdent(name) && name[0] >= 'A' && name[0] <= 'Z' {
		return fmt.Sprintf("pointers are not allowed (use %s), and YAML reads *%s as an alias: quote a value that starts with *", name, name)
	}
	return fmt.Sprintf("YAML reads *%s as an alias: quote a value that starts with *", name)
}

// typeRE matches a type expression that YAML does not read as one text
// unless quoted: a slice, which starts with [, or a map inside {…}.
var typeRE = regexp.MustCompile(`(?:^|[\s:,{\[])((?:\[\]|map\[)[\w.\[\]*]+)`)

// typeHint recognizes a type written without quotes where YAML reads its
// [ as the start of a list.
func typeHint(msg string, text []byte) string {
	switch msg {
	case "did not find expected key", "did not find expected ',' or '}'", "did not find expected ',' or ']'",
		"did not find expected node content", "did not find expected alphabetic or numeric character":
	default:
		return ""
	}
	_, value, ok := strings.Cut(unquotedPart(text), ": ")
	if !ok || strings.Contains(value, "[*]") { // a path, not a type
		return ""
	}
	m := typeRE.FindStringSubmatch(" " + value)
	if m == nil {
		return ""
	}
	return fmt.Sprintf("YAML reads [ as the start of a list: quote the type, %q", m[1])
}

// unquotedPart returns text up to its first quote or comment: the part
// that YAML reads as plain values.
func unquotedPart(text []byte) string {
	s := string(text)
	if i := strings.IndexAny(s, `"'#`); i >= 0 {
		s = s[:i]
	}
	return s
}

// colonHint explains a ": " that YAML reads as a second key on one line:
// either in a value, which must be quoted, or in a key indented below a
// value.
func colonHint(text []byte, off int) string {
	s := string(text)
	first := strings.Index(s, ": ")
	if first < 0 || first >= off || strings.HasPrefix(strings.TrimSpace(s), "-") {
		return "check the indentation of this line: the line above already has a value"
	}
	key, value := s[:first], strings.TrimSpace(s[first+2:])
	if i := strings.Index(value, " #"); i >= 0 {
		value = strings.TrimSpace(value[:i])
	}
	return fmt.Sprintf(`a value that contains ": " must be quoted: %s: %s`, strings.TrimSpace(key), strconv.Quote(value))
}

// pathAround returns the plain scalar of text around byte i.
func pathAround(text []byte, i int) string {
	isPath := func(c byte) bool { return !bytes.ContainsRune([]byte(" \t,{}:"), rune(c)) }
	start, end := i, i
	for start > 0 && isPath(text[start-1]) {
		start--
	}
	for end < len(text) && isPath(text[end]) {
		end++
	}
	return string(text[start:end])
}

// startsEntry reports whether text starts, after its indentation, like a
// key or a list item (rather than with a stray bracket, say).
func startsEntry(text []byte) bool {
	t := bytes.TrimLeft(text, " \t")
	return len(t) > 0 && (t[0] == '-' || t[0] == '"' || t[0] == '\'' || t[0] == '_' ||
		t[0] >= 'a' && t[0] <= 'z' || t[0] >= 'A' && t[0] <= 'Z' || t[0] >= '0' && t[0] <= '9')
}

// unclosed returns the line (1-based) and byte offset of the last [ or {
// that is still open at the end of line, or false.
func unclosed(lines [][]byte, line int) (l, off int, ok bool) {
	open := openFlows(lines, line, len(lineText(lines, line)))
	if len(open) == 0 {
		return 0, 0, false
	}
	last := open[len(open)-1]
	return last.line, last.off, true
}

// flowOpen is where a [ or { is.
type flowOpen struct{ line, off int }

// openFlows returns the [ and { that are open after the first end bytes
// of line (1-based), outermost first. Quoted strings and comments are
// skipped; a quote opens a string only where a value can start (a plain
// value may hold an apostrophe).
func openFlows(lines [][]byte, line, end int) []flowOpen {
	var stack []flowOpen
	for n := 1; n <= line; n++ {
		text := lineText(lines, n)
		if n == line {
			text = text[:end]
		}
		valueStart := true // whether a value may start at i
		for i := 0; i < len(text); i++ {
			c := text[i]
			switch {
			case c == '#' && (i == 0 || text[i-1] == ' ' || text[i-1] == '\t'):
				i = len(text)
			case (c == '"' || c == '\'') && valueStart:
				i = closingQuote(text, i)
			case c == '[' || c == '{':
				stack = append(stack, flowOpen{n, i})
			case (c == ']' || c == '}') && len(stack) > 0:
				stack = stack[:len(stack)-1]
			}
			if c != ' ' && c != '\t' {
				valueStart = bytes.IndexByte([]byte(":,[{-?"), c) >= 0
			}
		}
	}
	return stack
}

// closers returns what closes the open flows, innermost first.
func closers(lines [][]byte, open []flowOpen) []byte {
	out := make([]byte, 0, len(open))
	for i := len(open) - 1; i >= 0; i-- {
		if lineText(lines, open[i].line)[open[i].off] == '[' {
			out = append(out, ']')
		} else {
			out = append(out, '}')
		}
	}
	return out
}

// closingQuote returns the offset of the quote that closes the string
// opened at text[i], or the last offset of text when it is not closed on
// this line.
func closingQuote(text []byte, i int) int {
	q := text[i]
	for j := i + 1; j < len(text); j++ {
		switch {
		case q == '"' && text[j] == '\\':
			j++
		case text[j] == q && q == '\'' && j+1 < len(text) && text[j+1] == '\'':
			j++
		case text[j] == q:
			return j
		}
	}
	return len(text) - 1
}
